#!/usr/bin/env bash
# Several instances on NATS JetStream beside one embedded instance, in one run (ratios, not
# absolute figures: everything shares this machine's cores).
#   bench/run_cluster.sh [SECONDS (5)] [CONNECTIONS (30)]
# Needs a build in build/ and Debian's nats-server. Uses ports 4222-4224, 6222-6224, 8001-8004
# and 18102. Prints one line per measurement:
#   - creates/s and GET/s: one embedded instance, then three instances on the replicated log with
#     the connections split evenly over them (three http_load processes at once, summed);
#   - catch-up: a fourth instance with an empty data directory joins, events applied per second
#     until its /readyz says ready. With CATCH_UP_BINARIES="A B", each of those jobstore binaries
#     catches up in turn, three rounds alternating (a same-run comparison of two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-30}
work=$(mktemp -d /tmp/jobstore-bench-cluster-XXXXXX)
cleanup() {
  [ -f "$work/j4.pid" ] && kill "$(cat "$work/j4.pid")" 2>/dev/null || true
  scripts/cluster.sh stop "$work/cluster" || true
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
load=build/bench/http_load
per_second() { sed -E 's/.*"per_second":([0-9.]+).*/\1/'; }
wait_ready() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1/readyz" -o /dev/null && return 0; sleep 0.05; done; return 1; }

# One embedded instance.
build/cli/jobstore serve --data-dir "$work/single" --listen 127.0.0.1:18102 2>/dev/null &
wait_ready 18102
for mode in create get; do
  echo "embedded  $mode $($load --port 18102 --mode $mode --connections "$conns" --seconds "$secs")"
done
kill %1; wait %1 2>/dev/null || true

# Three instances on three NATS servers.
scripts/cluster.sh start "$work/cluster" >/dev/null
for _ in $(seq 100); do
  curl -s http://127.0.0.1:8001/readyz http://127.0.0.1:8002/readyz http://127.0.0.1:8003/readyz |
    grep -q '"writer"' && break
  sleep 0.1
done
for mode in create get; do
  total=0
  for port in 8001 8002 8003; do
    $load --port $port --mode $mode --connections $((conns / 3)) --seconds "$secs" > "$work/$mode.$port" &
  done
  wait $(jobs -p | tail -3) 2>/dev/null || true
  for port in 8001 8002 8003; do
    echo "cluster   $mode :$port $(cat "$work/$mode.$port")"
    total=$(echo "$total + $(per_second < "$work/$mode.$port")" | bc)
  done
  echo "cluster   $mode total per_second $total"
done

# Catch-up of a new instance: fill the stream with batches, then time a fourth instance.
body=$(python3 -c 'import json; print(json.dumps({"jobs": [{"type": "fill", "input": {"i": i}} for i in range(500)]}))')
for _ in $(seq 200); do
  curl -sf -X POST -H 'Content-Type: application/json' -d "$body" http://127.0.0.1:8001/api/v1/jobs/batch -o /dev/null
done
head=$(curl -s 'http://127.0.0.1:8001/api/v1/events?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])')
catch_up() {  # BINARY LABEL
  rm -rf "$work/j4"
  local start took
  start=$(date +%s.%N)
  "$1" serve --data-dir "$work/j4" --listen 127.0.0.1:8004 \
    --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 > "$work/j4.log" 2>&1 &
  echo $! > "$work/j4.pid"
  wait_ready 8004
  took=$(echo "$(date +%s.%N) - $start" | bc)
  echo "catch-up  $2: $head events in $took s (process start included): $(echo "$head / $took" | bc) events/s"
  echo "catch-up  $2: the instance's own count: $(grep -o 'caught up with .*' "$work/j4.log")"
  kill "$(cat "$work/j4.pid")"; wait "$(cat "$work/j4.pid")" 2>/dev/null || true
  rm -f "$work/j4.pid"
}
if [ -n "${CATCH_UP_BINARIES:-}" ]; then
  for round in 1 2 3; do
    for bin in $CATCH_UP_BINARIES; do catch_up "$bin" "$bin (round $round)"; done
  done
else
  catch_up build/cli/jobstore build/cli/jobstore
fi
