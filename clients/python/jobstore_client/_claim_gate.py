"""One claim for every slot that waits for a job, for both worker kits.

A slot with nothing to run asks the gate; the gate long-polls ``POST /jobs/claim`` with
``max_jobs`` = the slots waiting (at most 100), so an idle worker parks one request on the server
instead of one per slot. A poll that ends with none hands each waiting slot None (the slot looks
at the stop and at the spare jobs, and asks again); a failed claim is logged once and the slots
ask again a second later. Jobs nobody waits for any more go to the worker's spare jobs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Deque, List, Optional, Set

from ._finish_batch import MAX_CLAIM
from .models import Job

log = logging.getLogger("jobstore.worker")


def _claim_args(worker: Any, waiting: int) -> Any:
    return {"max_jobs": min(waiting, MAX_CLAIM), "types": worker.types,
            "lease_seconds": worker.lease_seconds, "wait": worker.poll_seconds}


class ThreadClaimGate:
    """For ``Worker``: a claiming thread while slots wait; each slot's thread waits for its job."""

    def __init__(self, worker: Any, spare: Deque[Job]):
        self._worker = worker
        self._spare = spare
        self._lock = threading.Lock()
        self._waiting: Deque["Future[Optional[Job]]"] = deque()
        self._polling = False

    def take(self) -> Optional[Job]:
        future: "Future[Optional[Job]]" = Future()
        with self._lock:
            self._waiting.append(future)
            start = not self._polling
            self._polling = True
        if start:
            threading.Thread(target=self._poll, name="jobstore-claim", daemon=True).start()
        return future.result()

    def _poll(self) -> None:
        w = self._worker
        try:
            while True:
                with self._lock:
                    waiting = len(self._waiting)
                if not waiting or w.stopping:
                    return
                try:
                    jobs: List[Job] = w.client.claim_many(w.name, **_claim_args(w, waiting))
                except Exception as exc:  # the client retried what it could; say it once
                    log.error("claiming failed: %s", exc)
                    w._pause(1.0)
                    jobs = []
                with self._lock:
                    for job in jobs:
                        if self._waiting:
                            self._waiting.popleft().set_result(job)
                        else:
                            self._spare.append(job)
                    while not jobs and self._waiting:
                        self._waiting.popleft().set_result(None)
        finally:
            with self._lock:
                while self._waiting:
                    self._waiting.popleft().set_result(None)
                self._polling = False


class AsyncClaimGate:
    """For ``AsyncWorker``: a claiming task while slots wait; each slot's task awaits its job."""

    def __init__(self, worker: Any, spare: Deque[Job]):
        self._worker = worker
        self._spare = spare
        self._waiting: Deque["asyncio.Future[Optional[Job]]"] = deque()
        self._polling = False
        self._tasks: Set["asyncio.Task[None]"] = set()  # a reference, so the task is not collected

    async def take(self) -> Optional[Job]:
        future: "asyncio.Future[Optional[Job]]" = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if not self._polling:
            self._polling = True
            task = asyncio.ensure_future(self._poll())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _hand(self, job: Optional[Job]) -> bool:
        """Gives `job` to the oldest slot still waiting; False when none is."""
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():  # a cancelled slot waits no more
                future.set_result(job)
                return True
        return False

    async def _poll(self) -> None:
        w = self._worker
        try:
            while self._waiting and not w.stopping:
                try:
                    jobs: List[Job] = await w.client.claim_many(
                        w.name, **_claim_args(w, len(self._waiting)))
                except Exception as exc:  # the client retried what it could; say it once
                    log.error("claiming failed: %s", exc)
                    await w._pause(1.0)
                    jobs = []
                for job in jobs:
                    if not self._hand(job):
                        self._spare.append(job)
                while not jobs and self._hand(None):
                    pass
        finally:
            while self._hand(None):
                pass
            self._polling = False
