#!/usr/bin/env python3
"""Prints the figures of one bench/run_all.sh run as the Markdown table of bench/RESULTS.md:
each figure, the baseline measured in the same run, their ratio, the target and whether it holds.
Usage: bench/summarize.py OUT_DIR"""
import json
import os
import re
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    with open(path) as f:
        text = f.read()
    if name.endswith(".json") and text.lstrip().startswith("{") and "\n{" in text.strip():
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text) if name.endswith(".json") else text


def bench(name_prefix, field="items_per_second"):
    for b in load("store_bench.json")["benchmarks"]:
        if b["name"].startswith(name_prefix):
            return b.get(field)
    return None


def worst_second(run):
    series = run.get("p99_ms_by_second") or [run["p99_ms"]]
    # The last bucket holds only the requests of a fraction of a second; skip it when others exist.
    body = series[:-1] if len(series) > 1 else series
    return max(body)


rows = []


def row(figure, value, baseline="", ratio="", target="", met=None):
    verdict = "" if met is None else ("yes" if met else "**no**")
    rows.append((figure, value, baseline, ratio, target, verdict))


machine = dict(line.split(" ", 1) for line in load("machine.txt").splitlines())
bare_c, js_c = load("bare_create.json"), load("jobstore_create.json")
bare_g, js_g = load("bare_get.json"), load("jobstore_get.json")
r = js_c["per_second"] / bare_c["per_second"]
row("durable creates over HTTP, 32 connections",
    f"{js_c['per_second']:,.0f}/s (p50 {js_c['p50_ms']:.2f} ms, p99 {js_c['p99_ms']:.2f} ms)",
    f"bare httplib POST {bare_c['per_second']:,.0f}/s", f"{r:.2f}", ">= 0.80", r >= 0.80)
durable_c = load("bare_durable_create.json")
row("durable creates over HTTP, against the durable ceiling",
    f"{js_c['per_second']:,.0f}/s",
    f"bare httplib POST with a plain group commit (write + fdatasync) {durable_c['per_second']:,.0f}/s "
    f"({durable_c['per_second'] / bare_c['per_second']:.2f} of bare)",
    f"{js_c['per_second'] / durable_c['per_second']:.2f}")
r = js_g["per_second"] / bare_g["per_second"]
row("GET job, 32 connections",
    f"{js_g['per_second']:,.0f}/s (p50 {js_g['p50_ms']:.2f} ms, p99 {js_g['p99_ms']:.2f} ms)",
    f"bare httplib GET {bare_g['per_second']:,.0f}/s", f"{r:.2f}", ">= 0.90", r >= 0.90)

db = load("db_bench.txt")
m = re.search(r"([\d.]+) ops/sec", db)
db_ops = float(m.group(1)) if m else float("nan")
append64 = bench("BM_DurableCreate/sync_always:0/real_time/threads:64")
r = append64 / db_ops
row("in-process append, sync always, 64 appenders", f"{append64:,.0f}/s",
    f"db_bench fillseq sync=1 threads=8 {db_ops:,.0f}/s", f"{r:.1f}", ">= 5", r >= 5)
plain64 = bench("BM_PlainGroupCommit")
row("in-process append, against the plain group commit ceiling", f"{append64:,.0f}/s",
    f"64 threads, one write + fdatasync per batch {plain64:,.0f}/s ({plain64 / db_ops:.1f}x db_bench)",
    f"{append64 / plain64:.2f}")

replay = bench("BM_Replay")
row("replay into the projection (100k events)", f"{replay / 1e6:.2f} M events/s", "", "",
    ">= 1 M/s", replay >= 1e6)
startup = {c["case"]: c for c in load("startup.json")}
full = startup["open_full_replay"]
row(f"replay at start, {full['events_replayed']:,} events", f"{full['events_per_second'] / 1e6:.2f} M events/s "
    f"({full['seconds']:.1f} s)", "", "", ">= 1 M/s", full["events_per_second"] >= 1e6)
