"""The asyncio face of the client: every method of JobstoreClient as a coroutine.

Each call runs the blocking client in a worker thread (``asyncio.to_thread``), so long-polls never
block the event loop, and the standard library stays the only dependency.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, AsyncIterator, Optional

from .client import Event, JobstoreClient

_METHODS = ("create", "create_batch", "get", "update", "start", "heartbeat", "claim", "complete",
            "complete_and_claim", "fail", "fail_and_claim", "retry", "cancel", "events",
            "request_hitl", "respond_hitl", "wait_for_hitl_response", "create_schedule", "get_schedule", "list_schedules",
            "update_schedule", "delete_schedule", "feed", "stats", "healthy")


class AsyncJobstoreClient:
    """Same constructor and methods as JobstoreClient; every method is a coroutine, ``list`` and
    ``follow`` are async iterators."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.sync = JobstoreClient(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name not in _METHODS:
            raise AttributeError(name)
        method = getattr(self.sync, name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

    async def list(self, **filters: Any) -> AsyncIterator[Any]:
        iterator = self.sync.list(**filters)
        sentinel = object()
        while True:
            job = await asyncio.to_thread(next, iterator, sentinel)
            if job is sentinel:
                return
            yield job

    async def follow(self, after: int = 0, **kwargs: Any) -> AsyncIterator[Event]:
        iterator = self.sync.follow(after, **kwargs)
        while True:
            yield await asyncio.to_thread(next, iterator)

    async def aclose(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> "AsyncJobstoreClient":
        return self

    async def __aexit__(self, *exc: Optional[BaseException]) -> None:
        await self.aclose()
