"""JobstoreClient against the real server: every method, the errors, the retry rules, the feed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from jobstore_client import (AlreadyExists, AsyncJobstoreClient, ConnectionFailed, Forbidden,
                             HitlTimeout, IdempotencyKeyReused, InvalidArgument,
                             InvalidTransition, JobstoreClient,
                             NotFound, StaleRequest, Truncated, Unauthenticated, VersionMismatch,
                             finish_error)


def test_create_get_list_update_and_the_whole_lifecycle(server):
    c = JobstoreClient(server.url)
    job = c.create("skill_creation", description="parse invoices", input={"q": 1},
                   labels={"team": "ml"})
    assert job["status"] == "pending" and job["version"] == 1
    assert c.get(job["job_id"])["description"] == "parse invoices"
    started = c.start(job["job_id"], worker="w1", lease_seconds=60)
    assert started["status"] == "running" and started["worker"] == "w1"
    beat = c.heartbeat(job["job_id"], progress={"percent": 20})
    assert beat["progress"]["percent"] == 20
    updated = c.update(job["job_id"], data={"a": {"b": 1}}, labels={"env": "prod"})
    assert updated["data"] == {"a": {"b": 1}} and updated["labels"] == {"team": "ml", "env": "prod"}
    updated = c.update(job["job_id"], data={"a": {"b": None, "c": 2}}, labels={"env": None})
    assert updated["data"] == {"a": {"c": 2}} and updated["labels"] == {"team": "ml"}
    done = c.complete(job["job_id"], {"skill": "invoices"})
    assert done["status"] == "completed" and done["result"] == {"skill": "invoices"}
    assert [e["type"] for e in c.events(job["job_id"])] == [
        "job.created", "job.started", "job.heartbeat", "job.updated", "job.updated", "job.completed"]
    failed = c.create()
    c.start(failed["job_id"])
    assert c.fail(failed["job_id"], "boom")["error"]["message"] == "boom"
    cancelled = c.cancel(c.create()["job_id"], "not needed")
    assert cancelled["status"] == "cancelled"


def test_list_follows_the_cursor_and_filters(server):
    c = JobstoreClient(server.url)
    c.create_batch([{"type": "a", "labels": {"n": str(i % 2)}} for i in range(25)])
    c.create("b")
    assert len(list(c.list(page_size=10))) == 26
    assert len(list(c.list(type="a", labels={"n": "1"}, page_size=5))) == 12
    assert len(list(c.list(status=["pending", "running"]))) == 26
    assert list(c.list(status="completed")) == []


def test_errors_are_exceptions_named_after_the_contract(server):
    c = JobstoreClient(server.url)
    with pytest.raises(NotFound):
        c.get("missing")
    with pytest.raises(InvalidArgument) as bad:
        c.create(ttl_seconds=-1)
    assert "ttl_seconds" in bad.value.message and bad.value.status == 400
    job = c.create(job_id="mine")
    with pytest.raises(AlreadyExists):
        c.create(job_id="mine")
    with pytest.raises(InvalidTransition):
        c.complete(job["job_id"])
    with pytest.raises(VersionMismatch):
        c.start(job["job_id"], if_match=9)
    assert c.start(job["job_id"], if_match=1)["version"] == 2
    owned = c.create(user_id="alice")
    c.start(owned["job_id"])
    c.request_hitl(owned["job_id"], "approve", {"q": "ok?"})
    with pytest.raises(Forbidden):
        JobstoreClient(server.url, user_id="bob").respond_hitl(owned["job_id"], "h-1", True)
    with pytest.raises(StaleRequest):
        c.respond_hitl(owned["job_id"], "h-7", True)


def test_an_idempotency_key_reused_with_another_body_is_refused(server):
    c = JobstoreClient(server.url)
    first = c.create("a", idempotency_key="py-k1")
    assert c.create("a", idempotency_key="py-k1")["job_id"] == first["job_id"]
    with pytest.raises(IdempotencyKeyReused) as e:
        c.create("b", idempotency_key="py-k1")
    assert e.value.status == 422


def test_create_retries_never_duplicate(server):
    c = JobstoreClient(server.url)
    first = c.create("x", idempotency_key="order-1")
    again = c.create("x", idempotency_key="order-1")
    assert again["job_id"] == first["job_id"]
    assert len(list(c.list())) == 1


def test_hitl_round_trip_from_another_process_style_client(server):
    worker = JobstoreClient(server.url)
    person = JobstoreClient(server.url, user_id="alice")
    job = worker.create("skill_creation")
    worker.start(job["job_id"])
    asked = worker.request_hitl(job["job_id"], "clarify", {"questions": [{"text": "Which?"}]},
                                timeout=600)
    assert asked["status"] == "pending_hitl"
    answers = []
    t = threading.Thread(target=lambda: answers.append(worker.wait_for_hitl_response(job["job_id"])),
                         daemon=True)
    t.start()
    server.wait_for_waiters(1)
    person.respond_hitl(job["job_id"], asked["hitl"]["request_id"], {"formats": ["pdf"]})
    t.join(timeout=10)
    assert answers == [{"formats": ["pdf"]}]
    with pytest.raises(HitlTimeout):
        worker.request_hitl(job["job_id"], "clarify", {"q": "again?"})
        worker.wait_for_hitl_response(job["job_id"], timeout=0.3)


def test_claim_long_polls_and_is_exclusive(server):
    c = JobstoreClient(server.url)
    assert c.claim("w", wait=0.2) is None
    got = []
    t = threading.Thread(target=lambda: got.append(c.claim("w1", types=["mail"], wait=20)),
                         daemon=True)
    t.start()
    server.wait_for_waiters(1)
    job = c.create("mail")
    t.join(timeout=10)
    assert got[0]["job_id"] == job["job_id"] and got[0]["status"] == "running"
    assert c.claim("w2", types=["mail"]) is None


def test_follow_yields_everything_and_resumes_after_a_restart(start_server):
    server = start_server()
    c = JobstoreClient(server.url, retries=50, backoff=0.1)
    for _ in range(3):
        c.create()
    seen = []
    stream = c.follow(0, wait=1)

    def read():
        for event in stream:
            seen.append(event["seq"])
            if len(seen) == 5:
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    deadline = time.time() + 10
    while len(seen) < 3 and time.time() < deadline:
        time.sleep(0.01)
    assert seen == [1, 2, 3]
    server.stop()  # the connection drops; follow keeps retrying the same address
    restarted = start_server(data_dir=server.data_dir, port=server.port)
    c2 = JobstoreClient(restarted.url)
    c2.create()
    c2.create()
    t.join(timeout=10)
    assert not t.is_alive(), "follow did not resume after the restart"
    assert seen == [1, 2, 3, 4, 5]


def test_truncated_history_names_the_first_retained_seq(start_server):
    server = start_server("--compaction-interval", "1s", "--history-retention", "0s")
    c = JobstoreClient(server.url)
    job = c.create(ttl_seconds=0)
    c.cancel(job["job_id"])
    deadline = time.time() + 15
    while c.stats()["log"]["first_seq"] == 1 and time.time() < deadline:
        time.sleep(0.1)
    with pytest.raises(Truncated) as gone:
        next(c.follow(0))
    assert gone.value.first == c.stats()["log"]["first_seq"] > 1
    assert "first retained seq" in str(gone.value)


def test_token_and_connection_errors(start_server, tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    server = start_server("--token-file", str(token))
    with pytest.raises(Unauthenticated):
        JobstoreClient(server.url).create()
    assert JobstoreClient(server.url, token="t0ken").create()["version"] == 1
    dead = JobstoreClient("http://127.0.0.1:1", retries=2, backoff=0.01)
    started = time.time()
    with pytest.raises(ConnectionFailed):
        dead.get("x")
    assert time.time() - started < 5


class FakeServer:
    """A loopback HTTP server that answers from a script, to pin down the retry rules."""

    def __init__(self, script):
        import http.server

        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append((self.command, self.path))
                action = script[min(len(outer.requests), len(script)) - 1]
                if action == "drop":  # the request arrived; the connection dies unanswered
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, body = action
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


UNAVAILABLE = (503, '{"error": {"code": "unavailable", "message": "disk full"}}')
JOB = (200, '{"job_id": "j", "version": 2, "status": "running"}')


def test_503_is_retried_for_every_call_because_nothing_was_written():
    fake = FakeServer([UNAVAILABLE, UNAVAILABLE, JOB])
    try:
        c = JobstoreClient(fake.url, retries=4, backoff=0.01)
        assert c.start("j")["status"] == "running"
        assert len(fake.requests) == 3
    finally:
        fake.close()


def test_a_lost_answer_is_retried_only_where_repeating_is_safe():
    fake = FakeServer(["drop", "drop", JOB])
    try:
        c = JobstoreClient(fake.url, retries=4, backoff=0.01)
        with pytest.raises(ConnectionFailed):
            c.start("j")  # it may have happened: never sent twice
        assert len(fake.requests) == 1
        assert c.get("j")["status"] == "running"  # a read is repeated
        assert len(fake.requests) == 3
    finally:
        fake.close()


def test_async_client_has_the_same_methods(server):
    async def main():
        async with AsyncJobstoreClient(server.url) as c:
            job = await c.create("async")
            await c.start(job["job_id"])
            done = await c.complete(job["job_id"], 42)
            listed = [j async for j in c.list()]
            events = []
            async for e in c.follow(0, wait=1):
                events.append(e)
                if len(events) == 3:
                    break
            return done, listed, events

    done, listed, events = asyncio.run(main())
    assert done["result"] == 42
    assert len(listed) == 1
    assert [e["type"] for e in events] == ["job.created", "job.started", "job.completed"]


def test_schedules_are_created_listed_paused_and_deleted(server):
    from jobstore_client import AlreadyExists, InvalidArgument, NotFound
    c = JobstoreClient(server.url)
    s = c.create_schedule("nightly", "0 2 * * *", timezone="Europe/Berlin",
                          job={"type": "report", "priority": 2})
    assert s["next_run_at"] and s["version"] == 1 and s["job"]["type"] == "report"
    with pytest.raises(AlreadyExists):
        c.create_schedule("nightly", "0 2 * * *")
    with pytest.raises(InvalidArgument) as bad:
        c.create_schedule("broken", "0 25 * * *")
    assert "hour" in str(bad.value)
    assert [x["schedule_id"] for x in c.list_schedules()] == ["nightly"]
    paused = c.update_schedule("nightly", paused=True, if_match=1)
    assert paused["paused"] and paused["next_run_at"] is None
    assert c.get_schedule("nightly")["version"] == 2
    c.delete_schedule("nightly")
    with pytest.raises(NotFound):
        c.get_schedule("nightly")
    assert c.list_schedules() == []


def test_finish_takes_each_job_on_its_own_and_claims_the_next_ones(server):
    c = JobstoreClient(server.url)
    ids = [c.create("fin")["job_id"] for _ in range(4)]
    first, second = c.claim("w", types=["fin"]), c.claim("w", types=["fin"])
    answer = c.finish([{"job_id": first["job_id"], "if_match": first["version"], "complete": {"result": 1}},
                       {"job_id": second["job_id"], "if_match": 1, "fail": {"error": "x"}}],
                      next_worker="w2", types=["fin"], max_jobs=5, minimal=True)
    done, stale = answer["results"]
    assert done == {"job_id": first["job_id"], "status": 200, "version": first["version"] + 1}
    assert stale["status"] == 412 and isinstance(finish_error(stale), VersionMismatch)
    assert [j["job_id"] for j in answer["next"]] == ids[2:]
    assert {j["worker"] for j in answer["next"]} == {"w2"}
    assert c.get(second["job_id"])["status"] == "running"  # its refused entry changed nothing
    with pytest.raises(InvalidArgument):
        c.finish([])

    async def main() -> dict:
        async with AsyncJobstoreClient(server.url) as a:
            return await a.finish([{"job_id": second["job_id"], "complete": {"result": 2}}])

    full = asyncio.run(main())
    assert full["next"] == [] and full["results"][0]["job"]["status"] == "completed"
