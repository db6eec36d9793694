"""The client and the worker kit the way they run in production: across a network (a loopback
proxy adding delay and passing closes on like a remote peer), through a proxy's error pages and
a server restart, with handlers that misbehave, and under SIGTERM."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from jobstore_client import BadGateway, JobstoreClient, Worker
from test_worker import run_until


def test_a_write_on_a_connection_the_server_closed_while_idle_is_not_lost(server, proxy):
    # The server drops a connection idle for 5 s. A client told to keep it (idle_timeout 60)
    # finds it closed at its next write, which must go again on a new connection.
    stale = JobstoreClient(proxy.url, idle_timeout=60.0)
    job = stale.create("net")
    time.sleep(6)
    assert stale.start(job["job_id"], worker="w")["status"] == "running"
    # By default a connection idle past 4 s is not reused at all.
    fresh = JobstoreClient(proxy.url)
    fresh.get(job["job_id"])
    time.sleep(6)
    assert fresh.complete(job["job_id"], {"ok": True})["status"] == "completed"


def test_a_worker_whose_handler_outlasts_the_keep_alive_finishes_its_jobs(server, proxy):
    c = JobstoreClient(proxy.url)
    jobs = [c.create("slow-net")["job_id"] for _ in range(2)]

    def handle(ctx):
        time.sleep(7)  # longer than the server's 5 s idle timeout
        return "done"

    w = Worker(c, ["slow-net"], handle, lease_seconds=30, concurrency=2)
    run_until(w, lambda: w.completed == 2, timeout=40)
    assert [c.get(j)["status"] for j in jobs] == ["completed", "completed"]


def test_a_proxys_html_502_is_a_typed_error_and_only_safe_calls_are_retried(server, proxy):
    c = JobstoreClient(proxy.url, retry_for=1.0)
    job = c.create("net")
    proxy.bad_gateway = True
    c.close()  # the proxy answers 502 on new connections
    with pytest.raises(BadGateway) as unsafe:
        c.start(job["job_id"], worker="w")
    assert unsafe.value.status == 502 and "502 Bad Gateway" in str(unsafe.value)
    started = time.monotonic()
    with pytest.raises(BadGateway):
        c.get(job["job_id"])  # safe: retried until retry_for ran out
    assert time.monotonic() - started >= 0.9
    # A write with If-Match is safe to repeat: retried through a 502 that clears.
    threading.Timer(0.5, lambda: setattr(proxy, "bad_gateway", False)).start()
    retrying = JobstoreClient(proxy.url, retry_for=10.0)
    assert retrying.start(job["job_id"], worker="w", if_match=1)["status"] == "running"


def test_misbehaving_handlers_fail_their_job_and_never_cost_a_slot(server):
    c = JobstoreClient(server.url)

    async def coroutine_handler(ctx):
        return 1

    with pytest.raises(TypeError):
        Worker(c, ["x"], coroutine_handler)
    odd = c.create("odd", input={"kind": "datetime"})
    lazy = c.create("odd", input={"kind": "coroutine"})
    fine = [c.create("odd", input={"kind": "fine"}) for _ in range(3)]

    async def never_awaited():
        return 1

    def handle(ctx):
        if ctx.input["kind"] == "datetime":
            return datetime.datetime.now()
        if ctx.input["kind"] == "coroutine":
            return never_awaited()
        return "ok"

    w = Worker(c, ["odd"], handle, lease_seconds=10, concurrency=2)
    run_until(w, lambda: w.completed == 3 and w.failed == 2, timeout=20)
    assert c.get(odd["job_id"])["error"]["code"] == "result_not_json"
    assert c.get(lazy["job_id"])["error"]["code"] == "handler_returned_coroutine"
    assert all(c.get(j["job_id"])["status"] == "completed" for j in fine)
    assert w.slot_restarts == 0


def test_slots_survive_a_server_down_for_seconds(start_server):
    first = start_server()
    port = first.port
    c = JobstoreClient(first.url, retry_for=60.0)
    w = Worker(c, ["restart"], lambda ctx: "ok", lease_seconds=10, concurrency=4)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    time.sleep(1)
    first.stop()
    time.sleep(4)  # every slot's claim fails meanwhile
    second = start_server(data_dir=first.data_dir, port=port)
    jobs = [c.create("restart")["job_id"] for _ in range(8)]
    deadline = time.time() + 30
    while w.completed < 8 and time.time() < deadline:
        time.sleep(0.1)
    w.stop()
    t.join(timeout=10)
    assert w.completed == 8, [c.get(j)["status"] for j in jobs]
    assert w.slot_restarts == 0
    assert second.proc.poll() is None


def _worker_process(url: str, *handler_lines: str) -> subprocess.Popen:
    """A worker in its own process (signals go to its main thread, as in production); its
    handler prints "claimed", then runs `handler_lines`."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lines = ["import sys, time", f"sys.path.insert(0, {package!r})",
             "from jobstore_client import JobstoreClient, Worker",
             "def handle(ctx):", "    print('claimed', flush=True)",
             *("    " + line for line in handler_lines),
             "print('ready', flush=True)",
             f"Worker(JobstoreClient({url!r}), ['sig'], handle, lease_seconds=10,",
             "       shutdown_grace=20).run()"]
    return subprocess.Popen([sys.executable, "-c", "\n".join(lines)], stdout=subprocess.PIPE,
                            text=True)


