"""The rules both worker kits (``worker.py`` on threads, ``aio_worker.py`` on asyncio) follow
when a handler ends: what becomes of its result or exception, when a finishing call is tried
again, whether an earlier try landed, and what answer a keyed question already has."""

from __future__ import annotations

import enum
import inspect
import json
import logging
from typing import Any, Dict, Iterable, Optional, Tuple

from .errors import (BadGateway, ConnectionFailed, GatewayTimeout, InvalidTransition, NotFound,
                     PayloadTooLarge, Unavailable, VersionMismatch)
from .models import Event, Job

# Failures of a finishing call that another try may fix: the server or the network was away.
TRANSIENT = (ConnectionFailed, Unavailable, BadGateway, GatewayTimeout)

UNANSWERED: Any = object()


class WorkerStopping(Exception):
    """Raised inside ``ctx.ask`` when the worker stops while the question is open: the job stays
    ``pending_hitl`` (the person can still answer) and is resumed by a worker after the answer,
    when its fresh lease expires unclaimed."""


class PermanentFailure(Exception):
    """Raised by a handler for a failure that another attempt cannot fix (bad input, say): the
    job fails for good even if its retry policy has attempts left. Any other exception fails the
    attempt as retryable, and a job created with ``retry`` is tried again after its backoff."""


def handler_error(exc: BaseException) -> Tuple[Dict[str, str], bool]:
    """The job's error for a handler's exception, and whether another attempt may fix it."""
    return ({"code": type(exc).__name__, "message": str(exc)[:4000]},
            not isinstance(exc, PermanentFailure))


def result_problem(result: Any, runtime: str) -> Optional[Dict[str, str]]:
    """Why `result` cannot complete a job (None: it can). A coroutine is closed, not awaited."""
    if inspect.iscoroutine(result):
        result.close()
        return {"code": "handler_returned_coroutine",
                "message": f"the handler returned a coroutine; {runtime}"}
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return {"code": "result_not_json",
                "message": f"the handler returned {type(result).__name__}, which is not JSON: "
                           f"{exc}"[:4000]}
    return None


class Verdict(enum.Enum):
    DONE = "done"  # the finishing call landed
    RETRY = "retry"  # transient: try again after a pause
    CHECK_LANDED = "check_landed"  # 412 after a retry: an earlier try may have landed
    GIVE_UP = "give_up"  # the job moved on without us; log and go on
    TOO_LARGE = "too_large"  # the server takes no body this large: fail the job instead


def finish_verdict(exc: Exception, tried: bool, lease_left: float, delay: float) -> Verdict:
    """What to do after a finishing call (complete/fail) raised `exc`. A transient failure is
    retried while the lease lasts; If-Match makes that safe, so a 412 after a retry means an
    earlier try may have landed; anything else means the job is no longer ours."""
    if isinstance(exc, TRANSIENT):
        return Verdict.RETRY if delay < lease_left else Verdict.GIVE_UP
    if isinstance(exc, VersionMismatch) and tried:
        return Verdict.CHECK_LANDED
    if isinstance(exc, PayloadTooLarge):
        return Verdict.TOO_LARGE
    return Verdict.GIVE_UP


def too_large(entry: Dict[str, Any]) -> Dict[str, str]:
    """The error of a job whose result the server would not take (--max-body-bytes)."""
    return {"code": "result_too_large",
            "message": f"the handler's result ({len(json.dumps(entry))} bytes as JSON) is larger "
                       "than the server takes (--max-body-bytes)"}


def log_lost_finish(log: logging.Logger, how: str, job_id: str, exc: Exception) -> None:
    """Logs a finishing call given up: a warning when the job moved on without us (cancelled,
    changed, or its lease expired and another worker took it), else an error."""
    expected = isinstance(exc, (InvalidTransition, NotFound, VersionMismatch))
    log.log(logging.WARNING if expected else logging.ERROR, "could not %s job %s: %s", how,
            job_id, exc)


def landed(job: Job, how: str, attempt: Optional[int]) -> bool:
    """Whether `job` (read after a lost answer) shows our complete/fail of attempt `attempt`."""
    if how == "complete":
        return job["status"] == "completed"
    return job["status"] in ("failed", "scheduled") and job.get("attempt") == attempt


def recorded_answer(events: Iterable[Event], key: str) -> Any:
    """The newest answer a job's history holds for a question asked with `key`, or UNANSWERED."""
    asked: Dict[str, bool] = {}
    answer: Any = UNANSWERED
    for event in events:
        data = event.get("data") or {}
        if event["type"] == "job.hitl_requested":
            asked[data.get("request_id", "")] = data.get("key") == key
        elif event["type"] == "job.hitl_answered" and asked.get(data.get("request_id", "")):
            answer = data.get("response")
    return answer
