"""The asyncio client: the same methods as :class:`JobstoreClient`, as coroutines, on its own
HTTP/1.1 connections over asyncio streams (no thread per call; the standard library only).

* Every call has a connection of its own while it runs (a pool keeps idle ones for reuse), so a
  create never queues behind long-polls in flight.
* Cancelling a call (``asyncio.wait_for``, ``task.cancel()``) closes its connection at once: the
  server sees the request end, and nothing keeps polling behind your back.
* ``aclose()`` (or leaving ``async with``) closes every connection, idle or in flight.
* The retry rules are those of the blocking client (``client.py``), deadline and all.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union, cast

from . import _wire
from .errors import ConnectionFailed, HitlTimeout, JobstoreError, Truncated, Unavailable, error_from_response
from .models import Event, FeedPage, Job, Schedule

_MAX_IDLE = 32  # idle connections kept for reuse; more are closed when their call ends


class _ClosedBeforeAnswer(ConnectionError):
    """The peer closed the connection before the first byte of the answer."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()
        self.requests = 0

    def abort(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


async def _read_body(reader: asyncio.StreamReader, method: str, status: int,
                     headers: Mapping[str, str]) -> Tuple[bytes, bool]:
    """The body, and whether the connection may carry another request."""
    keep = headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: List[bytes] = []
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks), keep
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length)), keep
    return await reader.read(), False  # delimited by the close


async def _exchange(conn: _Connection, host: str,
                    req: _wire.Request) -> Tuple[int, Dict[str, str], bytes, bool]:
    """Sends `req` on `conn` and reads the whole answer: (status, headers, body, keep-alive)."""
    lines = [f"{req.method} {req.target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    lines.append(f"Content-Length: {len(req.payload) if req.payload is not None else 0}")
    try:
        conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (req.payload or b""))
        await conn.writer.drain()
        status_line = await conn.reader.readline()
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        raise _ClosedBeforeAnswer(f"the connection closed before the answer: {exc!r}") from exc
    if not status_line:
        raise _ClosedBeforeAnswer("the connection closed before the answer")
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ConnectionError(f"not an HTTP answer: {status_line[:80]!r}")
    status = int(parts[1])
    headers: Dict[str, str] = {}
    while True:
        line = await conn.reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ConnectionError("the connection closed inside the answer's headers")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body, keep = await _read_body(conn.reader, req.method, status, headers)
    return status, headers, body, keep


