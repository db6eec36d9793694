"""A blocking client for the jobstore REST API (v1), built on the standard library alone.

Retry rules (see :meth:`JobstoreClient._request`), with exponential backoff until the call's
deadline (``retry_for`` seconds, not a count):

* a connection that could not be made, and a 503 ``unavailable`` (the server guarantees nothing
  was written), are retried for every call;
* a kept-alive connection that the server (or a proxy) closed before any byte of the answer came
  back is retried at once on a new connection, for every call: the request was not read. A
  connection idle longer than ``idle_timeout`` (4 s; the server drops idle ones at 5 s) is not
  reused at all;
* a connection lost after the request was sent, and a 502 or 504 from a proxy, are retried only
  for calls that are safe to repeat: reads, creates (each carries an ``Idempotency-Key``, so a
  retry returns the first job), and writes sent with ``If-Match`` (a retry of a write that
  landed gets 412, never a second change).

Any error answer becomes a typed exception, a proxy's HTML page included (``BadGateway``,
``GatewayTimeout``, ``Unavailable``, or ``JobstoreError`` with the status and the first bytes).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import (ConnectionFailed, HitlTimeout, JobstoreError, Truncated, Unavailable,
                     error_from_response)

# A connection the server closed while it sat in our pool: the request on it was never read.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                     ConnectionAbortedError)

Job = Dict[str, Any]
Event = Dict[str, Any]

_MAX_WAIT = 60.0  # the server's long-poll ceiling, seconds


def _json_or_none(raw: bytes, headers: Mapping[str, str]) -> Any:
    """The body as JSON, or None when it is empty or not JSON (a proxy's HTML page)."""
    if not raw:
        return None
    if "json" not in headers.get("content-type", "application/json"):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class JobstoreClient:
    """Talks to one jobstore server. Thread-safe: each thread keeps its own keep-alive connection.

    :param base_url: e.g. ``http://127.0.0.1:8000``
    :param token: bearer token, when the server runs with ``--token-file``
    :param user_id: sent as ``X-User-Id`` (the owner check) and the default owner of new jobs
    :param timeout: socket timeout in seconds for calls that do not long-poll
    :param retry_for: how long (seconds) a retryable failure is retried before the call raises
    :param retries: optionally, at most this many retries as well (None: only ``retry_for``)
    :param idle_timeout: a kept-alive connection idle longer than this is closed, not reused
    """

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
        self.token = token
        self.user_id = user_id
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.retry_for = retry_for
        self.idle_timeout = idle_timeout
        self._local = threading.local()

    # ----------------------------------------------------------------------------- transport

    def close(self) -> None:
        """Closes this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> "JobstoreClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _connection(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it carried a request before (a reused one may
        have been closed by the server meanwhile). One idle past ``idle_timeout`` is dropped:
        the server would close it at any moment."""
        conn = getattr(self._local, "conn", None)
        last_used = getattr(self._local, "last_used", 0.0)
        if conn is not None and time.monotonic() - last_used > self.idle_timeout:
            self.close()
            conn = None
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        reused = conn.sock is not None
        if reused:
            conn.sock.settimeout(timeout)
        return conn, reused

    def _may_retry(self, deadline: float, attempt: int) -> bool:
        if self.retries is not None and attempt >= self.retries:
            return False
        return time.monotonic() < deadline

    def _headers(self, extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.user_id:
            headers["X-User-Id"] = self.user_id
        if extra:
            headers.update({k: v for k, v in extra.items() if v is not None})
        return headers

    def _request(self, method: str, path: str, body: Any = None,
                 query: Optional[Mapping[str, Any]] = None,
                 headers: Optional[Mapping[str, str]] = None, safe_to_repeat: bool = False,
                 wait: float = 0.0) -> Tuple[int, Any, Dict[str, str]]:
        """Sends one request; returns (status, decoded JSON body or None, headers).

        Raises the contract's exception for any status >= 400.
        """
        if query:
            pairs = []
            for key, value in query.items():
                if value is None:
                    continue
                for item in (value if isinstance(value, (list, tuple)) else [value]):
                    pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
            if pairs:
                path += "?" + urllib.parse.urlencode(pairs)
        payload = None if body is None else json.dumps(body).encode("utf-8")
        all_headers = self._headers(headers)
        # A write with If-Match cannot land twice: a retry of one that did gets 412.
        safe_to_repeat = safe_to_repeat or "If-Match" in all_headers
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        timeout = self.timeout + wait
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            sent = False
            conn, reused = self._connection(timeout)
            try:
                conn.request(method, "/api/v1" + path if not path.startswith("/healthz") else path,
                             body=payload, headers=all_headers)
                sent = True
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                response_headers = {k.lower(): v for k, v in response.getheaders()}
                self._local.last_used = time.monotonic()
                if response_headers.get("connection", "").lower() == "close":
                    self.close()
            except (ConnectionError, socket.timeout, OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and isinstance(exc, _STALE_CONNECTION) and self._may_retry(deadline, attempt):
                    attempt += 1  # closed while pooled: the request was not read; go again now
                    continue
                # Nothing reached the server: any call may go again. Otherwise only safe ones.
                repeatable = not sent or isinstance(exc, ConnectionRefusedError) or safe_to_repeat
                if repeatable and self._may_retry(deadline, attempt):
                    attempt += 1
                    self._sleep(attempt)
                    continue
                raise ConnectionFailed(f"{method} {path}: {exc}") from exc
            decoded = _json_or_none(raw, response_headers)
            # 503: jobstore wrote nothing. 502/504: a proxy's answer; the request may have landed.
            if (status == 503 or (status in (502, 504) and safe_to_repeat)) and \
                    self._may_retry(deadline, attempt):
                attempt += 1
                self._sleep(attempt)
                continue
            if status >= 400:
                raise error_from_response(status, decoded, raw)
            return status, decoded, response_headers

    def _sleep(self, attempt: int) -> None:
        delay = min(self.backoff * (2 ** (attempt - 1)), 5.0)  # capped: a long outage polls at 5 s
        time.sleep(delay + random.uniform(0, delay / 2))

    @staticmethod
    def _if_match(version: Optional[int]) -> Optional[Dict[str, str]]:
        return {"If-Match": f'"{version}"'} if version is not None else None

    @staticmethod
    def _path(job_id: str, suffix: str = "") -> str:
        return "/jobs/" + urllib.parse.quote(job_id, safe="") + suffix

    # ---------------------------------------------------------------------------------- jobs

    def create(self, type: str = "default", *, description: Optional[str] = None,
               input: Any = None, labels: Optional[Mapping[str, str]] = None,
               user_id: Optional[str] = None, ttl_seconds: Optional[int] = None,
               max_attempts: Optional[int] = None, job_id: Optional[str] = None,
               idempotency_key: Optional[str] = None, priority: Optional[int] = None,
               run_at: Optional[str] = None, delay_seconds: Optional[float] = None,
               retry: Optional[Mapping[str, Any]] = None) -> Job:
        """Creates a job. An Idempotency-Key is generated when none is given, so retries of this
        call never create a second job.

        ``priority`` (-1000..1000, higher first), ``run_at`` (RFC 3339) or ``delay_seconds``
        (not claimable before then: status ``scheduled``), and ``retry`` (``{"max_attempts",
        "backoff": "exponential"|"fixed", "initial_seconds", "max_seconds", "jitter"}``: a
        retryable failure with attempts left is tried again after the backoff)."""
        body = {k: v for k, v in {
            "type": type, "description": description, "input": input,
            "labels": dict(labels) if labels is not None else None,
            "user_id": user_id or self.user_id, "ttl_seconds": ttl_seconds,
            "max_attempts": max_attempts, "job_id": job_id, "priority": priority,
            "run_at": run_at, "delay_seconds": delay_seconds,
            "retry": dict(retry) if retry is not None else None}.items() if v is not None}
        key = idempotency_key or str(uuid.uuid4())
        _, job, _ = self._request("POST", "/jobs", body, headers={"Idempotency-Key": key},
                                  safe_to_repeat=True)
        return job

    def create_batch(self, jobs: Sequence[Mapping[str, Any]]) -> List[Job]:
        """Creates up to 1000 jobs in one durable write, all or none."""
        _, body, _ = self._request("POST", "/jobs/batch", {"jobs": list(jobs)})
        return body["jobs"]

    def get(self, job_id: str, *, wait: Optional[float] = None,
            after_version: Optional[int] = None) -> Job:
        """The job; with ``wait``, long-polls (up to 60 s) until its version exceeds
        ``after_version`` (default: the current one)."""
        wait = min(wait, _MAX_WAIT) if wait else None
        _, job, _ = self._request("GET", self._path(job_id),
                                  query={"wait": wait, "after_version": after_version},
                                  safe_to_repeat=True, wait=wait or 0)
        return job

    def list(self, *, status: Union[str, Sequence[str], None] = None, type: Optional[str] = None,
             user_id: Optional[str] = None, labels: Optional[Mapping[str, str]] = None,
             page_size: int = 100) -> Iterator[Job]:
        """Every matching job, newest first, following the cursor page by page."""
        if isinstance(status, (list, tuple)):
            status = ",".join(status)
        cursor = None
        while True:
            query = {"status": status, "type": type, "user_id": user_id, "limit": page_size,
                     "cursor": cursor,
                     "label": [f"{k}:{v}" for k, v in (labels or {}).items()] or None}
            _, page, _ = self._request("GET", "/jobs", query=query, safe_to_repeat=True)
            yield from page["jobs"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def update(self, job_id: str, *, progress: Optional[Mapping[str, Any]] = None,
               data: Optional[Mapping[str, Any]] = None,
               labels: Optional[Mapping[str, Optional[str]]] = None,
               priority: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        """Replaces progress, merge-patches data (RFC 7396), merges labels (None removes one),
        sets the priority (only while the job waits)."""
        body = {k: v for k, v in {"progress": progress, "data": data, "labels": labels,
                                  "priority": priority}.items() if v is not None}
        _, job, _ = self._request("PATCH", self._path(job_id), body,
                                  headers=self._if_match(if_match))
        return job

    def start(self, job_id: str, *, worker: Optional[str] = None,
              lease_seconds: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        body = {k: v for k, v in {"worker": worker, "lease_seconds": lease_seconds}.items()
                if v is not None}
        return self._post(job_id, "/start", body, if_match)

    def heartbeat(self, job_id: str, *, lease_seconds: Optional[int] = None,
                  progress: Optional[Mapping[str, Any]] = None,
                  if_match: Optional[int] = None) -> Job:
        body = {k: v for k, v in {"lease_seconds": lease_seconds, "progress": progress}.items()
                if v is not None}
        return self._post(job_id, "/heartbeat", body, if_match)

    def claim(self, worker: str, *, types: Optional[Sequence[str]] = None,
              lease_seconds: Optional[int] = None, wait: Optional[float] = None) -> Optional[Job]:
        """Leases the oldest pending job (of ``types``) to ``worker``; None when there is none
        (after long-polling up to ``wait`` seconds, at most 60)."""
        wait = min(wait, _MAX_WAIT) if wait else None
        body = self._claim_body(worker, types, lease_seconds)
        status, job, _ = self._request("POST", "/jobs/claim", body, query={"wait": wait},
                                       wait=wait or 0)
        return job if status == 200 else None

    def complete(self, job_id: str, result: Any = None, *, if_match: Optional[int] = None) -> Job:
        return self._post(job_id, "/complete", {"result": result}, if_match)

    def complete_and_claim(self, job_id: str, result: Any, worker: str, *,
                           types: Optional[Sequence[str]] = None,
                           lease_seconds: Optional[int] = None,
                           if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        """Completes the job and, in the same durable write, claims the next pending one (of
        ``types``): one request per job for a worker. Returns (the completed job, the claimed
        job or None)."""
        body = {"result": result, "next": self._claim_body(worker, types, lease_seconds)}
        _, both, _ = self._request("POST", self._path(job_id, "/complete"), body,
                                   headers=self._if_match(if_match))
        return both["job"], both["next"]

    @staticmethod
    def _claim_body(worker: str, types: Optional[Sequence[str]],
                    lease_seconds: Optional[int]) -> Dict[str, Any]:
        return {k: v for k, v in {"worker": worker, "types": list(types) if types else None,
                                  "lease_seconds": lease_seconds}.items() if v is not None}

    def fail(self, job_id: str, error: Union[str, Mapping[str, str]], *,
             retryable: Optional[bool] = None, if_match: Optional[int] = None) -> Job:
        """Fails the attempt; ``error`` is a message or ``{"code": ..., "message": ...}``. A job
        with a retry policy and attempts left is scheduled again (status ``scheduled``) unless
        ``retryable`` is False; otherwise it is ``failed``."""
        body: Dict[str, Any] = {"error": error if isinstance(error, str) else dict(error)}
        if retryable is not None:
            body["retryable"] = retryable
        return self._post(job_id, "/fail", body, if_match)

    def fail_and_claim(self, job_id: str, error: Union[str, Mapping[str, str]], worker: str, *,
                       retryable: Optional[bool] = None,
                       types: Optional[Sequence[str]] = None,
                       lease_seconds: Optional[int] = None,
                       if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        """``fail``, then claim the next pending job in the same write (as complete_and_claim)."""
        body: Dict[str, Any] = {"error": error if isinstance(error, str) else dict(error),
                                "next": self._claim_body(worker, types, lease_seconds)}
        if retryable is not None:
            body["retryable"] = retryable
        _, both, _ = self._request("POST", self._path(job_id, "/fail"), body,
                                   headers=self._if_match(if_match))
        return both["job"], both["next"]

    def retry(self, job_id: str, *, if_match: Optional[int] = None) -> Job:
        """Sends a ``failed`` or ``cancelled`` job back to ``pending`` with a new attempts
        budget (its earlier errors stay in ``errors``)."""
        return self._post(job_id, "/retry", {}, if_match)

    def cancel(self, job_id: str, reason: Optional[str] = None, *,
               if_match: Optional[int] = None) -> Job:
        return self._post(job_id, "/cancel", {"reason": reason} if reason else {}, if_match)

    def events(self, job_id: str) -> List[Event]:
        """The job's history, oldest first."""
        _, body, _ = self._request("GET", self._path(job_id, "/events"), safe_to_repeat=True)
        return body["events"]

    def _post(self, job_id: str, suffix: str, body: Any, if_match: Optional[int]) -> Job:
        _, job, _ = self._request("POST", self._path(job_id, suffix), body,
                                  headers=self._if_match(if_match))
        return job

    # ---------------------------------------------------------------------- human in the loop

    def request_hitl(self, job_id: str, type: str, prompt: Any,
                     timeout: Optional[int] = None, key: Optional[str] = None) -> Job:
        """Asks a person (running -> pending_hitl). The job's ``hitl.request_id`` names the
        request; ``timeout`` seconds later, unanswered, the job fails with ``hitl_timeout``.
        ``key`` names the question for a re-run of the job (see ``JobContext.ask``)."""
        body: Dict[str, Any] = {"type": type, "prompt": prompt}
        if timeout is not None:
            body["timeout_seconds"] = int(timeout)
        if key is not None:
            body["key"] = key
        return self._post(job_id, "/hitl", body, None)

    def respond_hitl(self, job_id: str, request_id: str, response: Any) -> Job:
        """Answers the open request (pending_hitl -> running)."""
        return self._post(job_id, "/hitl/response", {"request_id": request_id, "response": response},
                          None)

    def wait_for_hitl_response(self, job_id: str, timeout: Optional[float] = None) -> Any:
        """Blocks until the job's HITL request is answered and returns the answer. The answer may
        come from any process on any machine. Raises HitlTimeout after ``timeout`` seconds
        (None: wait as long as it takes) and InvalidTransition when the job ended unanswered
        (e.g. its own HITL timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _MAX_WAIT if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise HitlTimeout(f"no answer for job {job_id} within {timeout} s")
            wait = max(0.0, min(left, _MAX_WAIT))
            status, body, _ = self._request("GET", self._path(job_id, "/hitl/response"),
                                            query={"wait": round(wait, 3)}, safe_to_repeat=True,
                                            wait=wait)
            if status == 200:
                return body["response"]

    # --------------------------------------------------------------------------------- feed

    def feed(self, after: int = 0, *, limit: int = 100, wait: Optional[float] = None,
             type: Optional[str] = None, job_id: Optional[str] = None) -> Dict[str, Any]:
        """One page of the global feed: {"events", "next_after", "head", "first"}."""
        _, page, _ = self._request("GET", "/events",
                                   query={"after": after, "limit": limit, "wait": wait,
                                          "type": type, "job_id": job_id},
                                   safe_to_repeat=True, wait=wait or 0)
        return page

    def follow(self, after: int = 0, *, type: Optional[str] = None,
               job_id: Optional[str] = None, wait: float = 30.0) -> Iterator[Event]:
        """Every event after ``after``, forever: long-polls, and after a dropped connection
        resumes from the last seq it yielded. Raises Truncated (with ``.first``) when the server
        no longer holds that history."""
        while True:
            try:
                page = self.feed(after, limit=1000, wait=wait, type=type, job_id=job_id)
            except (ConnectionFailed, Unavailable):
                time.sleep(self.backoff)
                continue
            except Truncated as exc:
                raise Truncated(f"history after seq {after} is gone; the first retained seq is "
                                f"{exc.first}", status=exc.status, body=exc.body) from exc
            for event in page["events"]:
                after = event["seq"]
                yield event
            after = max(after, page["next_after"])

    # --------------------------------------------------------------------------- schedules

    @staticmethod
    def _schedule_path(schedule_id: str) -> str:
        return "/schedules/" + urllib.parse.quote(schedule_id, safe="")

    def create_schedule(self, schedule_id: str, cron: str, *, timezone: Optional[str] = None,
                        job: Optional[Mapping[str, Any]] = None,
                        paused: Optional[bool] = None) -> Dict[str, Any]:
        """Creates a recurring job: at each time ``cron`` (crontab(5), 5 fields) names in
        ``timezone`` (IANA, default UTC), a job is created from ``job`` (a create body) with the
        id ``<schedule_id>:<yyyymmddThhmmZ>``."""
        body = {k: v for k, v in {"schedule_id": schedule_id, "cron": cron, "timezone": timezone,
                                  "job": dict(job) if job is not None else None,
                                  "paused": paused}.items() if v is not None}
        _, schedule, _ = self._request("POST", "/schedules", body)
        return schedule

    def get_schedule(self, schedule_id: str) -> Dict[str, Any]:
        _, schedule, _ = self._request("GET", self._schedule_path(schedule_id),
                                       safe_to_repeat=True)
        return schedule

    def list_schedules(self) -> List[Dict[str, Any]]:
        """Every schedule, by id, each with its ``next_run_at``."""
        _, body, _ = self._request("GET", "/schedules", safe_to_repeat=True)
        return body["schedules"]

    def update_schedule(self, schedule_id: str, *, cron: Optional[str] = None,
                        timezone: Optional[str] = None, job: Optional[Mapping[str, Any]] = None,
                        paused: Optional[bool] = None,
                        if_match: Optional[int] = None) -> Dict[str, Any]:
        """Pauses or resumes (``paused=``), or changes the cron, time zone or template."""
        body = {k: v for k, v in {"cron": cron, "timezone": timezone,
                                  "job": dict(job) if job is not None else None,
                                  "paused": paused}.items() if v is not None}
        _, schedule, _ = self._request("PATCH", self._schedule_path(schedule_id), body,
                                       headers=self._if_match(if_match))
        return schedule

    def delete_schedule(self, schedule_id: str, *, if_match: Optional[int] = None) -> None:
        """Deletes the schedule; the jobs it created stay."""
        self._request("DELETE", self._schedule_path(schedule_id), headers=self._if_match(if_match))

    # -------------------------------------------------------------------------------- ops

    def stats(self) -> Dict[str, Any]:
        _, body, _ = self._request("GET", "/stats", safe_to_repeat=True)
        return body

    def healthy(self) -> bool:
        try:
            status, _, _ = self._request("GET", "/healthz", safe_to_repeat=True)
            return status == 200
        except JobstoreError:
            return False
