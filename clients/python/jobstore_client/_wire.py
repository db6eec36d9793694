"""What the blocking and the asyncio client share, free of any I/O: how a call becomes an HTTP
request (path, query, body, headers), which failures may be retried, and how an answer is read.
Each client only moves the bytes (``client.py`` on http.client, ``aio.py`` on asyncio streams)."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

MAX_WAIT = 60.0  # the server's long-poll ceiling, seconds

Query = Mapping[str, Any]
ErrorArg = Union[str, Mapping[str, str]]


@dataclass(frozen=True)
class Request:
    """One call, ready to send: ``target`` is the path with its query string."""

    method: str
    target: str
    payload: Optional[bytes]
    headers: Dict[str, str]
    safe_to_repeat: bool  # a repeat cannot change anything twice (reads, keyed creates, If-Match)
    timeout: float  # the socket timeout plus any long-poll wait


class ClientOptions:
    """The settings both clients take, and their retry budget (see ``JobstoreClient``)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: Optional[str] = None,
                 user_id: Optional[str] = None, timeout: float = 30.0,
                 retries: Optional[int] = None, backoff: float = 0.1, retry_for: float = 30.0,
                 idle_timeout: float = 4.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"base_url must be http(s)://host:port, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._netloc = parsed.netloc
        self.token = token
        self.user_id = user_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.retry_for = retry_for
        self.idle_timeout = idle_timeout

    def _may_retry(self, deadline: float, attempt: int) -> bool:
        if self.retries is not None and attempt >= self.retries:
            return False
        return time.monotonic() < deadline

    def _prepare(self, method: str, path: str, body: Any, query: Optional[Query],
                 headers: Optional[Mapping[str, Optional[str]]], wait: float,
                 safe_to_repeat: bool) -> "Request":
        return prepare(method, path, body, query, headers, token=self.token,
                       user_id=self.user_id, timeout=self.timeout, wait=wait,
                       safe_to_repeat=safe_to_repeat)


def prepare(method: str, path: str, body: Any, query: Optional[Query],
            headers: Optional[Mapping[str, Optional[str]]], *, token: Optional[str],
            user_id: Optional[str], timeout: float, wait: float,
            safe_to_repeat: bool) -> Request:
    if query:
        pairs: List[Tuple[str, str]] = []
        for key, value in query.items():
            if value is None:
                continue
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
        if pairs:
            path += "?" + urllib.parse.urlencode(pairs)
    all_headers = {"Accept": "application/json"}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if user_id:
        all_headers["X-User-Id"] = user_id
    if headers:
        all_headers.update({k: v for k, v in headers.items() if v is not None})
    payload = None if body is None else json.dumps(body).encode("utf-8")
    if payload is not None:
        all_headers["Content-Type"] = "application/json"
    target = path if path.startswith("/healthz") else "/api/v1" + path
    # A write with If-Match cannot land twice: a retry of one that did gets 412.
    return Request(method, target, payload, all_headers,
                   safe_to_repeat or "If-Match" in all_headers, timeout + wait)