class AsyncJobstoreClient(_wire.ClientOptions):
    """The asyncio twin of :class:`JobstoreClient`: same constructor, same methods (each a
    coroutine; ``list`` and ``follow`` are async iterators), same errors and retry rules."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: Optional[str] = None,
                 user_id: Optional[str] = None, timeout: float = 30.0,
                 retries: Optional[int] = None, backoff: float = 0.1, retry_for: float = 30.0,
                 idle_timeout: float = 4.0):
        super().__init__(base_url, token, user_id, timeout, retries, backoff, retry_for,
                         idle_timeout)
        self._ssl = ssl.create_default_context() if self._scheme == "https" else None
        self._idle: List[_Connection] = []
        self._open: Set[_Connection] = set()

    # ----------------------------------------------------------------------------- transport

    @property
    def open_connections(self) -> int:
        """Connections open now, idle or carrying a call."""
        return len(self._open)

    async def aclose(self) -> None:
        """Closes every connection, idle or in flight (calls in flight fail or retry)."""
        conns = list(self._open)
        self._idle.clear()
        self._open.clear()
        for conn in conns:
            conn.abort()
        await asyncio.gather(*(c.writer.wait_closed() for c in conns), return_exceptions=True)

    async def __aenter__(self) -> "AsyncJobstoreClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _connection(self, timeout: float) -> _Connection:
        """An idle connection (not one idle past ``idle_timeout``, which the server may close at
        any moment), or a new one."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.last_used <= self.idle_timeout and not conn.reader.at_eof():
                return conn
            self._discard(conn)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port, ssl=self._ssl), timeout)
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        conn.abort()
        self._open.discard(conn)

    def _release(self, conn: _Connection, keep: bool) -> None:
        conn.last_used = time.monotonic()
        conn.requests += 1
        if keep and conn in self._open and len(self._idle) < _MAX_IDLE:
            self._idle.append(conn)
        else:
            self._discard(conn)

    async def _request(self, method: str, path: str, body: Any = None,
                       query: Optional[Mapping[str, Any]] = None,
                       headers: Optional[Mapping[str, Optional[str]]] = None,
                       safe_to_repeat: bool = False,
                       wait: float = 0.0) -> Tuple[int, Any, Dict[str, str]]:
        """As ``JobstoreClient._request``; a cancelled call closes its connection."""
        req = self._prepare(method, path, body, query, headers, wait, safe_to_repeat)
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            conn: Optional[_Connection] = None
            reused = False
            try:
                conn = await self._connection(self.timeout)
                reused = conn.requests > 0
                status, response_headers, raw, keep = await asyncio.wait_for(
                    _exchange(conn, self._netloc, req), req.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                sent = conn is not None
                if conn is not None:
                    self._discard(conn)
                # No byte of the answer came back on a pooled connection: the server closed it
                # while idle and never read the request.
                stale = isinstance(exc, _ClosedBeforeAnswer)
                if reused and stale and self._may_retry(deadline, attempt):
                    attempt += 1  # closed while pooled: the request was not read; go again now
                    continue
                repeatable = not sent or isinstance(exc, ConnectionRefusedError) or req.safe_to_repeat
                if repeatable and self._may_retry(deadline, attempt):
                    attempt += 1
                    await asyncio.sleep(_wire.backoff_delay(self.backoff, attempt))
                    continue
                raise ConnectionFailed(f"{method} {path}: {exc!r}") from exc
            except BaseException:  # cancelled: the request ends with its connection
                if conn is not None:
                    self._discard(conn)
                raise
            self._release(conn, keep)
            decoded = _wire.json_or_none(raw, response_headers)
            if _wire.retry_status(status, req.safe_to_repeat) and self._may_retry(deadline, attempt):
                attempt += 1
                await asyncio.sleep(_wire.backoff_delay(self.backoff, attempt))
                continue
            if status >= 400:
                raise error_from_response(status, decoded, raw)
            return status, decoded, response_headers

    # ---------------------------------------------------------------------------------- jobs
    # Each method is its JobstoreClient namesake (see there for the docs), as a coroutine.

    async def create(self, type: str = "default", *, description: Optional[str] = None,
                     input: Any = None, labels: Optional[Mapping[str, str]] = None,
                     user_id: Optional[str] = None, ttl_seconds: Optional[int] = None,
                     max_attempts: Optional[int] = None, job_id: Optional[str] = None,
                     idempotency_key: Optional[str] = None, priority: Optional[int] = None,
                     run_at: Optional[str] = None, delay_seconds: Optional[float] = None,
                     retry: Optional[Mapping[str, Any]] = None) -> Job:
        body = _wire.create_body(type, description, input, labels, user_id or self.user_id,
                                 ttl_seconds, max_attempts, job_id, priority, run_at,
                                 delay_seconds, retry)
        _, job, _ = await self._request("POST", "/jobs", body,
                                        headers=_wire.idempotency_key(idempotency_key),
                                        safe_to_repeat=True)
        return cast(Job, job)

    async def create_batch(self, jobs: Sequence[Mapping[str, Any]]) -> List[Job]:
        _, body, _ = await self._request("POST", "/jobs/batch", {"jobs": list(jobs)})
        return cast(List[Job], body["jobs"])

    async def get(self, job_id: str, *, wait: Optional[float] = None,
                  after_version: Optional[int] = None) -> Job:
        wait = _wire.clamp_wait(wait)
        _, job, _ = await self._request("GET", _wire.job_path(job_id),
                                        query={"wait": wait, "after_version": after_version},
                                        safe_to_repeat=True, wait=wait or 0)
        return cast(Job, job)

    async def list(self, *, status: Union[str, Sequence[str], None] = None,
                   type: Optional[str] = None, user_id: Optional[str] = None,
                   labels: Optional[Mapping[str, str]] = None,
                   page_size: int = 100) -> AsyncIterator[Job]:
        cursor = None
        while True:
            query = _wire.list_query(status, type, user_id, labels, page_size, cursor)
            _, page, _ = await self._request("GET", "/jobs", query=query, safe_to_repeat=True)
            for job in cast(List[Job], page["jobs"]):
                yield job
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def update(self, job_id: str, *, progress: Optional[Mapping[str, Any]] = None,
                     data: Optional[Mapping[str, Any]] = None,
                     labels: Optional[Mapping[str, Optional[str]]] = None,
                     priority: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        _, job, _ = await self._request("PATCH", _wire.job_path(job_id),
                                        _wire.update_body(progress, data, labels, priority),
                                        headers=_wire.if_match(if_match))
        return cast(Job, job)

    async def start(self, job_id: str, *, worker: Optional[str] = None,
                    lease_seconds: Optional[int] = None, if_match: Optional[int] = None) -> Job:
        body = _wire.present({"worker": worker, "lease_seconds": lease_seconds})
        return await self._post(job_id, "/start", body, if_match)

    async def heartbeat(self, job_id: str, *, lease_seconds: Optional[int] = None,
                        progress: Optional[Mapping[str, Any]] = None,
                        if_match: Optional[int] = None) -> Job:
        body = _wire.present({"lease_seconds": lease_seconds, "progress": progress})
        return await self._post(job_id, "/heartbeat", body, if_match)

    async def claim(self, worker: str, *, types: Optional[Sequence[str]] = None,
                    lease_seconds: Optional[int] = None,
                    wait: Optional[float] = None) -> Optional[Job]:
        wait = _wire.clamp_wait(wait)
        status, job, _ = await self._request("POST", "/jobs/claim",
                                             _wire.claim_body(worker, types, lease_seconds),
                                             query={"wait": wait}, wait=wait or 0)
        return cast(Job, job) if status == 200 else None

    async def claim_many(self, worker: str, *, max_jobs: int = 1,
                   types: Optional[Sequence[str]] = None, lease_seconds: Optional[int] = None,
                   wait: Optional[float] = None) -> List[Job]:
        """Leases up to ``max_jobs`` (1-100) pending jobs in claim order, in one write; an empty
        list when there is none (after long-polling up to ``wait`` seconds)."""
        wait = _wire.clamp_wait(wait)
        body = {**_wire.claim_body(worker, types, lease_seconds), "max_jobs": max_jobs}
        status, answer, _ = await self._request("POST", "/jobs/claim", body, query={"wait": wait},
                                          wait=wait or 0)
        return cast(List[Job], answer["jobs"]) if status == 200 else []

    async def complete(self, job_id: str, result: Any = None, *,
                       if_match: Optional[int] = None) -> Job:
        return await self._post(job_id, "/complete", {"result": result}, if_match)

    async def complete_and_claim(self, job_id: str, result: Any, worker: str, *,
                                 types: Optional[Sequence[str]] = None,
                                 lease_seconds: Optional[int] = None,
                                 if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        body = {"result": result, "next": _wire.claim_body(worker, types, lease_seconds)}
        return await self._finish_and_claim(job_id, "/complete", body, if_match)

    async def fail(self, job_id: str, error: _wire.ErrorArg, *, retryable: Optional[bool] = None,
                   if_match: Optional[int] = None) -> Job:
        return await self._post(job_id, "/fail", _wire.fail_body(error, retryable), if_match)

    async def fail_and_claim(self, job_id: str, error: _wire.ErrorArg, worker: str, *,
                             retryable: Optional[bool] = None,
                             types: Optional[Sequence[str]] = None,
                             lease_seconds: Optional[int] = None,
                             if_match: Optional[int] = None) -> Tuple[Job, Optional[Job]]:
        body = _wire.fail_body(error, retryable)
        body["next"] = _wire.claim_body(worker, types, lease_seconds)
        return await self._finish_and_claim(job_id, "/fail", body, if_match)

    async def finish(self, entries: Sequence[Mapping[str, Any]], *,
                     next_worker: Optional[str] = None, types: Optional[Sequence[str]] = None,
                     lease_seconds: Optional[int] = None, max_jobs: Optional[int] = None,
                     minimal: bool = False) -> Dict[str, Any]:
        """As ``JobstoreClient.finish``: several finishes and the next claim in one write."""
        body = _wire.finish_body(entries, next_worker, types, lease_seconds, max_jobs)
        _, answer, _ = await self._request("POST", "/jobs/finish", body,
                                           headers={"Prefer": "return=minimal"} if minimal else None)
        return {"results": answer["results"], "next": answer.get("next", [])}

    async def retry(self, job_id: str, *, if_match: Optional[int] = None) -> Job:
        return await self._post(job_id, "/retry", {}, if_match)

    async def cancel(self, job_id: str, reason: Optional[str] = None, *,
                     if_match: Optional[int] = None) -> Job:
        return await self._post(job_id, "/cancel", {"reason": reason} if reason else {}, if_match)

    async def events(self, job_id: str) -> List[Event]:
        _, body, _ = await self._request("GET", _wire.job_path(job_id, "/events"),
                                         safe_to_repeat=True)
        return cast(List[Event], body["events"])

    async def _post(self, job_id: str, suffix: str, body: Any, if_match: Optional[int]) -> Job:
        _, job, _ = await self._request("POST", _wire.job_path(job_id, suffix), body,
                                        headers=_wire.if_match(if_match))
        return cast(Job, job)

    async def _finish_and_claim(self, job_id: str, suffix: str, body: Any,
                                if_match: Optional[int]) -> Tuple[Job, Optional[Job]]:
        _, both, _ = await self._request("POST", _wire.job_path(job_id, suffix), body,
                                         headers=_wire.if_match(if_match))
        return cast(Job, both["job"]), cast(Optional[Job], both["next"])

    # ---------------------------------------------------------------------- human in the loop

    async def request_hitl(self, job_id: str, type: str, prompt: Any,
                           timeout: Optional[int] = None, key: Optional[str] = None) -> Job:
        return await self._post(job_id, "/hitl", _wire.hitl_body(type, prompt, timeout, key), None)

    async def respond_hitl(self, job_id: str, request_id: str, response: Any) -> Job:
        return await self._post(job_id, "/hitl/response",
                                {"request_id": request_id, "response": response}, None)

    async def wait_for_hitl_response(self, job_id: str, timeout: Optional[float] = None) -> Any:
        """As the blocking one; cancelling it closes the long-poll in flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _wire.hitl_wait(deadline, time.monotonic())
            if wait is None:
                raise HitlTimeout(f"no answer for job {job_id} within {timeout} s")
            status, body, _ = await self._request(
                "GET", _wire.job_path(job_id, "/hitl/response"), query={"wait": wait},
                safe_to_repeat=True, wait=wait)
            if status == 200:
                return body["response"]

    # --------------------------------------------------------------------------------- feed

    async def feed(self, after: int = 0, *, limit: int = 100, wait: Optional[float] = None,
                   type: Optional[str] = None, job_id: Optional[str] = None) -> FeedPage:
        _, page, _ = await self._request("GET", "/events",
                                         query=_wire.feed_query(after, limit, wait, type, job_id),
                                         safe_to_repeat=True, wait=wait or 0)
        return cast(FeedPage, page)

    async def follow(self, after: int = 0, *, type: Optional[str] = None,
                     job_id: Optional[str] = None, wait: float = 30.0) -> AsyncIterator[Event]:
        while True:
            try:
                page = await self.feed(after, limit=1000, wait=wait, type=type, job_id=job_id)
            except (ConnectionFailed, Unavailable):
                await asyncio.sleep(self.backoff)
                continue
            except Truncated as exc:
                raise exc.resuming_after(after) from exc
            for event in page["events"]:
                after = event["seq"]
                yield event
            after = max(after, page["next_after"])

    # --------------------------------------------------------------------------- schedules

    async def create_schedule(self, schedule_id: str, cron: str, *,
                              timezone: Optional[str] = None,
                              job: Optional[Mapping[str, Any]] = None,
                              paused: Optional[bool] = None) -> Schedule:
        body = {"schedule_id": schedule_id, **_wire.schedule_body(cron, timezone, job, paused)}
        _, schedule, _ = await self._request("POST", "/schedules", body)
        return cast(Schedule, schedule)

    async def get_schedule(self, schedule_id: str) -> Schedule:
        _, schedule, _ = await self._request("GET", _wire.schedule_path(schedule_id),
                                             safe_to_repeat=True)
        return cast(Schedule, schedule)

    async def list_schedules(self) -> List[Schedule]:
        _, body, _ = await self._request("GET", "/schedules", safe_to_repeat=True)
        return cast(List[Schedule], body["schedules"])

    async def update_schedule(self, schedule_id: str, *, cron: Optional[str] = None,
                              timezone: Optional[str] = None,
                              job: Optional[Mapping[str, Any]] = None,
                              paused: Optional[bool] = None,
                              if_match: Optional[int] = None) -> Schedule:
        _, schedule, _ = await self._request("PATCH", _wire.schedule_path(schedule_id),
                                             _wire.schedule_body(cron, timezone, job, paused),
                                             headers=_wire.if_match(if_match))
        return cast(Schedule, schedule)

    async def delete_schedule(self, schedule_id: str, *, if_match: Optional[int] = None) -> None:
        await self._request("DELETE", _wire.schedule_path(schedule_id),
                            headers=_wire.if_match(if_match))

    # -------------------------------------------------------------------------------- ops

    async def stats(self) -> Dict[str, Any]:
        _, body, _ = await self._request("GET", "/stats", safe_to_repeat=True)
        return cast(Dict[str, Any], body)

    async def healthy(self) -> bool:
        try:
            status, _, _ = await self._request("GET", "/healthz", safe_to_repeat=True)
            return status == 200
        except JobstoreError:
            return False
