"""Client and worker kit for jobstore, the durable event-sourced job store.

    from jobstore_client import JobstoreClient
    client = JobstoreClient("http://127.0.0.1:8000")
    job = client.create("skill_creation", input={"prompt": "..."})
"""

from .aio import AsyncJobstoreClient
from .client import JobstoreClient
from .errors import (AlreadyExists, ConnectionFailed, Forbidden, HitlTimeout, InvalidArgument,
                     InvalidTransition, JobstoreError, NotFound, PayloadTooLarge, StaleRequest,
                     Truncated, Unauthenticated, Unavailable, VersionMismatch)
from .worker import JobContext, Worker

__all__ = [
    "AlreadyExists", "AsyncJobstoreClient", "ConnectionFailed", "Forbidden", "HitlTimeout",
    "InvalidArgument", "InvalidTransition", "JobContext", "JobstoreClient", "JobstoreError",
    "NotFound", "PayloadTooLarge", "StaleRequest", "Truncated", "Unauthenticated", "Unavailable",
    "VersionMismatch", "Worker",
]