def json_or_none(raw: bytes, headers: Mapping[str, str]) -> Any:
    """The body as JSON, or None when it is empty or not JSON (a proxy's HTML page)."""
    if not raw:
        return None
    if "json" not in headers.get("content-type", "application/json"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def retry_status(status: int, safe_to_repeat: bool) -> bool:
    """503: jobstore wrote nothing. 502/504: a proxy's answer; the request may have landed."""
    return status == 503 or (status in (502, 504) and safe_to_repeat)


def backoff_delay(backoff: float, attempt: int) -> float:
    """Exponential with jitter, capped: a long outage polls every 5 s or so."""
    delay = min(backoff * 2.0 ** (attempt - 1), 5.0)
    return delay + random.uniform(0, delay / 2)


def clamp_wait(wait: Optional[float]) -> Optional[float]:
    return min(wait, MAX_WAIT) if wait else None


# ------------------------------------------------------------------------- paths and bodies

def job_path(job_id: str, suffix: str = "") -> str:
    return "/jobs/" + urllib.parse.quote(job_id, safe="") + suffix


def schedule_path(schedule_id: str) -> str:
    return "/schedules/" + urllib.parse.quote(schedule_id, safe="")


def if_match(version: Optional[int]) -> Optional[Dict[str, Optional[str]]]:
    return {"If-Match": f'"{version}"'} if version is not None else None


def present(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields that were given (None means: not sent)."""
    return {k: v for k, v in fields.items() if v is not None}


def create_body(type: str, description: Optional[str], input: Any,
                labels: Optional[Mapping[str, str]], user_id: Optional[str],
                ttl_seconds: Optional[int], max_attempts: Optional[int], job_id: Optional[str],
                priority: Optional[int], run_at: Optional[str], delay_seconds: Optional[float],
                retry: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    return present({
        "type": type, "description": description, "input": input,
        "labels": dict(labels) if labels is not None else None, "user_id": user_id,
        "ttl_seconds": ttl_seconds, "max_attempts": max_attempts, "job_id": job_id,
        "priority": priority, "run_at": run_at, "delay_seconds": delay_seconds,
        "retry": dict(retry) if retry is not None else None})


def idempotency_key(given: Optional[str]) -> Dict[str, Optional[str]]:
    """A create carries a key, generated when none is given, so its retries never duplicate."""
    return {"Idempotency-Key": given or str(uuid.uuid4())}


def list_query(status: Union[str, Sequence[str], None], type: Optional[str],
               user_id: Optional[str], labels: Optional[Mapping[str, str]], page_size: int,
               cursor: Optional[str]) -> Dict[str, Any]:
    if isinstance(status, (list, tuple)):
        status = ",".join(status)
    return {"status": status, "type": type, "user_id": user_id, "limit": page_size,
            "cursor": cursor, "label": [f"{k}:{v}" for k, v in (labels or {}).items()] or None}


def update_body(progress: Optional[Mapping[str, Any]], data: Optional[Mapping[str, Any]],
                labels: Optional[Mapping[str, Optional[str]]],
                priority: Optional[int]) -> Dict[str, Any]:
    return present({"progress": progress, "data": data, "labels": labels, "priority": priority})


def claim_body(worker: str, types: Optional[Sequence[str]],
               lease_seconds: Optional[int]) -> Dict[str, Any]:
    return present({"worker": worker, "types": list(types) if types else None,
                    "lease_seconds": lease_seconds})


def finish_body(entries: Sequence[Mapping[str, Any]], next_worker: Optional[str],
                types: Optional[Sequence[str]], lease_seconds: Optional[int],
                max_jobs: Optional[int]) -> Dict[str, Any]:
    """POST /jobs/finish: entries as the API has them ({"job_id", "if_match"?, "complete":
    {"result"} or "fail": {"error", "retryable"?}}), and the next claim when a worker is named."""
    body: Dict[str, Any] = {"jobs": [dict(e) for e in entries]}
    if next_worker is not None:
        body["next"] = present({**claim_body(next_worker, types, lease_seconds), "max_jobs": max_jobs})
    return body


def fail_body(error: ErrorArg, retryable: Optional[bool]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"error": error if isinstance(error, str) else dict(error)}
    if retryable is not None:
        body["retryable"] = retryable
    return body


def hitl_body(type: str, prompt: Any, timeout: Optional[int], key: Optional[str]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"type": type, "prompt": prompt}
    if timeout is not None:
        body["timeout_seconds"] = int(timeout)
    if key is not None:
        body["key"] = key
    return body


def feed_query(after: int, limit: int, wait: Optional[float], type: Optional[str],
               job_id: Optional[str]) -> Dict[str, Any]:
    return {"after": after, "limit": limit, "wait": wait, "type": type, "job_id": job_id}


def schedule_body(cron: Optional[str], timezone: Optional[str], job: Optional[Mapping[str, Any]],
                  paused: Optional[bool]) -> Dict[str, Any]:
    return present({"cron": cron, "timezone": timezone,
                    "job": dict(job) if job is not None else None, "paused": paused})


def hitl_wait(deadline: Optional[float], now: float) -> Optional[float]:
    """How long the next answer long-poll may wait; None once ``deadline`` has passed."""
    left = MAX_WAIT if deadline is None else deadline - now
    if left <= 0:
        return None
    return round(max(0.0, min(left, MAX_WAIT)), 3)
