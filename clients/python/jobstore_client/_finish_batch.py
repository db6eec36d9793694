"""The slots' finishes, sent together through ``POST /jobs/finish``, for both worker kits.

While a request is on its way the finishes that arrive gather and leave together in the next
(at most ``IN_FLIGHT`` requests at once), and each claims its slot's next job in the same durable
write. A request carries at most ``MAX_BYTES`` of results (the server takes 1 MiB by default; a
larger result goes alone); one the server refuses whole for anything but an outage (a result
over its body limit, say) is sent again a finish at a time, so one handler's result never costs
the other slots theirs. A job claimed for a slot whose own finish was refused waits in ``spare``
for the next free slot instead of for its lease to expire.

``ThreadFinishBatcher.finish`` blocks the slot's thread; ``AsyncFinishBatcher.finish`` is awaited
by the slot's task. Either returns the job claimed for the slot (or None) and raises the error of
the slot's own entry, as its own ``complete_and_claim`` would.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Set

from ._finishing import TRANSIENT
from .errors import JobstoreError, finish_error
from .models import Job

MAX_ENTRIES = 1000      # the server's limit per request
MAX_CLAIM = 100         # max_jobs' limit
MAX_BYTES = 256 * 1024  # results per request, roughly
IN_FLIGHT = 2           # requests on their way at once (Node's kit measured 2 best)


def entry(job_id: str, how: str, result: Any, error: Optional[Dict[str, str]], retryable: bool,
          version: Optional[int]) -> Dict[str, Any]:
    """One job's entry of a finish request: its own /complete or /fail body, with if_match."""
    e: Dict[str, Any] = {"job_id": job_id}
    if version is not None:
        e["if_match"] = version
    if how == "complete":
        e["complete"] = {"result": result}
    else:
        e["fail"] = {"error": error or {}, "retryable": retryable}
    return e


def entry_bytes(e: Dict[str, Any]) -> int:
    """About what the entry weighs in a request (JSON, ASCII-escaped as the client sends it)."""
    return len(json.dumps(e))


@dataclass
class Pending:
    entry: Dict[str, Any]
    claim_next: bool
    nbytes: int
    # Hands the slot its claimed job or its error; False when the slot no longer waits.
    deliver: Callable[[Optional[Job], Optional[BaseException]], bool]


def take(queue: Deque[Pending]) -> List[Pending]:
    """The next request's finishes: the oldest, and those after it that fit."""
    batch = [queue.popleft()]
    weight = batch[0].nbytes
    while queue and len(batch) < MAX_ENTRIES and weight + queue[0].nbytes <= MAX_BYTES:
        weight += queue[0].nbytes
        batch.append(queue.popleft())
    return batch


def request_args(batch: List[Pending], worker: Any) -> Dict[str, Any]:
    """``finish``'s keyword arguments: minimal answers, and a claim for each slot that wants one."""
    wanting = 0 if worker.stopping else min(sum(p.claim_next for p in batch), MAX_CLAIM)
    args: Dict[str, Any] = {"minimal": True}
    if wanting:
        args.update(next_worker=worker.name, types=worker.types,
                    lease_seconds=worker.lease_seconds, max_jobs=wanting)
    return args


def refused_whole(batch: List[Pending], exc: BaseException) -> bool:
    """Whether to send the batch again a finish at a time: the server refused it whole, and not
    for an outage (then every entry is retried by its slot)."""
    return len(batch) > 1 and isinstance(exc, JobstoreError) and not isinstance(exc, TRANSIENT)


def settle(batch: List[Pending], answer: Dict[str, Any], spare: Deque[Job]) -> None:
    """Hands each slot its result; claimed jobs no slot took go to `spare`."""
    claimed: Deque[Job] = deque(answer.get("next") or [])
    results = answer.get("results") or []
    for i, p in enumerate(batch):
        result = results[i] if i < len(results) else None
        if result is None:
            p.deliver(None, JobstoreError("no result for this job in the answer"))
        elif result.get("status") == 200:
            job = claimed.popleft() if p.claim_next and claimed else None
            if not p.deliver(job, None) and job is not None:
                claimed.append(job)
        else:
            p.deliver(None, finish_error(result))
    spare.extend(claimed)


class ThreadFinishBatcher:
    """For ``Worker``: a sender thread per request on its way (at most IN_FLIGHT), started when
    a finish finds none free; the slot's thread waits for its own result."""

    def __init__(self, worker: Any, spare: Deque[Job]):
        self._worker = worker
        self._lock = threading.Lock()
        self._queue: Deque[Pending] = deque()
        self._senders = 0
        self.spare = spare  # the worker's jobs no slot has taken yet

    def finish(self, e: Dict[str, Any], claim_next: bool) -> Optional[Job]:
        future: "Future[Optional[Job]]" = Future()

        def deliver(job: Optional[Job], exc: Optional[BaseException]) -> bool:
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(job)
            return True

        with self._lock:
            self._queue.append(Pending(e, claim_next, entry_bytes(e), deliver))
            start = self._senders < IN_FLIGHT
            if start:
                self._senders += 1
        if start:
            threading.Thread(target=self._send_all, name="jobstore-finish", daemon=True).start()
        return future.result()

    def _send_all(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._senders -= 1
                    return
                batch = take(self._queue)
            self._send(batch)

    def _send(self, batch: List[Pending]) -> None:
        try:
            answer = self._worker.client.finish([p.entry for p in batch],
                                                **request_args(batch, self._worker))
        except Exception as exc:  # whatever it is, no slot is left waiting
            if refused_whole(batch, exc):
                for p in batch:
                    self._send([p])  # find the one it was about
            else:
                for p in batch:
                    p.deliver(None, exc)
            return
        settle(batch, answer, self.spare)


class AsyncFinishBatcher:
    """For ``AsyncWorker``: a task per request on its way (at most IN_FLIGHT), started once the
    slots that became ready with it have run, so that they join the request."""

    def __init__(self, worker: Any, spare: Deque[Job]):
        self._worker = worker
        self._queue: Deque[Pending] = deque()
        self._senders = 0
        self._starting = False
        self._tasks: Set["asyncio.Task[None]"] = set()
        self.spare = spare  # the worker's jobs no slot has taken yet

    async def finish(self, e: Dict[str, Any], claim_next: bool) -> Optional[Job]:
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[Optional[Job]]" = loop.create_future()

        def deliver(job: Optional[Job], exc: Optional[BaseException]) -> bool:
            if future.done():  # the slot was cancelled (the grace ended)
                return False
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(job)
            return True

        self._queue.append(Pending(e, claim_next, entry_bytes(e), deliver))
        if self._senders < IN_FLIGHT and not self._starting:
            self._starting = True
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._starting = False
        if not self._queue or self._senders >= IN_FLIGHT:
            return
        self._senders += 1
        task = asyncio.ensure_future(self._send_all())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_all(self) -> None:
        try:
            while self._queue:
                await self._send(take(self._queue))
        finally:
            self._senders -= 1

    async def _send(self, batch: List[Pending]) -> None:
        try:
            answer = await self._worker.client.finish([p.entry for p in batch],
                                                      **request_args(batch, self._worker))
        except Exception as exc:  # whatever it is, no slot is left waiting
            if refused_whole(batch, exc):
                for p in batch:
                    await self._send([p])
            else:
                for p in batch:
                    p.deliver(None, exc)
            return
        settle(batch, answer, self.spare)
