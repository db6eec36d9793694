"""The native asyncio client and AsyncWorker against the real server: calls that never queue
behind long-polls, cancellation that ends the request, aclose() that closes every socket, the
network (a loopback proxy with delay, a stale kept-alive connection, a proxy's HTML 502), and
the worker kit's contract for async def handlers, SIGTERM included."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable, List, Set

import pytest

from jobstore_client import (AsyncJobContext, AsyncJobstoreClient, AsyncWorker, BadGateway,
                             InvalidTransition, JobstoreClient, PermanentFailure)


def established_sockets_to(port: int) -> int:
    """How many TCP connections this process has open to 127.0.0.1:`port` (from /proc)."""
    inodes: Set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_a_create_never_queues_behind_long_polls(server):
    async def main() -> float:
        async with AsyncJobstoreClient(server.url) as c:
            job = await c.create("aio")
            polls = [asyncio.ensure_future(c.get(job["job_id"], wait=30)) for _ in range(40)]
            await asyncio.to_thread(server.wait_for_waiters, 40)
            assert c.open_connections == 40
            started = time.monotonic()
            await c.create("aio")
            took = time.monotonic() - started
            await c.cancel(job["job_id"])  # wakes the 40 long-polls
            woken = await asyncio.gather(*polls)
            assert {j["status"] for j in woken} == {"cancelled"}
            return took

    assert asyncio.run(main()) < 2.0  # was 59.7 s when each call took an executor thread


def test_cancelling_a_hitl_wait_ends_its_request_and_asyncio_run_returns(server):
    async def main() -> None:
        c = AsyncJobstoreClient(server.url)
        job = await c.create("aio")
        await c.start(job["job_id"])
        await c.request_hitl(job["job_id"], "approve", {"q": "?"})
        waiting = asyncio.ensure_future(c.wait_for_hitl_response(job["job_id"]))
        await asyncio.to_thread(server.wait_for_waiters, 1)
        assert established_sockets_to(server.port) >= 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert c.open_connections == 0
        await wait_for(lambda: established_sockets_to(server.port) == 0)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 10


def test_aclose_closes_every_connection_idle_or_in_flight(server):
    async def main() -> None:
        c = AsyncJobstoreClient(server.url)
        job = await c.create("aio")
        polls = [asyncio.ensure_future(c.get(job["job_id"], wait=30)) for _ in range(6)]
        await asyncio.to_thread(server.wait_for_waiters, 6)
        await asyncio.gather(*(c.get(job["job_id"]) for _ in range(6)))  # six more, now idle
        assert established_sockets_to(server.port) == 12
        await c.aclose()
        assert c.open_connections == 0
        assert established_sockets_to(server.port) == 0
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)

    asyncio.run(main())


def test_a_write_on_a_connection_the_server_closed_while_idle_is_sent_again(server, proxy):
    async def main() -> None:
        async with AsyncJobstoreClient(proxy.url, idle_timeout=60.0) as stale:
            job = await stale.create("aio-net")
            await asyncio.sleep(6)  # the server drops connections idle for 5 s
            assert (await stale.start(job["job_id"], worker="w"))["status"] == "running"
        async with AsyncJobstoreClient(proxy.url) as fresh:  # idle past 4 s: not reused
            await fresh.get(job["job_id"])
            await asyncio.sleep(6)
            assert (await fresh.complete(job["job_id"], 1))["status"] == "completed"
            assert [e["type"] for e in await fresh.events(job["job_id"])] == [
                "job.created", "job.started", "job.completed"]

    asyncio.run(main())


def test_a_proxys_html_502_is_typed_and_only_safe_calls_are_retried(server, proxy):
    async def main() -> None:
        async with AsyncJobstoreClient(proxy.url, retry_for=1.0) as c:
            job = await c.create("aio-net")
            proxy.bad_gateway = True
            await c.aclose()
            with pytest.raises(BadGateway) as unsafe:
                await c.start(job["job_id"], worker="w")
            assert unsafe.value.status == 502 and "502 Bad Gateway" in str(unsafe.value)
            started = time.monotonic()
            with pytest.raises(BadGateway):
                await c.get(job["job_id"])
            assert time.monotonic() - started >= 0.9
        asyncio.get_running_loop().call_later(0.5, setattr, proxy, "bad_gateway", False)
        async with AsyncJobstoreClient(proxy.url, retry_for=10.0) as retrying:
            started_job = await retrying.start(job["job_id"], worker="w", if_match=1)
            assert started_job["status"] == "running"

    asyncio.run(main())


# ------------------------------------------------------------------------------- AsyncWorker

async def run_worker_until(worker: AsyncWorker, condition: Callable[[], bool],
                           timeout: float = 30.0) -> None:
    running = asyncio.ensure_future(worker.run())
    await wait_for(condition, timeout)
    worker.stop()
    await asyncio.wait_for(running, 10)


def test_async_handlers_complete_fail_and_misbehave_without_costing_a_slot(server):
    async def handle(ctx: AsyncJobContext) -> Any:
        kind = ctx.input["kind"]
        await ctx.progress(percent=50)
        if kind == "ok":
            return {"echo": ctx.input}
        if kind == "boom":
            raise ValueError("boom")
        if kind == "permanent":
            raise PermanentFailure("bad input")
        if kind == "datetime":
            return datetime.datetime(2026, 1, 1)
        return asyncio.sleep(0)  # a coroutine it forgot to await

    async def main() -> None:
        async with AsyncJobstoreClient(server.url) as c:
            kinds = ["ok", "boom", "permanent", "datetime", "unawaited"] * 2
            jobs = [await c.create("aio-w", input={"kind": k}) for k in kinds]
            w = AsyncWorker(c, ["aio-w"], handle, concurrency=2, lease_seconds=10)
            await run_worker_until(w, lambda: w.completed + w.failed == len(kinds))
            assert w.slot_restarts == 0
            final = {k: await c.get(j["job_id"]) for k, j in zip(kinds, jobs)}
            assert final["ok"]["status"] == "completed"
            assert final["ok"]["result"] == {"echo": {"kind": "ok"}}
            assert final["boom"]["error"]["code"] == "ValueError"
            assert final["permanent"]["error"]["code"] == "PermanentFailure"
            assert final["datetime"]["error"]["code"] == "result_not_json"
            assert final["unawaited"]["error"]["code"] == "handler_returned_coroutine"

    asyncio.run(main())


def test_plain_functions_are_refused_and_async_ones_by_the_thread_worker():
    def plain(ctx: Any) -> None:
        return None

    async def coro(ctx: Any) -> None:
        return None

    with pytest.raises(TypeError):
        AsyncWorker(AsyncJobstoreClient(), None, plain)  # type: ignore[arg-type]
    from jobstore_client import Worker
    with pytest.raises(TypeError):
        Worker(JobstoreClient(), None, coro)


def test_ask_gets_the_answer_from_another_client_and_a_stop_leaves_the_question_open(server):
    async def handle(ctx: AsyncJobContext) -> Any:
        return await ctx.ask("approve", {"q": "ship?"}, key="ship")

    async def answer_when_asked(c: AsyncJobstoreClient, job_id: str) -> None:
        job = await c.get(job_id)
        while job["status"] != "pending_hitl":
            job = await c.get(job_id, wait=5, after_version=job["version"])
        hitl = job.get("hitl") or {}
        await c.respond_hitl(job_id, hitl["request_id"], {"ship": True})

    async def main() -> None:
        async with AsyncJobstoreClient(server.url) as c:
            job = await c.create("aio-ask")
            w = AsyncWorker(c, ["aio-ask"], handle, lease_seconds=10)
            answering = asyncio.ensure_future(answer_when_asked(c, job["job_id"]))
            await run_worker_until(w, lambda: w.completed == 1)
            await answering
            done = await c.get(job["job_id"])
            assert done["status"] == "completed" and done["result"] == {"ship": True}

            # A stop while the question is open: run() returns at once, the job stays
            # pending_hitl for the person to answer.
            second = await c.create("aio-ask")
            w2 = AsyncWorker(c, ["aio-ask"], handle, lease_seconds=10)
            running = asyncio.ensure_future(w2.run())
            current = await c.get(second["job_id"])
            while current["status"] != "pending_hitl":
                current = await c.get(second["job_id"], wait=5, after_version=current["version"])
            started = time.monotonic()
            w2.stop()
            await asyncio.wait_for(running, 10)
            assert time.monotonic() - started < 2
            left = await c.get(second["job_id"])
            assert left["status"] == "pending_hitl", left

    asyncio.run(main())


def test_slots_survive_a_server_down_for_seconds(start_server):
    first = start_server()
    port, data_dir = first.port, first.data_dir

    async def handle(ctx: AsyncJobContext) -> Any:
        return "ok"

    async def main() -> None:
        async with AsyncJobstoreClient(first.url, retry_for=60.0) as c:
            w = AsyncWorker(c, ["aio-down"], handle, concurrency=4, lease_seconds=10)
            running = asyncio.ensure_future(w.run())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(first.stop)
            await asyncio.sleep(4)  # every slot's claim fails and is retried meanwhile
            restarted = await asyncio.to_thread(start_server, data_dir=data_dir, port=port)
            async with AsyncJobstoreClient(restarted.url) as other:
                for _ in range(8):
                    await other.create("aio-down")
            await wait_for(lambda: w.completed == 8, 30)
            assert w.slot_restarts == 0
            w.stop()
            await asyncio.wait_for(running, 10)

    asyncio.run(main())


def _async_worker_process(url: str, body: str) -> "subprocess.Popen[str]":
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = "\n".join([
        "import asyncio, sys", f"sys.path.insert(0, {package!r})",
        "from jobstore_client import AsyncJobstoreClient, AsyncWorker",
        "async def handle(ctx):",
        "    print('claimed', flush=True)",
        f"    {body}",
        "    return 'ok'",
        "async def main():",
        f"    async with AsyncJobstoreClient({url!r}) as c:",
        "        w = AsyncWorker(c, ['aio-sig'], handle, shutdown_grace=20)",
        "        print('ready', flush=True)",
        "        await w.run()",
        "asyncio.run(main())"])
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_sigterm_stops_an_idle_async_worker_at_once_and_a_second_exits_now(server):
    c = JobstoreClient(server.url)
    idle = _async_worker_process(server.url, "pass")
    assert idle.stdout is not None and idle.stdout.readline().strip() == "ready"
    server.wait_for_waiters(1)  # its claim is parked
    started = time.monotonic()
    idle.send_signal(signal.SIGTERM)
    assert idle.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    late = c.create("aio-sig")
    time.sleep(0.3)
    assert c.get(late["job_id"])["status"] == "pending"  # nothing claimed after the stop

    busy = _async_worker_process(server.url, "await asyncio.sleep(60)")
    assert busy.stdout is not None and busy.stdout.readline().strip() == "ready"
    assert busy.stdout.readline().strip() == "claimed"
    busy.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert busy.poll() is None  # the first signal waits for the job in hand (grace 20 s)
    started = time.monotonic()
    busy.send_signal(signal.SIGTERM)
    assert busy.wait(timeout=5) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2


def test_async_slots_finish_together_and_a_refused_finish_costs_nobody(server):
    from test_worker import finish_requests

    async def main() -> None:
        async with AsyncJobstoreClient(server.url) as c:
            jobs = await c.create_batch([{"type": "aio-crowd", "input": {"i": i}} for i in range(240)])
            spoiled = jobs[5]["job_id"]
            runs: dict = {}

            async def handle(ctx: Any) -> Any:
                runs[ctx.job_id] = runs.get(ctx.job_id, 0) + 1
                if ctx.job_id == spoiled:
                    await c.cancel(spoiled, "taken away")
                return {"i": ctx.input["i"]}  # at once: the slots an answer refilled finish together

            before = finish_requests(server)
            w = AsyncWorker(c, ["aio-crowd"], handle, concurrency=12, lease_seconds=20)
            await run_worker_until(w, lambda: w.completed == 239, timeout=60)
            assert w.failed == 0 and len(runs) == 240 and set(runs.values()) == {1}
            final = [await c.get(j["job_id"]) for j in jobs]
            assert sorted(j["status"] for j in final).count("completed") == 239
            assert all(j["attempt"] == 1 for j in final), "none waited for its lease"
            finishes = finish_requests(server) - before
            assert finishes <= 240 // 2, f"{finishes} finish requests for 240 jobs (one a job without batching)"

    asyncio.run(main())


def test_idle_async_slots_share_one_long_poll_claim(server):
    from test_worker import claim_requests

    async def main() -> None:
        async with AsyncJobstoreClient(server.url) as c:
            before = claim_requests(server)

            async def handle(ctx: Any) -> Any:
                return "done"

            w = AsyncWorker(c, ["aio-idle"], handle, concurrency=16, poll_seconds=0.5)
            running = asyncio.ensure_future(w.run())
            await asyncio.sleep(1.6)
            job = await c.create("aio-idle")
            await wait_for(lambda: w.completed == 1)
            w.stop()
            await asyncio.wait_for(running, 10)
            assert (await c.get(job["job_id"]))["status"] == "completed"
            claims = claim_requests(server) - before
            assert claims <= 6, f"{claims} claims for 16 idle slots over ~1.6 s of 0.5 s polls"

    asyncio.run(main())
