"""The shapes of what the server answers (``http/openapi.json``), as TypedDicts: type checkers
see each field's type, and at run time they are plain dicts. Fields a job may lack (a result
before it completes) are optional; the server may add fields in later versions."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

try:  # Python 3.8+: typing has TypedDict
    from typing import TypedDict
except ImportError:  # pragma: no cover
    from typing_extensions import TypedDict


class Hitl(TypedDict, total=False):
    """A question to a person: ``request_id`` names it in the answer."""

    request_id: str
    type: str
    prompt: Any
    key: Optional[str]
    requested_at: str
    expires_at: Optional[str]
    response: Any
    responded_at: Optional[str]
    responded_by: Optional[str]


class JobError(TypedDict, total=False):
    code: str
    message: str


class _JobRequired(TypedDict):
    job_id: str
    type: str
    status: str
    version: int


class Job(_JobRequired, total=False):
    """A job: ``status`` is one of pending, scheduled, running, pending_hitl, completed,
    failed, cancelled."""

    user_id: Optional[str]
    description: Optional[str]
    input: Any
    data: Dict[str, Any]
    labels: Dict[str, str]
    progress: Optional[Dict[str, Any]]
    hitl: Optional[Hitl]
    result: Any
    error: Optional[JobError]
    errors: List[JobError]
    worker: Optional[str]
    lease_expires_at: Optional[str]
    attempt: int
    max_attempts: int
    created_at: str
    updated_at: str
    started_at: Optional[str]
    finished_at: Optional[str]
    ttl_seconds: Optional[int]
    priority: int
    run_at: Optional[str]
    retry: Optional[Dict[str, Any]]


class _EventRequired(TypedDict):
    seq: int
    job_id: str
    version: int
    type: str


class Event(_EventRequired, total=False):
    """One change of one job: ``type`` is e.g. ``job.created``, ``job.hitl_answered``."""

    at: str
    data: Dict[str, Any]


class FeedPage(TypedDict):
    """A page of the global feed (``GET /events``)."""

    events: List[Event]
    next_after: int
    head: int
    first: int


class _ScheduleRequired(TypedDict):
    schedule_id: str
    cron: str
    version: int


class Schedule(_ScheduleRequired, total=False):
    timezone: str
    job: Dict[str, Any]
    paused: bool
    created_at: str
    updated_at: str
    last_run_at: Optional[str]
    last_job_id: Optional[str]
    next_run_at: Optional[str]
