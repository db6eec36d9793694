"""The worker kit: claim jobs, keep their leases alive while a handler runs, let the handler
report progress and ask a person, and finish the job with the handler's result or exception.

    def handle(ctx):
        ctx.progress(percent=10, phase="understanding")
        answer = ctx.ask("clarify", {"questions": [{"text": "Which formats?"}]}, timeout=3600)
        return {"skill": "invoices", "formats": answer}

    Worker(JobstoreClient(url), types=["skill_creation"], handler=handle, concurrency=4).run()
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import _claim_gate, _finish_batch, _finishing
from ._finishing import PermanentFailure, Verdict, WorkerStopping
from ._worker_base import WorkerBase
from .client import JobstoreClient
from .errors import HitlTimeout, InvalidTransition, JobstoreError
from .models import Job

log = logging.getLogger("jobstore.worker")

__all__ = ["JobContext", "PermanentFailure", "Worker", "WorkerStopping"]


def _pop(spare: "deque[Job]") -> Optional[Job]:
    """A job claimed for this worker that no slot has taken yet, or None (other slots race)."""
    try:
        return spare.popleft()
    except IndexError:
        return None


class JobContext:
    """What a handler gets: the job, and ways to report and to ask."""

    def __init__(self, worker: "Worker", job: Job):
        self._worker = worker
        self.job = job
        self.job_id: str = job["job_id"]
        self.input: Any = job.get("input")
        self._asking = threading.Event()
        # When the lease runs out unless renewed (monotonic): finishing is retried until then.
        self._lease_until = time.monotonic() + worker.lease_seconds

    def progress(self, percent: Optional[float] = None, phase: Optional[str] = None,
                 message: Optional[str] = None) -> None:
        """Records progress (an event) and extends the lease."""
        progress = {k: v for k, v in {"percent": percent, "phase": phase, "message": message}.items()
                    if v is not None}
        self.job = self._worker.client.heartbeat(self.job_id, progress=progress,
                                                 lease_seconds=self._worker.lease_seconds)
        self._lease_until = time.monotonic() + self._worker.lease_seconds

    def update(self, data: Optional[Dict[str, Any]] = None,
               labels: Optional[Dict[str, Optional[str]]] = None) -> None:
        """Merge-patches the job's data and labels."""
        self.job = self._worker.client.update(self.job_id, data=data, labels=labels)

    def ask(self, type: str, prompt: Any, timeout: Optional[int] = None,
            key: Optional[str] = None) -> Any:
        """Asks a person and blocks until the answer comes (from any process). While waiting the
        job holds no lease. Raises InvalidTransition if the question times out unanswered, and
        WorkerStopping when the worker stops first (the question stays open).

        With ``key``, a re-run of the job (another attempt, after a crash or a stop) that asks
        with the same key gets the answer already given to it, from the job's history, and
        nobody is asked twice."""
        if key is not None:
            answered = _finishing.recorded_answer(self._worker.client.events(self.job_id), key)
            if answered is not _finishing.UNANSWERED:
                return answered
        self._asking.set()
        try:
            self.job = self._worker.client.request_hitl(self.job_id, type, prompt, timeout=timeout,
                                                        key=key)
            while True:
                try:
                    # Short waits, so a stop is noticed within a second.
                    answer = self._worker.client.wait_for_hitl_response(self.job_id, timeout=1.0)
                    break
                except HitlTimeout:
                    if self._worker.stopping:
                        raise WorkerStopping(f"the worker stopped while job {self.job_id} waited "
                                             "for an answer; the question stays open") from None
            self.job = self._worker.client.get(self.job_id)
            self._lease_until = time.monotonic() + self._worker.lease_seconds
        finally:
            self._asking.clear()
        return answer

    @property
    def stopping(self) -> bool:
        """True once the worker was asked to stop: a long handler may wind up early."""
        return self._worker.stopping


