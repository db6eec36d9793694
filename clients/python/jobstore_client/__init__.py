"""Client and worker kit for jobstore, the durable event-sourced job store.

    from jobstore_client import JobstoreClient
    client = JobstoreClient("http://127.0.0.1:8000")
    job = client.create("skill_creation", input={"prompt": "..."})
"""

from .aio import AsyncJobstoreClient
from .aio_worker import AsyncJobContext, AsyncWorker
from .client import JobstoreClient
from .errors import (AlreadyExists, BadGateway, ConnectionFailed, Forbidden, GatewayTimeout,
                     HeadersTooLarge, HitlTimeout, IdempotencyKeyReused, InvalidArgument,
                     InvalidTransition, JobstoreError, MisdirectedRequest, NotFound,
                     PayloadTooLarge, StaleRequest, Truncated, Unauthenticated, Unavailable,
                     UnsupportedMediaType, VersionMismatch, finish_error)
from .models import Event, FeedPage, Hitl, Job, JobError, Schedule
from .worker import JobContext, PermanentFailure, Worker, WorkerStopping

__all__ = [
    "AlreadyExists", "AsyncJobContext", "AsyncJobstoreClient", "AsyncWorker", "Event", "FeedPage",
    "Hitl", "Job", "JobError", "Schedule", "BadGateway", "ConnectionFailed", "Forbidden",
    "GatewayTimeout", "HeadersTooLarge", "HitlTimeout", "IdempotencyKeyReused", "InvalidArgument",
    "InvalidTransition", "JobContext", "JobstoreClient", "JobstoreError", "MisdirectedRequest",
    "NotFound", "PayloadTooLarge", "PermanentFailure", "StaleRequest", "Truncated",
    "Unauthenticated", "Unavailable", "UnsupportedMediaType", "VersionMismatch", "Worker",
    "WorkerStopping", "finish_error",
]