def test_sigterm_stops_an_idle_worker_at_once_and_nothing_is_claimed_after(server):
    c = JobstoreClient(server.url)
    proc = _worker_process(server.url, "return 'ok'")
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    # No claim starts after the signal; the one in flight long-polls at most 1 s (a job it
    # takes in that second is run). So a job created 1.5 s later waits for another worker.
    time.sleep(1.5)
    late = c.create("sig")
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    time.sleep(0.5)
    assert c.get(late["job_id"])["status"] == "pending"


def test_sigterm_during_ask_leaves_the_question_open_and_exits(server):
    c = JobstoreClient(server.url)
    job = c.create("sig")
    proc = _worker_process(server.url, "ctx.ask('approve', {'q': 'ok?'})", "return 'ok'")
    assert proc.stdout.readline().strip() == "ready"
    assert proc.stdout.readline().strip() == "claimed"
    deadline = time.time() + 10
    while c.get(job["job_id"])["status"] != "pending_hitl" and time.time() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    assert c.get(job["job_id"])["status"] == "pending_hitl"  # a person can still answer


def test_a_second_signal_exits_at_once(server):
    c = JobstoreClient(server.url)
    c.create("sig")
    proc = _worker_process(server.url, "time.sleep(60)", "return 'ok'")
    assert proc.stdout.readline().strip() == "ready"
    assert proc.stdout.readline().strip() == "claimed"
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None  # the first waits for the job in hand (grace 20 s)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2


def test_an_answer_given_while_the_asking_worker_was_dead_reaches_the_next_attempt(server):
    c = JobstoreClient(server.url)
    job = c.create("ask-crash")
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = "\n".join([
        "import sys", f"sys.path.insert(0, {package!r})",
        "from jobstore_client import JobstoreClient, Worker",
        "def handle(ctx):",
        "    print('asking', flush=True)",
        "    return ctx.ask('approve', {'q': 'ship it?'}, key='ship')",
        f"Worker(JobstoreClient({server.url!r}), ['ask-crash'], handle, lease_seconds=3).run()"])
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "asking"
    deadline = time.time() + 10
    while c.get(job["job_id"])["status"] != "pending_hitl" and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()  # the asking worker dies while the question is open
    proc.wait()
    c.respond_hitl(job["job_id"], "h-1", {"ship": True})  # the person answers anyway

    asked_again = []

    def handle(ctx):
        asked_again.append(ctx.job["attempt"])
        return ctx.ask("approve", {"q": "ship it?"}, key="ship")

    w = Worker(c, ["ask-crash"], handle, lease_seconds=3)
    run_until(w, lambda: w.completed == 1, timeout=30)  # after the fresh lease expires
    final = c.get(job["job_id"])
    assert final["status"] == "completed" and final["result"] == {"ship": True}
    assert asked_again == [2]
    types = [e["type"] for e in c.events(job["job_id"])]
    assert types.count("job.hitl_requested") == 1  # nobody was asked twice
