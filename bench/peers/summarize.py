#!/usr/bin/env python3
"""Prints the peers table from bench/run_peers.sh's JSON lines: per workload and system the
median jobs/s with its range over the rounds, the server's CPU per job, and jobstore's median
divided by the best peer's. "ceiling" (creates and the worker runtime) is the bare cpp-httplib
server with the plainest durable group commit, driven by the same client and Worker: what any
server on cpp-httplib's thread per connection reaches here."""
import json
import statistics
import sys

WORKLOADS = [
    ("create", "create, one awaited add per caller"),
    ("lifecycle", "lifecycle: claim one, complete it"),
    ("worker", "the library's worker runtime"),
    ("bulk", "bulk, batches of 500"),
]
SYSTEMS = ["jobstore", "bullmq", "pgboss", "graphile", "ceiling"]
PEERS = ["bullmq", "pgboss", "graphile"]


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip().startswith("{")]
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["system"]), []).append(r)
    print("| workload | " + " | ".join(SYSTEMS) + " | jobstore / best peer |")
    print("|---|" + "---|" * (len(SYSTEMS) + 1))
    for key, title in WORKLOADS:
        cells, medians = [], {}
        for system in SYSTEMS:
            runs = by.get((key, system), [])
            if not runs:
                cells.append("-")
                continue
            rates = sorted(r["per_second"] for r in runs)
            medians[system] = statistics.median(rates)
            cpu = statistics.median(r["server_cpu_us_per_job"] for r in runs)
            spread = f" ({rates[0]:,}-{rates[-1]:,})" if len(rates) > 1 else ""
            cells.append(f"{medians[system]:,.0f}/s{spread}, {cpu:,.0f} µs CPU")
        peers = [v for s, v in medians.items() if s in PEERS]
        ratio = f"{medians['jobstore'] / max(peers):.2f}" if "jobstore" in medians and peers else "-"
        print(f"| {title} | " + " | ".join(cells) + f" | {ratio} |")
    print()
    for key in ("create", "worker"):
        rate = {s: statistics.median(r["per_second"] for r in by[(key, s)])
                for s in ("jobstore", "ceiling") if (key, s) in by}
        if len(rate) == 2:
            print(f"{key}: jobstore / the durable cpp-httplib ceiling = {rate['jobstore'] / rate['ceiling']:.2f}")
    durability = {r["system"]: r["durability"] for r in rows}
    print()
    print("durability checked at start: " + "; ".join(f"{s}: {d}" for s, d in durability.items()))


if __name__ == "__main__":
    main(sys.argv[1])