class Worker(WorkerBase):
    """Runs ``handler(ctx)`` for each job it claims, ``concurrency`` at a time.

    The handler's return value completes the job (it must be JSON: anything else fails the job
    with ``result_not_json``); an exception fails the attempt with
    ``{"code": <exception class>, "message": str(exc)}`` (retryable, unless it is a
    ``PermanentFailure``). A background thread heartbeats every third of the lease while the
    handler runs, so a handler slower than the lease still finishes. Finishing a job is retried
    (with ``If-Match``, so it never lands twice) until the lease would run out. Nothing a handler
    or the network does ends a slot; one that dies anyway is restarted and logged.

    ``run()`` returns after ``stop()`` (or SIGINT/SIGTERM when run on the main thread): no claim
    starts after it, claims long-poll at most ``poll_seconds`` (<= 2 s) so the stop is noticed at
    once, and the jobs in hand get ``shutdown_grace`` seconds to finish (a handler inside
    ``ctx.ask`` gets ``WorkerStopping`` at once). A second signal exits the process at once.
    ``async def`` handlers are refused: run them with ``asyncio.run`` inside a ``def``.
    """

    def __init__(self, client: JobstoreClient, types: Optional[Sequence[str]],
                 handler: Callable[[JobContext], Any], *, lease_seconds: int = 30,
                 concurrency: int = 1, name: Optional[str] = None, poll_seconds: float = 1.0,
                 shutdown_grace: float = 30.0):
        super().__init__(client, types, lease_seconds, concurrency, name, poll_seconds,
                         shutdown_grace)
        if inspect.iscoroutinefunction(handler) or \
                inspect.iscoroutinefunction(getattr(handler, "__call__", None)):
            raise TypeError("Worker runs plain functions; an async def handler would never run. "
                            "Use AsyncWorker for it")
        self.client = client
        self.handler = handler
        self._stop = threading.Event()
        self._count_lock = threading.Lock()
        self._spare: "deque[Job]" = deque()  # claimed for this worker, no slot's yet
        self._finishes = _finish_batch.ThreadFinishBatcher(self, self._spare)
        self._claims = _claim_gate.ThreadClaimGate(self, self._spare)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def _pause(self, seconds: float) -> None:
        """Waits `seconds`, or less when the worker stops."""
        self._stop.wait(seconds)

    def run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        slots: List[threading.Thread] = [self._start_slot(i) for i in range(self.concurrency)]
        while not self._stop.wait(0.2):
            for i, t in enumerate(slots):
                if not t.is_alive():  # never expected: _slot catches everything
                    log.error("worker slot %d ended unexpectedly; restarting it", i)
                    with self._count_lock:
                        self.slot_restarts += 1
                    slots[i] = self._start_slot(i)
        grace_end = time.monotonic() + self.shutdown_grace
        for t in slots:
            t.join(timeout=max(0.0, grace_end - time.monotonic()))
        busy = sum(t.is_alive() for t in slots)
        if busy:
            log.warning("%d job(s) still running after the %.0f s grace; leaving them to their "
                        "leases", busy, self.shutdown_grace)

    def _start_slot(self, index: int) -> threading.Thread:
        t = threading.Thread(target=self._slot, args=(index,), name=f"jobstore-worker-{index}",
                             daemon=True)
        t.start()
        return t

    def _slot(self, index: int) -> None:
        job: Optional[Job] = None  # the next job, claimed by the last finish
        while not self._stop.is_set() or job is not None or self._spare:
            try:
                if job is None:
                    job = _pop(self._spare)
                if job is None and not self._stop.is_set():
                    job = self._claims.take()  # one long-poll for every idle slot
                if job is not None:
                    job = self._run_one(job)
            except Exception:  # a slot never dies: log, wait a moment, go on
                log.exception("worker slot %d: unexpected error; going on", index)
                job = None
                self._stop.wait(1.0)

    def _run_one(self, job: Job) -> Optional[Job]:
        """Runs the handler on `job` and finishes it; returns the next job when the finish
        claimed one (always, while the worker is not stopping and jobs are pending)."""
        ctx = JobContext(self, job)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, done), daemon=True)
        beat.start()
        try:
            try:
                result = self.handler(ctx)
            except WorkerStopping as exc:
                log.info("%s", exc)
                return None
            except Exception as exc:  # the handler's failure is the job's, not the worker's
                error, retryable = _finishing.handler_error(exc)
                return self._finish(ctx, "fail", error=error, retryable=retryable)
            problem = _finishing.result_problem(
                result, "Worker runs plain functions (AsyncWorker runs async def handlers)")
            if problem is not None:
                return self._finish(ctx, "fail", error=problem, retryable=False)
            return self._finish(ctx, "complete", result=result)
        finally:
            done.set()
            beat.join()

    def _finish(self, ctx: JobContext, how: str, result: Any = None,
                error: Optional[Dict[str, str]] = None, retryable: bool = True) -> Optional[Job]:
        """Completes or fails the job and, unless the worker is stopping, claims the next one in
        the same durable write; the slots' finishes go out together (``_finish_batch``). A
        transient failure is retried until the lease would run out; if_match makes that safe:
        if a first try landed, the retry gets 412, and the job's state tells whether it was ours
        (a job that lost try claimed goes back to the queue with its lease). A result larger
        than the server takes fails the job with ``result_too_large``. Returns the next job, or
        None."""
        entry = _finish_batch.entry(ctx.job_id, how, result, error, retryable,
                                    ctx.job.get("version"))
        delay = 0.2
        tried = False
        next_job: Optional[Job] = None
        while True:
            try:
                next_job = self._finishes.finish(entry, not self.stopping)
                break
            except JobstoreError as exc:
                verdict = _finishing.finish_verdict(exc, tried, ctx._lease_until - time.monotonic(),
                                                    delay)
                if verdict is Verdict.RETRY:
                    tried = True
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if verdict is Verdict.TOO_LARGE and how == "complete":
                    return self._finish(ctx, "fail", error=_finishing.too_large(entry),
                                        retryable=False)
                if verdict is Verdict.CHECK_LANDED and self._landed(ctx, how):
                    break  # an earlier try landed; its answer was lost on the way
                _finishing.log_lost_finish(log, how, ctx.job_id, exc)
                return None
        with self._count_lock:
            if how == "complete":
                self.completed += 1
            else:
                self.failed += 1
        return next_job

    def _landed(self, ctx: JobContext, how: str) -> bool:
        try:
            return _finishing.landed(self.client.get(ctx.job_id), how, ctx.job.get("attempt"))
        except JobstoreError:
            return False

    def _heartbeat(self, ctx: JobContext, done: threading.Event) -> None:
        interval = self.lease_seconds / 3.0
        while not done.wait(interval):
            if ctx._asking.is_set():
                continue  # pending_hitl holds no lease
            try:
                self.client.heartbeat(ctx.job_id, lease_seconds=self.lease_seconds)
                ctx._lease_until = time.monotonic() + self.lease_seconds
            except InvalidTransition:
                continue  # between ask and answer, or finished: nothing to extend
            except JobstoreError as exc:
                log.warning("heartbeat for %s failed: %s", ctx.job_id, exc)

