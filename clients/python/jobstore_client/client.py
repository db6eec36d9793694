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
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, cast

from . import _wire
from .errors import ConnectionFailed, HitlTimeout, JobstoreError, Truncated, Unavailable, error_from_response
from .models import Event, FeedPage, Job, Schedule

# A connection the server closed while it sat in our pool: the request on it was never read.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                     ConnectionAbortedError)


class JobstoreClient(_wire.ClientOptions):
    """Talks to one jobstore server. Thread-safe: each thread keeps its own keep-alive connection.

    :param base_url: e.g. ``http://127.0.0.1:8000``
    :param token: bearer token, when the server runs with ``--token-file``
    :param user_id: sent as ``X-User-Id`` (the owner check) and the default owner of new jobs
    :param timeout: socket timeout in seconds for calls that do not long-poll (a long-poll's
        ``wait`` is added to it)
    :param retry_for: how long (seconds) a retryable failure is retried before the call raises
    :param retries: optionally, at most this many retries as well (None: only ``retry_for``)
    :param backoff: the first retry's pause (seconds), doubled each time up to 5 s
    :param idle_timeout: a kept-alive connection idle longer than this is closed, not reused
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: Optional[str] = None,
                 user_id: Optional[str] = None, timeout: float = 30.0,
                 retries: Optional[int] = None, backoff: float = 0.1, retry_for: float = 30.0,
                 idle_timeout: float = 4.0):
        super().__init__(base_url, token, user_id, timeout, retries, backoff, retry_for,
                         idle_timeout)
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
        conn: Optional[http.client.HTTPConnection] = getattr(self._local, "conn", None)
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
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, reused

    def _request(self, method: str, path: str, body: Any = None,
                 query: Optional[Mapping[str, Any]] = None,
                 headers: Optional[Mapping[str, Optional[str]]] = None,
                 safe_to_repeat: bool = False,
                 wait: float = 0.0) -> Tuple[int, Any, Dict[str, str]]:
        """Sends one request; returns (status, decoded JSON body or None, headers).

        Raises the contract's exception for any status >= 400.
        """
        req = self._prepare(method, path, body, query, headers, wait, safe_to_repeat)
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            sent = False
            conn, reused = self._connection(req.timeout)
            try:
                conn.request(req.method, req.target, body=req.payload, headers=req.headers)
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
                repeatable = not sent or isinstance(exc, ConnectionRefusedError) or req.safe_to_repeat
                if repeatable and self._may_retry(deadline, attempt):
                    attempt += 1
                    time.sleep(_wire.backoff_delay(self.backoff, attempt))
                    continue
                raise ConnectionFailed(f"{method} {path}: {exc}") from exc
            decoded = _wire.json_or_none(raw, response_headers)
            if _wire.retry_status(status, req.safe_to_repeat) and self._may_retry(deadline, attempt):
                attempt += 1
                time.sleep(_wire.backoff_delay(self.backoff, attempt))
                continue
            if status >= 400:
                raise error_from_response(status, decoded, raw)
            return status, decoded, response_headers

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
        body = _wire.create_body(type, description, input, labels, user_id or self.user_id,
                                 ttl_seconds, max_attempts, job_id, priority, run_at,
                                 delay_seconds, retry)
        _, job, _ = self._request("POST", "/jobs", body,
                                  headers=_wire.idempotency_key(idempotency_key),
                                  safe_to_repeat=True)
        return cast(Job, job)

    def create_batch(self, jobs: Sequence[Mapping[str, Any]]) -> List[Job]:
        """Creates up to 1000 jobs in one durable write, all or none."""
        _, body, _ = self._request("POST", "/jobs/batch", {"jobs": list(jobs)})
        return cast(List[Job], body["jobs"])

    def get(self, job_id: str, *, wait: Optional[float] = None,
            after_version: Optional[int] = None) -> Job:
        """The job; with ``wait``, long-polls (up to 60 s) until its version exceeds
        ``after_version`` (default: the current one)."""
        wait = _wire.clamp_wait(wait)
        _, job, _ = self._request("GET", _wire.job_path(job_id),
                                  query={"wait": wait, "after_version": after_version},
                                  safe_to_repeat=True, wait=wait or 0)
        return cast(Job, job)

    def list(self, *, status: Union[str, Sequence[str], None] = None, type: Optional[str] = None,
             user_id: Optional[str] = None, labels: Optional[Mapping[str, str]] = None,
             page_size: int = 100) -> Iterator[Job]:
        """Every matching job, newest first, following the cursor page by page."""
        cursor = None
        while True:
            query = _wire.list_query(status, type, user_id, labels, page_size, cursor)
            _, page, _ = self._request("GET", "/jobs", query=query, safe_to_repeat=True)
            yield from cast(List[Job], page["jobs"])
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def update(self, job_id: str, *, progress: Optional[Mapping[str, Any]] = None,
               data: Optional[Mapping[str, Any]] = None,
               labels: Optional[Mapping[str, Optional[str]]] = None,
               priority: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        """Replaces progress, merge-patches data (RFC 7396), merges labels (None removes one),
        sets the priority (only while the job waits)."""
        _, job, _ = self._request("PATCH", _wire.job_path(job_id),
                                  _wire.update_body(progress, data, labels, priority),
                                  headers=_wire.if_match(if_match))
        return cast(Job, job)

    def start(self, job_id: str, *, worker: Optional[str] = None,
              lease_seconds: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        body = _wire.present({"worker": worker, "lease_seconds": lease_seconds})
        return self._post(job_id, "/start", body, if_match)

    def heartbeat(self, job_id: str, *, lease_seconds: Optional[int] = None,
                  progress: Optional[Mapping[str, Any]] = None,
                  if_match: Optional[int] = None) -> Job:
        body = _wire.present({"lease_seconds": lease_seconds, "progress": progress})
        return self._post(job_id, "/heartbeat", body, if_match)

    def claim(self, worker: str, *, types: Optional[Sequence[str]] = None,
              lease_seconds: Optional[int] = None, wait: Optional[float] = None) -> Optional[Job]:
        """Leases the oldest pending job (of ``types``) to ``worker``; None when there is none
        (after long-polling up to ``wait`` seconds, at most 60)."""
        wait = _wire.clamp_wait(wait)
        status, job, _ = self._request("POST", "/jobs/claim",
                                       _wire.claim_body(worker, types, lease_seconds),
                                       query={"wait": wait}, wait=wait or 0)
        return cast(Job, job) if status == 200 else None

    def claim_many(self, worker: str, *, max_jobs: int = 1,
                   types: Optional[Sequence[str]] = None, lease_seconds: Optional[int] = None,
                   wait: Optional[float] = None) -> List[Job]:
        """Leases up to ``max_jobs`` (1-100) pending jobs in claim order, in one write; an empty
        list when there is none (after long-polling up to ``wait`` seconds)."""
        wait = _wire.clamp_wait(wait)
        body = {**_wire.claim_body(worker, types, lease_seconds), "max_jobs": max_jobs}
        status, answer, _ = self._request("POST", "/jobs/claim", body, query={"wait": wait},
                                          wait=wait or 0)
        return cast(List[Job], answer["jobs"]) if status == 200 else []

    def complete(self, job_id: str, result: Any = None, *, if_match: Optional[int] = None) -> Job:
        return self._post(job_id, "/complete", {"result": result}, if_match)

    def complete_and_claim(self, job_id: str, result: Any, worker: str, *,
                           types: Optional[Sequence[str]] = None,
                           lease_seconds: Optional[int] = None,
                           if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        """Completes the job and, in the same durable write, claims the next pending one (of
        ``types``): one request per job for a worker. Returns (the completed job, the claimed
        job or None)."""
        body = {"result": result, "next": _wire.claim_body(worker, types, lease_seconds)}
        return self._finish_and_claim(job_id, "/complete", body, if_match)

    def fail(self, job_id: str, error: _wire.ErrorArg, *, retryable: Optional[bool] = None,
             if_match: Optional[int] = None) -> Job:
        """Fails the attempt; ``error`` is a message or ``{"code": ..., "message": ...}``. A job
        with a retry policy and attempts left is scheduled again (status ``scheduled``) unless
        ``retryable`` is False; otherwise it is ``failed``."""
        return self._post(job_id, "/fail", _wire.fail_body(error, retryable), if_match)

    def fail_and_claim(self, job_id: str, error: _wire.ErrorArg, worker: str, *,
                       retryable: Optional[bool] = None,
                       types: Optional[Sequence[str]] = None,
                       lease_seconds: Optional[int] = None,
                       if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        """``fail``, then claim the next pending job in the same write (as complete_and_claim)."""
        body = _wire.fail_body(error, retryable)
        body["next"] = _wire.claim_body(worker, types, lease_seconds)
        return self._finish_and_claim(job_id, "/fail", body, if_match)

    def finish(self, entries: Sequence[Mapping[str, Any]], *, next_worker: Optional[str] = None,
               types: Optional[Sequence[str]] = None, lease_seconds: Optional[int] = None,
               max_jobs: Optional[int] = None, minimal: bool = False) -> Dict[str, Any]:
        """Finishes several jobs in one durable write, each on its own, and with ``next_worker``
        claims up to ``max_jobs`` (1-100) more after them in the same write. ``entries``:
        ``{"job_id", "if_match"?, "complete": {"result": ...}}`` or ``{"job_id", "if_match"?,
        "fail": {"error": ..., "retryable": ...}}``. Returns ``{"results": [...], "next": [jobs]}``:
        a refused entry is a result with its ``status`` and ``error`` (``finish_error`` gives its
        exception), not a raised one; ``minimal`` leaves the finished jobs out of the results."""
        body = _wire.finish_body(entries, next_worker, types, lease_seconds, max_jobs)
        _, answer, _ = self._request("POST", "/jobs/finish", body,
                                  headers={"Prefer": "return=minimal"} if minimal else None)
        return {"results": answer["results"], "next": answer.get("next", [])}

    def retry(self, job_id: str, *, if_match: Optional[int] = None) -> Job:
        """Sends a ``failed`` or ``cancelled`` job back to ``pending`` with a new attempts
        budget (its earlier errors stay in ``errors``)."""
        return self._post(job_id, "/retry", {}, if_match)

    def cancel(self, job_id: str, reason: Optional[str] = None, *,
               if_match: Optional[int] = None) -> Job:
        return self._post(job_id, "/cancel", {"reason": reason} if reason else {}, if_match)

    def events(self, job_id: str) -> List[Event]:
        """The job's history, oldest first."""
        _, body, _ = self._request("GET", _wire.job_path(job_id, "/events"), safe_to_repeat=True)
        return cast(List[Event], body["events"])

    def _post(self, job_id: str, suffix: str, body: Any, if_match: Optional[int]) -> Job:
        _, job, _ = self._request("POST", _wire.job_path(job_id, suffix), body,
                                  headers=_wire.if_match(if_match))
        return cast(Job, job)

    def _finish_and_claim(self, job_id: str, suffix: str, body: Any,
                          if_match: Optional[int]) -> Tuple[Job, Optional[Job]]:
        _, both, _ = self._request("POST", _wire.job_path(job_id, suffix), body,
                                   headers=_wire.if_match(if_match))
        return cast(Job, both["job"]), cast(Optional[Job], both["next"])

    # ---------------------------------------------------------------------- human in the loop

    def request_hitl(self, job_id: str, type: str, prompt: Any,
                     timeout: Optional[int] = None, key: Optional[str] = None) -> Job:
        """Asks a person (running -> pending_hitl). The job's ``hitl.request_id`` names the
        request; ``timeout`` seconds later, unanswered, the job fails with ``hitl_timeout``.
        ``key`` names the question for a re-run of the job (see ``JobContext.ask``)."""
        return self._post(job_id, "/hitl", _wire.hitl_body(type, prompt, timeout, key), None)

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
            wait = _wire.hitl_wait(deadline, time.monotonic())
            if wait is None:
                raise HitlTimeout(f"no answer for job {job_id} within {timeout} s")
            status, body, _ = self._request("GET", _wire.job_path(job_id, "/hitl/response"),
                                            query={"wait": wait}, safe_to_repeat=True, wait=wait)
            if status == 200:
                return body["response"]

    # --------------------------------------------------------------------------------- feed

    def feed(self, after: int = 0, *, limit: int = 100, wait: Optional[float] = None,
             type: Optional[str] = None, job_id: Optional[str] = None) -> FeedPage:
        """One page of the global feed: {"events", "next_after", "head", "first"}."""
        _, page, _ = self._request("GET", "/events",
                                   query=_wire.feed_query(after, limit, wait, type, job_id),
                                   safe_to_repeat=True, wait=wait or 0)
        return cast(FeedPage, page)

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
                raise exc.resuming_after(after) from exc
            for event in page["events"]:
                after = event["seq"]
                yield event
            after = max(after, page["next_after"])

    # --------------------------------------------------------------------------- schedules

    def create_schedule(self, schedule_id: str, cron: str, *, timezone: Optional[str] = None,
                        job: Optional[Mapping[str, Any]] = None,
                        paused: Optional[bool] = None) -> Schedule:
        """Creates a recurring job: at each time ``cron`` (crontab(5), 5 fields) names in
        ``timezone`` (IANA, default UTC), a job is created from ``job`` (a create body) with the
        id ``<schedule_id>:<yyyymmddThhmmZ>``."""
        body = {"schedule_id": schedule_id, **_wire.schedule_body(cron, timezone, job, paused)}
        _, schedule, _ = self._request("POST", "/schedules", body)
        return cast(Schedule, schedule)

    def get_schedule(self, schedule_id: str) -> Schedule:
        _, schedule, _ = self._request("GET", _wire.schedule_path(schedule_id),
                                       safe_to_repeat=True)
        return cast(Schedule, schedule)

    def list_schedules(self) -> List[Schedule]:
        """Every schedule, by id, each with its ``next_run_at``."""
        _, body, _ = self._request("GET", "/schedules", safe_to_repeat=True)
        return cast(List[Schedule], body["schedules"])

    def update_schedule(self, schedule_id: str, *, cron: Optional[str] = None,
                        timezone: Optional[str] = None, job: Optional[Mapping[str, Any]] = None,
                        paused: Optional[bool] = None,
                        if_match: Optional[int] = None) -> Schedule:
        """Pauses or resumes (``paused=``), or changes the cron, time zone or template."""
        _, schedule, _ = self._request("PATCH", _wire.schedule_path(schedule_id),
                                       _wire.schedule_body(cron, timezone, job, paused),
                                       headers=_wire.if_match(if_match))
        return cast(Schedule, schedule)

    def delete_schedule(self, schedule_id: str, *, if_match: Optional[int] = None) -> None:
        """Deletes the schedule; the jobs it created stay."""
        self._request("DELETE", _wire.schedule_path(schedule_id), headers=_wire.if_match(if_match))

    # -------------------------------------------------------------------------------- ops

    def stats(self) -> Dict[str, Any]:
        _, body, _ = self._request("GET", "/stats", safe_to_repeat=True)
        return cast(Dict[str, Any], body)

    def healthy(self) -> bool:
        try:
            status, _, _ = self._request("GET", "/healthz", safe_to_repeat=True)
            return status == 200
        except JobstoreError:
            return False
