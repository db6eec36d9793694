"""The worker kit: claim jobs, keep their leases alive while a handler runs, let the handler
report progress and ask a person, and finish the job with the handler's result or exception.

    def handle(ctx):
        ctx.progress(percent=10, phase="understanding")
        answer = ctx.ask("clarify", {"questions": [{"text": "Which formats?"}]}, timeout=3600)
        return {"skill": "invoices", "formats": answer}

    Worker(JobstoreClient(url), types=["skill_creation"], handler=handle, concurrency=4).run()
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import os
from typing import Any, Callable, Dict, Optional, Sequence

from .client import Job, JobstoreClient
from .errors import InvalidTransition, JobstoreError, NotFound

log = logging.getLogger("jobstore.worker")


class PermanentFailure(Exception):
    """Raised by a handler for a failure that another attempt cannot fix (bad input, say): the
    job fails for good even if its retry policy has attempts left. Any other exception fails the
    attempt as retryable, and a job created with ``retry`` is tried again after its backoff."""


class JobContext:
    """What a handler gets: the job, and ways to report and to ask."""

    def __init__(self, worker: "Worker", job: Job):
        self._worker = worker
        self.job = job
        self.job_id: str = job["job_id"]
        self.input: Any = job.get("input")
        self._asking = threading.Event()

    def progress(self, percent: Optional[float] = None, phase: Optional[str] = None,
                 message: Optional[str] = None) -> None:
        """Records progress (an event) and extends the lease."""
        progress = {k: v for k, v in {"percent": percent, "phase": phase, "message": message}.items()
                    if v is not None}
        self.job = self._worker.client.heartbeat(self.job_id, progress=progress,
                                                 lease_seconds=self._worker.lease_seconds)

    def update(self, data: Optional[Dict[str, Any]] = None,
               labels: Optional[Dict[str, Optional[str]]] = None) -> None:
        """Merge-patches the job's data and labels."""
        self.job = self._worker.client.update(self.job_id, data=data, labels=labels)

    def ask(self, type: str, prompt: Any, timeout: Optional[int] = None) -> Any:
        """Asks a person and blocks until the answer comes (from any process). While waiting the
        job holds no lease. Raises InvalidTransition if the question times out unanswered."""
        self._asking.set()
        try:
            self._worker.client.request_hitl(self.job_id, type, prompt, timeout=timeout)
            answer = self._worker.client.wait_for_hitl_response(self.job_id)
        finally:
            self._asking.clear()
        return answer

    @property
    def stopping(self) -> bool:
        """True once the worker was asked to stop: a long handler may wind up early."""
        return self._worker.stopping


class Worker:
    """Runs ``handler(ctx)`` for each job it claims, ``concurrency`` at a time.

    The handler's return value completes the job; an exception fails it with
    ``{"code": <exception class>, "message": str(exc)}``. A background thread heartbeats every
    third of the lease while the handler runs, so a handler slower than the lease still finishes.
    ``run()`` returns after ``stop()`` (or SIGINT/SIGTERM when run on the main thread) once the
    jobs in hand are finished.
    """

    def __init__(self, client: JobstoreClient, types: Optional[Sequence[str]],
                 handler: Callable[[JobContext], Any], *, lease_seconds: int = 30,
                 concurrency: int = 1, name: Optional[str] = None, poll_seconds: float = 30.0):
        if lease_seconds < 3:
            raise ValueError("lease_seconds must be at least 3")
        self.client = client
        self.types = list(types) if types else None
        self.handler = handler
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self.completed = 0
        self.failed = 0
        self._count_lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.stop())
        slots = [threading.Thread(target=self._slot, args=(i,), name=f"jobstore-worker-{i}",
                                  daemon=True) for i in range(self.concurrency)]
        for t in slots:
            t.start()
        for t in slots:
            while t.is_alive():
                t.join(timeout=0.2)

    def _slot(self, index: int) -> None:
        worker_name = f"{self.name}/{index}"
        while not self._stop.is_set():
            try:
                # Short polls while stopping is possible, so stop() is honoured within a second.
                job = self.client.claim(worker_name, types=self.types,
                                        lease_seconds=self.lease_seconds,
                                        wait=min(self.poll_seconds, 1.0) if self._stop.is_set()
                                        else self.poll_seconds)
            except JobstoreError as exc:
                log.warning("claim failed: %s", exc)
                self._stop.wait(1.0)
                continue
            if job is None:
                continue
            self._run_one(job)

    def _run_one(self, job: Job) -> None:
        ctx = JobContext(self, job)
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(ctx, done), daemon=True)
        beat.start()
        try:
            result = self.handler(ctx)
        except Exception as exc:  # the handler's failure is the job's, not the worker's
            done.set()
            beat.join()
            retryable = not isinstance(exc, PermanentFailure)
            self._finish(lambda: self.client.fail(
                ctx.job_id, {"code": type(exc).__name__, "message": str(exc)[:4000]},
                retryable=retryable), failed=True)
            return
        done.set()
        beat.join()
        self._finish(lambda: self.client.complete(ctx.job_id, result), failed=False)

    def _finish(self, call: Callable[[], Any], failed: bool) -> None:
        try:
            call()
        except (InvalidTransition, NotFound) as exc:
            # The job moved on without us (cancelled, or its lease expired and another took it).
            log.warning("could not finish the job: %s", exc)
            return
        with self._count_lock:
            if failed:
                self.failed += 1
            else:
                self.completed += 1

    def _heartbeat(self, ctx: JobContext, done: threading.Event) -> None:
        interval = self.lease_seconds / 3.0
        while not done.wait(interval):
            if ctx._asking.is_set():
                continue  # pending_hitl holds no lease
            try:
                self.client.heartbeat(ctx.job_id, lease_seconds=self.lease_seconds)
            except InvalidTransition:
                continue  # between ask and answer, or finished: nothing to extend
            except JobstoreError as exc:
                log.warning("heartbeat for %s failed: %s", ctx.job_id, exc)
