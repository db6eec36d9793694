"""The worker kit for ``async def`` handlers, on :class:`AsyncJobstoreClient`: the same
contract as :class:`Worker` (see ``worker.py``), with a task per slot instead of a thread.

    async def handle(ctx):
        await ctx.progress(percent=10, phase="understanding")
        answer = await ctx.ask("clarify", {"questions": [...]}, key="formats")
        return {"formats": answer}

    async def main():
        async with AsyncJobstoreClient(url) as client:
            await AsyncWorker(client, ["skill_creation"], handle, concurrency=8).run()

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
import time
from collections import deque
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence

from . import _claim_gate, _finish_batch, _finishing, _wire
from ._finishing import Verdict, WorkerStopping
from ._worker_base import WorkerBase
from .aio import AsyncJobstoreClient
from .errors import InvalidTransition, JobstoreError
from .models import Job

log = logging.getLogger("jobstore.worker")

AsyncHandler = Callable[["AsyncJobContext"], Awaitable[Any]]


class AsyncJobContext:
    """What an async handler gets: the job, and coroutines to report and to ask."""

    def __init__(self, worker: "AsyncWorker", job: Job):
        self._worker = worker
        self.job = job
        self.job_id: str = job["job_id"]
        self.input: Any = job.get("input")
        self._asking = False
        self._lease_until = time.monotonic() + worker.lease_seconds

    async def progress(self, percent: Optional[float] = None, phase: Optional[str] = None,
                       message: Optional[str] = None) -> None:
        """Records progress (an event) and extends the lease."""
        progress = _wire.present({"percent": percent, "phase": phase, "message": message})
        self.job = await self._worker.client.heartbeat(self.job_id, progress=progress,
                                                       lease_seconds=self._worker.lease_seconds)
        self._lease_until = time.monotonic() + self._worker.lease_seconds

    async def update(self, data: Optional[Dict[str, Any]] = None,
                     labels: Optional[Dict[str, Optional[str]]] = None) -> None:
        """Merge-patches the job's data and labels."""
        self.job = await self._worker.client.update(self.job_id, data=data, labels=labels)

    async def ask(self, type: str, prompt: Any, timeout: Optional[int] = None,
                  key: Optional[str] = None) -> Any:
        """Asks a person and returns the answer (from any process); as ``JobContext.ask``:
        InvalidTransition when the question times out unanswered, WorkerStopping when the
        worker stops first (the question stays open), and with ``key`` a re-run gets the answer
        already given. The wait is one long-poll, cancelled at once by a stop."""
        client = self._worker.client
        if key is not None:
            answered = _finishing.recorded_answer(await client.events(self.job_id), key)
            if answered is not _finishing.UNANSWERED:
                return answered
        self._asking = True
        try:
            self.job = await client.request_hitl(self.job_id, type, prompt, timeout=timeout,
                                                 key=key)
        except BaseException:
            self._asking = False
            raise
        answer_task = asyncio.ensure_future(client.wait_for_hitl_response(self.job_id))
        stop_task = asyncio.ensure_future(self._worker._stopped.wait())
        try:
            await asyncio.wait({answer_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if not answer_task.done():
                raise WorkerStopping(f"the worker stopped while job {self.job_id} waited for an "
                                     "answer; the question stays open")
            answer = answer_task.result()
            self.job = await client.get(self.job_id)
            self._lease_until = time.monotonic() + self._worker.lease_seconds
            return answer
        finally:
            self._asking = False
            for task in (answer_task, stop_task):
                task.cancel()
            await asyncio.gather(answer_task, stop_task, return_exceptions=True)

    @property
    def stopping(self) -> bool:
        """True once the worker was asked to stop: a long handler may wind up early."""
        return self._worker.stopping


class AsyncWorker(WorkerBase):
    """Runs ``await handler(ctx)`` for each job it claims, ``concurrency`` at a time, in the
    running event loop. Results, exceptions, finishing retries, heartbeats, slots that never die
    and the bounded shutdown are those of :class:`Worker`; ``run()`` is a coroutine. SIGINT and
    SIGTERM stop it when ``run()`` runs on the main thread's loop (a second signal exits at
    once). Jobs still running after ``shutdown_grace`` are cancelled (their handlers see
    ``asyncio.CancelledError``) and left to their leases. Plain ``def`` handlers are refused:
    use :class:`Worker`, or ``asyncio.to_thread`` inside an ``async def``."""

    def __init__(self, client: AsyncJobstoreClient, types: Optional[Sequence[str]],
                 handler: AsyncHandler, *, lease_seconds: int = 30, concurrency: int = 1,
                 name: Optional[str] = None, poll_seconds: float = 1.0,
                 shutdown_grace: float = 30.0):
        super().__init__(client, types, lease_seconds, concurrency, name, poll_seconds,
                         shutdown_grace)
        if not (inspect.iscoroutinefunction(handler) or
                inspect.iscoroutinefunction(getattr(handler, "__call__", None))):
            raise TypeError("AsyncWorker runs async def handlers; use Worker for a plain function")
        if not isinstance(client, AsyncJobstoreClient):
            raise TypeError("AsyncWorker needs an AsyncJobstoreClient")
        self.client = client
        self.handler = handler
        self._stopped = asyncio.Event()
        self._spare: "deque[Job]" = deque()  # claimed for this worker, no slot's yet
        self._finishes = _finish_batch.AsyncFinishBatcher(self, self._spare)
        self._claims = _claim_gate.AsyncClaimGate(self, self._spare)

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stops the worker (call it from the loop's thread, or use loop.call_soon_threadsafe)."""
        self._stopped.set()

    async def _pause(self, seconds: float) -> None:
        """Waits `seconds`, or less when the worker stops."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        signals: List[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    signals.append(sig)
        slots = [asyncio.ensure_future(self._slot(i)) for i in range(self.concurrency)]
        try:
            while not self._stopped.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), 0.2)
                for i, task in enumerate(slots):
                    if task.done() and not self._stopped.is_set():  # never expected
                        log.error("worker slot %d ended unexpectedly; restarting it", i)
                        self.slot_restarts += 1
                        slots[i] = asyncio.ensure_future(self._slot(i))
            _, busy = await asyncio.wait(slots, timeout=self.shutdown_grace)
            if busy:
                log.warning("%d job(s) still running after the %.0f s grace; cancelled and left "
                            "to their leases", len(busy), self.shutdown_grace)
        finally:
            for task in slots:
                task.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _slot(self, index: int) -> None:
        job: Optional[Job] = None  # the next job, claimed by the last finish
        spare = self._spare
        while not self._stopped.is_set() or job is not None or spare:
            try:
                if job is None and spare:
                    job = spare.popleft()
                if job is None and not self._stopped.is_set():
                    job = await self._claims.take()  # one long-poll for every idle slot
                if job is not None:
                    job = await self._run_one(job)
            except Exception:  # a slot never dies: log, wait a moment, go on
                log.exception("worker slot %d: unexpected error; going on", index)
                job = None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), 1.0)

    async def _run_one(self, job: Job) -> Optional[Job]:
        ctx = AsyncJobContext(self, job)
        beat = asyncio.ensure_future(self._heartbeat(ctx))
        try:
            try:
                result = await self.handler(ctx)
            except WorkerStopping as exc:
                log.info("%s", exc)
                return None
            except Exception as exc:  # the handler's failure is the job's, not the worker's
                error, retryable = _finishing.handler_error(exc)
                return await self._finish(ctx, "fail", error=error, retryable=retryable)
            problem = _finishing.result_problem(result, "await it inside the handler")
            if problem is not None:
                return await self._finish(ctx, "fail", error=problem, retryable=False)
            return await self._finish(ctx, "complete", result=result)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def _finish(self, ctx: AsyncJobContext, how: str, result: Any = None,
                      error: Optional[Dict[str, str]] = None,
                      retryable: bool = True) -> Optional[Job]:
        """As ``Worker._finish``: completes or fails the job, claiming the next one in the same
        durable write unless stopping, the slots' finishes sent together; transient failures
        retried with if_match until the lease would run out. Returns the next job, or None."""
        entry = _finish_batch.entry(ctx.job_id, how, result, error, retryable,
                                    ctx.job.get("version"))
        delay = 0.2
        tried = False
        next_job: Optional[Job] = None
        while True:
            try:
                next_job = await self._finishes.finish(entry, not self.stopping)
                break
            except JobstoreError as exc:
                verdict = _finishing.finish_verdict(exc, tried, ctx._lease_until - time.monotonic(),
                                                    delay)
                if verdict is Verdict.RETRY:
                    tried = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if verdict is Verdict.TOO_LARGE and how == "complete":
                    return await self._finish(ctx, "fail", error=_finishing.too_large(entry),
                                              retryable=False)
                if verdict is Verdict.CHECK_LANDED and await self._landed(ctx, how):
                    break
                _finishing.log_lost_finish(log, how, ctx.job_id, exc)
                return None
        if how == "complete":
            self.completed += 1
        else:
            self.failed += 1
        return next_job

    async def _landed(self, ctx: AsyncJobContext, how: str) -> bool:
        try:
            return _finishing.landed(await self.client.get(ctx.job_id), how,
                                     ctx.job.get("attempt"))
        except JobstoreError:
            return False

    async def _heartbeat(self, ctx: AsyncJobContext) -> None:
        interval = self.lease_seconds / 3.0
        while True:
            await asyncio.sleep(interval)
            if ctx._asking:
                continue  # pending_hitl holds no lease
            try:
                await self.client.heartbeat(ctx.job_id, lease_seconds=self.lease_seconds)
                ctx._lease_until = time.monotonic() + self.lease_seconds
            except InvalidTransition:
                continue  # between ask and answer, or finished: nothing to extend
            except JobstoreError as exc:
                log.warning("heartbeat for %s failed: %s", ctx.job_id, exc)
