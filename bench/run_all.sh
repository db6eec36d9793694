#!/usr/bin/env bash
# Reproduces the whole table of bench/RESULTS.md in one run, every figure beside the baseline it
# is divided by (measured in the same run: this machine is shared and noisy).
#   bench/run_all.sh [--smoke] [--peers] [OUT_DIR]
# Full run: ~6 minutes and ~3 GB of temporary disk. --smoke: tiny sizes and fractions of a second,
# to prove every benchmark builds and runs (CI runs it; its figures mean nothing). Raw outputs go
# to OUT_DIR (default build/bench-results/); the summary table is printed last. Never fails on a
# figure, only when a benchmark cannot run. --peers adds bench/run_peers.sh (jobstore beside
# BullMQ on Redis and pg-boss on PostgreSQL, equal durability; ~4 more minutes), its table last.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
peers=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) smoke=1; shift ;;
    --peers) peers=1; shift ;;
    *) break ;;
  esac
done
out=${1:-${JOBSTORE_BUILD_DIR:-build}/bench-results}
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.txt
tmp=$(mktemp -d /tmp/jobstore-bench-XXXXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

if [ $smoke = 1 ]; then
  min_time=0.01; http_secs=0.5; waiters=50; expiring=2000; compaction_interval=3s; startup_jobs=2000
  db_num=200; compaction_secs=4; unloaded_secs=0.5
else
  min_time=2; http_secs=5; waiters=1000; expiring=100000; compaction_interval=45s; startup_jobs=1000000
  db_num=5000
  # The loaded window covers the whole expiry (13-19 s at the default duty cycle here; the summary
  # checks it), and the unloaded one is as long: the worst second of 25 s is compared with the
  # worst second of 25 s, not of 5.
  compaction_secs=25; unloaded_secs=25
fi
build=${JOBSTORE_BUILD_DIR:-build}
b=$build/bench
jobstore=$build/cli/jobstore

wait_ready() {  # PORT
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$1/readyz" -o /dev/null && return 0
    curl -sf "http://127.0.0.1:$1/api/v1/jobs/x" -o /dev/null && return 0  # the bare server
    sleep 0.1
  done
  echo "run_all.sh: nothing answers on port $1" >&2; return 1
}

echo "== machine" >&2
{ echo "date $(date -u +%FT%TZ)"; echo "nproc $(nproc)"; free -g | awk '/Mem:/{print "mem_gib " $2}';
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"; } > "$out/machine.txt"

echo "== in-process store (Google Benchmark)" >&2
# The figures to their own file: RocksDB's warnings (a write stall, say) go to stdout and must not
# land inside the JSON.
JOBSTORE_BENCH_DIR=$tmp $b/store_bench --benchmark_min_time=$min_time \
    --benchmark_out="$out/store_bench.json" --benchmark_out_format=json > "$out/store_bench.txt"

echo "== RocksDB db_bench fillseq --sync=1 --threads=8 (the one-by-one durable ceiling)" >&2
db_bench --benchmarks=fillseq --sync=1 --threads=8 --num=$db_num --db="$tmp/db_bench" \
    --compression_type=none 2>/dev/null | grep -E "^fillseq" > "$out/db_bench.txt"
rm -rf "$tmp/db_bench"

echo "== HTTP: jobstore beside a bare cpp-httplib server" >&2
$b/bare_httplib_server 18101 >/dev/null 2>&1 &
$jobstore serve --data-dir "$tmp/http" --listen 127.0.0.1:18102 2>/dev/null &
# The durable ceiling: the bare server making each POST body durable with the plainest group
# commit (one write() and one fdatasync() per batch), nothing parsed or decided.
$b/bare_httplib_server 18104 --durable "$tmp/bare_durable.log" >/dev/null 2>&1 &
wait_ready 18101; wait_ready 18102; wait_ready 18104
for mode in create get; do
  $b/http_load --port 18101 --mode $mode --seconds $http_secs > "$out/bare_$mode.json"
  $b/http_load --port 18102 --mode $mode --seconds $http_secs > "$out/jobstore_$mode.json"
done
$b/http_load --port 18104 --mode create --seconds $http_secs > "$out/bare_durable_create.json"
$b/http_load --port 18102 --mode lifecycle --seconds $http_secs > "$out/jobstore_lifecycle.json"
$b/http_load --port 18102 --mode hitl-wake --count $waiters > "$out/jobstore_hitl_wake.json"
kill %1 %2 %3; wait %1 %2 %3 2>/dev/null || true

echo "== create p99 while compaction expires $expiring jobs" >&2
# The first compaction runs at start, the next one a full interval later: by then every filled
# job is past its 1 s TTL, so that one run expires them all while creates keep coming.
$jobstore serve --data-dir "$tmp/compaction" --listen 127.0.0.1:18103 \
    --compaction-interval $compaction_interval 2>"$out/compaction_server.log" &
server=$!
started=$(date +%s.%N)
wait_ready 18103
$b/http_load --port 18103 --mode fill-expiring --count $expiring --ttl 1 > "$out/compaction_fill.json"
$b/http_load --port 18103 --mode create --seconds $unloaded_secs > "$out/compaction_unloaded.json"
interval_s=${compaction_interval%s}
sleep "$(awk -v s="$started" -v i="$interval_s" -v now="$(date +%s.%N)" 'BEGIN{w=s+i-2-now; print (w>0?w:0)}')"
$b/http_load --port 18103 --mode create --seconds $compaction_secs > "$out/compaction_loaded.json"
for _ in $(seq 60); do  # a compaction still under way is not in the metrics yet
  curl -s http://127.0.0.1:18103/metrics | grep -E "^jobstore_compaction" > "$out/compaction_metrics.txt"
  awk -v n=$expiring '$1 == "jobstore_compaction_jobs_expired_total" && $2 >= n {ok = 1} END {exit !ok}' \
      "$out/compaction_metrics.txt" && break
  sleep 1
done
kill $server; wait $server 2>/dev/null || true

echo "== creates while thousands of waiters wake (bench/herd_bench.sh)" >&2
if [ $smoke = 1 ]; then bench/herd_bench.sh --smoke; else bench/herd_bench.sh 1; fi > "$out/herd.json"

echo "== start time: $startup_jobs jobs, 5 events each" >&2
$b/startup_bench $startup_jobs "$tmp/startup" keep > "$out/startup.json"

echo "== offline tools on that store" >&2
events=$((startup_jobs * 5))
for cmd in "inspect --data-dir $tmp/startup dump" "replay --data-dir $tmp/startup --report summary"; do
  start=$(date +%s.%N)
  $jobstore $cmd > /dev/null
  echo "{\"command\":\"jobstore $cmd\",\"seconds\":$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{print e-s}'),\"events\":$events}"
done > "$out/tools.json"

/usr/bin/python3 bench/summarize.py "$out"
if [ $peers = 1 ]; then
  echo "== jobstore beside BullMQ and pg-boss (bench/run_peers.sh)" >&2
  if [ $smoke = 1 ]; then bench/run_peers.sh --smoke 1 "$out"; else bench/run_peers.sh 2 "$out"; fi
fi
