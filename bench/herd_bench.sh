#!/usr/bin/env bash
# What many waiting clients cost the writers (the "herd" rows of bench/RESULTS.md).
#   bench/herd_bench.sh [--smoke] [ROUNDS (3)]
# Each round starts a fresh server and runs `http_load --mode herd`: creates on 8 connections
# alone, then while 2000 long-polls on one job are woken by its cancel, then beside 4000 feed
# readers waiting on /events?job_id=<a job that never changes>. With JOBSTORE_BASELINE=<another
# jobstore binary>, every round runs that binary too, alternately, so both share the machine's
# mood. Prints one JSON line per run, tagged with the binary. --smoke: 50 waiters, short runs.
# http_load's waiters are sockets read by one epoll thread (bench/socket_waiters.h): they stand
# for other machines' clients, and a client thread per waiter would put thousands of wake-ups and
# thread exits beside the measured creates' client threads.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = "--smoke" ] && { smoke=1; shift; }
rounds=${1:-3}
build=${JOBSTORE_BUILD_DIR:-build}
waiters=${JOBSTORE_HERD_WAITERS:-2000}; seconds=3
[ $smoke = 1 ] && { waiters=50; seconds=0.6; rounds=1; }
binaries=("$build/cli/jobstore")
[ -n "${JOBSTORE_BASELINE:-}" ] && binaries+=("$JOBSTORE_BASELINE")
tmp=$(mktemp -d /tmp/jobstore-herd-XXXXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
port=18110
for round in $(seq "$rounds"); do
  for bin in "${binaries[@]}"; do
    port=$((port + 1))
    rm -rf "$tmp/data"
    "$bin" serve --data-dir "$tmp/data" --listen 127.0.0.1:$port --max-connections 10000 \
        2>"$tmp/server.log" &
    server=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
    line=$("$build/bench/http_load" --port $port --mode herd --count $waiters --connections 8 \
           --seconds $seconds)
    echo "{\"binary\":\"$bin\",\"round\":$round,${line#\{}"
    kill $server; wait $server 2>/dev/null || true
  done
done
