"""The worker kit against the real server: completion, failure, asking a person, lease renewal,
graceful stop, and a worker killed mid-job whose job another worker re-claims."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from jobstore_client import JobstoreClient, Worker


def run_until(worker: Worker, condition, timeout=30.0):
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    worker.stop()
    t.join(timeout=10)
    assert not t.is_alive(), "the worker did not stop"


def test_handler_result_completes_and_exception_fails(server):
    c = JobstoreClient(server.url)
    ok = c.create("calc", input={"x": 20})
    bad = c.create("calc", input={"x": -1})

    def handle(ctx):
        if ctx.input["x"] < 0:
            raise ValueError("x must be positive")
        ctx.progress(percent=50, phase="adding")
        return ctx.input["x"] + 22

    w = Worker(c, ["calc"], handle, lease_seconds=10, concurrency=2, poll_seconds=1)
    run_until(w, lambda: w.completed + w.failed == 2)
    assert c.get(ok["job_id"])["result"] == 42
    failed = c.get(bad["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "ValueError", "message": "x must be positive"}


def test_handler_slower_than_its_lease_still_finishes(server):
    c = JobstoreClient(server.url)
    job = c.create("slow")

    def handle(ctx):
        time.sleep(5)  # the lease is 3 s: only the heartbeats keep the job
        return "done"

    w = Worker(c, ["slow"], handle, lease_seconds=3, poll_seconds=1)
    run_until(w, lambda: w.completed == 1, timeout=20)
    final = c.get(job["job_id"])
    assert final["status"] == "completed" and final["attempt"] == 1
    assert "job.lease_expired" not in [e["type"] for e in c.events(job["job_id"])]


def test_ctx_ask_returns_the_persons_answer(server):
    c = JobstoreClient(server.url)
    job = c.create("skill_creation")

    def handle(ctx):
        answer = ctx.ask("clarify", {"questions": [{"text": "Which formats?",
                                                    "question_type": "multi"}]}, timeout=600)
        return {"formats": answer}

    def person():
        while True:
            j = c.get(job["job_id"], wait=5, after_version=2)
            if j["status"] == "pending_hitl":
                c.respond_hitl(job["job_id"], j["hitl"]["request_id"], ["pdf", "png"])
                return

    threading.Thread(target=person, daemon=True).start()
    w = Worker(c, ["skill_creation"], handle, lease_seconds=5, poll_seconds=1)
    run_until(w, lambda: w.completed == 1)
    assert c.get(job["job_id"])["result"] == {"formats": ["pdf", "png"]}


def test_a_killed_worker_s_job_is_reclaimed_after_its_lease(server):
    c = JobstoreClient(server.url)
    job = c.create("fragile")
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
        from jobstore_client import JobstoreClient, Worker
        def handle(ctx):
            print("claimed", flush=True)
            time.sleep(60)
        Worker(JobstoreClient({server.url!r}), ["fragile"], handle, lease_seconds=3,
               poll_seconds=1).run()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "claimed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen = []
    w = Worker(c, ["fragile"], lambda ctx: seen.append(ctx.job["attempt"]) or "second try",
               lease_seconds=5, poll_seconds=1)
    run_until(w, lambda: w.completed == 1, timeout=30)
    final = c.get(job["job_id"])
    assert final["status"] == "completed" and final["result"] == "second try"
    assert seen == [2]
    types = [e["type"] for e in c.events(job["job_id"])]
    assert types.count("job.lease_expired") == 1


def test_stop_finishes_the_job_in_hand(server):
    c = JobstoreClient(server.url)
    job = c.create("long")
    started = threading.Event()
    w = None

    def handle(ctx):
        started.set()
        time.sleep(1)
        return "finished"

    w = Worker(c, ["long"], handle, lease_seconds=10, poll_seconds=1)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    assert started.wait(10)
    w.stop()
    t.join(timeout=10)
    assert c.get(job["job_id"])["status"] == "completed"


def test_retryable_failure_is_tried_again_and_a_permanent_one_is_not(server):
    from jobstore_client import PermanentFailure
    c = JobstoreClient(server.url)
    policy = {"max_attempts": 3, "backoff": "fixed", "initial_seconds": 0.2, "jitter": 0}
    flaky = c.create("flaky", input={"fail_times": 2}, retry=policy)
    broken = c.create("flaky", input={"permanent": True}, retry=policy)
    calls = {}

    def handle(ctx):
        n = calls[ctx.job_id] = calls.get(ctx.job_id, 0) + 1
        if ctx.input.get("permanent"):
            raise PermanentFailure("the input can never work")
        if n <= ctx.input["fail_times"]:
            raise ConnectionError(f"upstream down ({n})")
        return {"ok": n}

    w = Worker(c, ["flaky"], handle, lease_seconds=10, concurrency=2, poll_seconds=1)
    run_until(w, lambda: c.get(flaky["job_id"])["status"] == "completed"
              and c.get(broken["job_id"])["status"] == "failed")
    done = c.get(flaky["job_id"])
    assert done["result"] == {"ok": 3} and done["attempt"] == 3
    assert [e["code"] for e in done["errors"]] == ["ConnectionError", "ConnectionError"]
    assert [e["type"] for e in c.events(flaky["job_id"])].count("job.retry_scheduled") == 2
    failed = c.get(broken["job_id"])
    assert failed["attempt"] == 1 and failed["error"]["code"] == "PermanentFailure"


def test_client_schedules_prioritises_and_retries_by_hand(server):
    c = JobstoreClient(server.url)
    later = c.create("queue", delay_seconds=3600)
    assert later["status"] == "scheduled" and later["run_at"]
    low = c.create("queue", priority=-1)
    high = c.create("queue", priority=5)
    assert c.claim("w", types=["queue"])["job_id"] == high["job_id"]
    assert c.update(later["job_id"], priority=9)["priority"] == 9
    job = c.claim("w", types=["queue"])
    assert job["job_id"] == low["job_id"]
    assert c.fail(job["job_id"], "boom", retryable=False)["status"] == "failed"
    again = c.retry(job["job_id"])
    assert again["status"] == "pending" and again["attempt"] == 0 and len(again["errors"]) == 1
    assert [j["job_id"] for j in c.list(status="scheduled")] == [later["job_id"]]


def test_the_worker_claims_its_next_job_with_the_finish_one_request_per_job(server):
    import re
    import urllib.request
    c = JobstoreClient(server.url)
    c.create_batch([{"type": "quick"} for _ in range(20)])
    w = Worker(c, ["quick"], lambda ctx: "done", lease_seconds=10)
    run_until(w, lambda: w.completed == 20, timeout=20)
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    claimed = re.search(r'jobstore_http_requests_total\{route="/api/v1/jobs/claim",method="POST",'
                        r'status="200"\} (\d+)', metrics)
    assert claimed and int(claimed.group(1)) == 1  # the other 19 came with a complete
    first = c.create("pair")
    second = c.create("pair")
    assert c.claim("w", types=["pair"])["job_id"] == first["job_id"]
    done, following = c.complete_and_claim(first["job_id"], {"ok": 1}, "w", types=["pair"])
    assert done["status"] == "completed" and following["job_id"] == second["job_id"]
    failed, none = c.fail_and_claim(second["job_id"], "boom", "w", types=["pair"])
    assert failed["status"] == "failed" and none is None


def route_requests(server, route: str) -> int:
    """Requests the server counted for `route` (every status)."""
    import re
    import urllib.request
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    pattern = r'jobstore_http_requests_total\{route="' + re.escape(route) + r'",method="POST",status="\d+"\} (\d+)'
    return sum(int(n) for n in re.findall(pattern, metrics))


def finish_requests(server) -> int:
    return route_requests(server, "/api/v1/jobs/finish")


def claim_requests(server) -> int:
    return route_requests(server, "/api/v1/jobs/claim")


def test_busy_slots_finish_together_and_a_refused_finish_costs_nobody(server, proxy):
    proxy.delay = 0.02  # 20 ms each way: both finish requests are on their way most of the time
    c = JobstoreClient(proxy.url)
    jobs = c.create_batch([{"type": "crowd", "input": {"i": i}} for i in range(240)])
    spoiled = jobs[5]["job_id"]
    runs: dict = {}
    lock = threading.Lock()

    def handle(ctx):
        with lock:
            runs[ctx.job_id] = runs.get(ctx.job_id, 0) + 1
        if ctx.job_id == spoiled:
            c.cancel(spoiled, "taken away")  # its finish is refused; its slot's claim is not lost
        return {"i": ctx.input["i"]}

    before = finish_requests(server)
    w = Worker(c, ["crowd"], handle, concurrency=12, lease_seconds=20)
    run_until(w, lambda: w.completed == 239, timeout=60)
    assert w.completed == 239 and w.failed == 0
    assert set(runs.values()) == {1} and len(runs) == 240, "every job ran once"
    statuses = {j["job_id"]: j["status"] for j in c.list(type="crowd")}
    assert statuses.pop(spoiled) == "cancelled"
    assert set(statuses.values()) == {"completed"}
    assert all(j["attempt"] == 1 for j in c.list(type="crowd")), "none waited for its lease"
    finishes = finish_requests(server) - before
    assert finishes <= 240 // 2, f"{finishes} finish requests for 240 jobs (one a job without batching)"


def test_a_result_too_large_for_the_server_fails_its_own_job_only(server):
    c = JobstoreClient(server.url)
    jobs = c.create_batch([{"type": "huge", "input": {"i": i}} for i in range(6)])
    barrier = threading.Barrier(6, timeout=10)

    def handle(ctx):
        barrier.wait()  # the six finish together
        if ctx.input["i"] == 2:
            return "x" * (2 << 20)
        return {"i": ctx.input["i"], "pad": "y" * (100 << 10)}

    w = Worker(c, ["huge"], handle, concurrency=6, lease_seconds=10)
    run_until(w, lambda: w.completed + w.failed == 6, timeout=30)
    final = [c.get(j["job_id"]) for j in jobs]
    assert [j["status"] for j in final] == ["completed"] * 2 + ["failed"] + ["completed"] * 3
    assert final[2]["error"]["code"] == "result_too_large" and final[2]["attempt"] == 1
    assert len(final[5]["result"]["pad"]) == 100 << 10


def test_idle_slots_share_one_long_poll_claim(server):
    c = JobstoreClient(server.url)
    before = claim_requests(server)
    w = Worker(c, ["idle-crowd"], lambda ctx: "done", concurrency=16, poll_seconds=0.5)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    time.sleep(1.6)
    job = c.create("idle-crowd")
    deadline = time.time() + 10
    while c.get(job["job_id"])["status"] != "completed":
        assert time.time() < deadline, "the idle worker did not take the new job"
        time.sleep(0.02)
    w.stop()
    t.join(timeout=10)
    claims = claim_requests(server) - before
    assert claims <= 6, f"{claims} claims for 16 idle slots over ~1.6 s of 0.5 s polls"