snap = startup["open_with_snapshot"]
row(f"start with {snap['jobs']:,} jobs / {full['events_replayed']:,} events, with a snapshot",
    f"{snap['seconds']:.2f} s", f"snapshot write {startup['write_snapshot']['seconds']:.1f} s", "",
    "<= 2 s", snap["seconds"] <= 2)

wake = load("jobstore_hitl_wake.json")
row(f"HITL wake, {wake['waiters']} waiters", f"p50 {wake['p50_ms']:.2f} ms, p99 {wake['p99_ms']:.2f} ms, "
    f"max {wake['max_ms']:.2f} ms", "", "", "p99 <= 2 ms", wake["p99_ms"] <= 2)

per_job = bench("BM_MemoryPerLiveJob", "heap_bytes_per_job")
payload = bench("BM_MemoryPerLiveJob", "payload_bytes")
row("memory per live job (small payload)", f"{per_job:,.0f} B heap ({per_job - payload:,.0f} B beyond "
    f"the {payload:.0f} B input)", "", "", "<= 1024 B beyond", per_job - payload <= 1024)

fill = load("compaction_fill.json")
unloaded, loaded = load("compaction_unloaded.json"), load("compaction_loaded.json")
metrics = dict(l.split() for l in load("compaction_metrics.txt").splitlines() if l and l[0] != "#")
expired = float(metrics.get("jobstore_compaction_jobs_expired_total", 0))
took = float(metrics.get("jobstore_compaction_last_duration_seconds", 0))
r = worst_second(loaded) / worst_second(unloaded)
# The figure counts only when the whole expiry ran inside the loaded window (which starts ~2 s
# before the compaction).
inside = expired >= fill["jobs"] and took <= loaded["seconds"] - 2
row(f"create p99 while compaction expires {fill['jobs']:,} jobs",
    f"worst second {worst_second(loaded):.2f} ms ({expired:,.0f} expired in {took:.2f} s"
    + ("" if inside else ", NOT all inside the measured window") + ")",
    f"unloaded worst second {worst_second(unloaded):.2f} ms", f"{r:.2f}", "<= 2", inside and r <= 2)

lifecycle = load("jobstore_lifecycle.json")
row("full lifecycle per job (5 requests)", f"{lifecycle['per_second']:,.0f} jobs/s")
for name, label in [("BM_DurableCreate/sync_always:0/real_time/threads:1", "append, sync always, 1 appender"),
                    ("BM_DurableCreate/sync_always:0/real_time/threads:16", "append, sync always, 16 appenders"),
                    ("BM_DurableCreate/sync_none:2/real_time/threads:64", "append, sync none, 64 appenders"),
                    ("BM_EncodeRecord", "event record encode"), ("BM_DecodeRecord", "event record decode"),
                    ("BM_DecideApply", "Decide + Apply (an update)"),
                    ("BM_DecideApplyCreate", "Decide + Apply + record (a create)"),
                    ("BM_PreparedCreateInWriter",
                     "a create prepared by its caller: the writer's check, stamp and record"),
                    ("BM_JobToJson", "job -> JSON text (JobToJson, then dump)"),
                    ("BM_JobJsonText", "job -> JSON text as the server writes it (JobJsonText)"),
                    ("BM_ListByLabel", "list by label, 100k jobs, page of 50")]:
    v = bench(name)
    if v is not None:
        row(label, f"{v:,.0f}/s")
for t in load("tools.json"):
    rate = t["events"] / t["seconds"]
    words = t["command"].split()
    row(f"`{' '.join(w for w in words if not w.startswith('/'))}` on that store",
        f"{rate / 1e6:.2f} M events/s", "", "", ">= 1 M/s", rate >= 1e6)

print(f"\nRun of {machine.get('date')} at {machine.get('commit')}: {machine.get('nproc')} cores, "
      f"{machine.get('mem_gib')} GiB\n")
print("| figure | result | baseline (same run) | ratio | target | met |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
