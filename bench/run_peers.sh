#!/usr/bin/env bash
# jobstore beside BullMQ (Redis), pg-boss and graphile-worker (PostgreSQL), with equal durability: every
# acknowledged write fdatasync'ed (jobstore --sync always; Redis appendonly yes + appendfsync
# always; PostgreSQL fsync=on + synchronous_commit=on, each checked by the driver at start).
# Every system is started here on loopback in a temp dir and stopped by its PID, and driven by
# the same Node driver (bench/peers/drive.mjs): create, lifecycle (claim one + complete it),
# the library's worker runtime, bulk. Rounds alternate the systems' order. Beside them, the
# ceiling under jobstore's creates and worker runtime: bench/bare_httplib_server --durable, driven
# by the same client and Worker.
#   bench/run_peers.sh [--smoke] [ROUNDS] [OUT_DIR]      (default 2 rounds, build/bench-results)
# Needs: redis-server and postgresql (scripts/setup.sh installs them) and the npm packages
# pinned by bench/peers/package-lock.json (installed here with npm ci). Never fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0
[ "${1:-}" = "--smoke" ] && { smoke=1; shift; }
rounds=${1:-2}
out=${2:-${JOBSTORE_BUILD_DIR:-build}/bench-results}
jobstore=${JOBSTORE_BUILD_DIR:-build}/cli/jobstore
mkdir -p "$out"
results=$out/peers.jsonl
: > "$results"
for tool in redis-server redis-cli node npm; do
  command -v $tool >/dev/null || { echo "run_peers.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/initdb" ] || { echo "run_peers.sh: PostgreSQL is missing (scripts/setup.sh installs it)" >&2; exit 1; }
bare=${JOBSTORE_BUILD_DIR:-build}/bench/bare_httplib_server
[ -x "$jobstore" ] && [ -x "$bare" ] || { echo "run_peers.sh: build jobstore and bench/ first" >&2; exit 1; }
npm ci --prefix bench/peers --no-audit --no-fund --loglevel=error >/dev/null

tmp=$(mktemp -d /tmp/jobstore-peers-XXXXXX)
chmod 755 "$tmp"  # the postgres user reaches its data dir inside
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: as root it runs as the postgres user the package made.
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)

start_servers() {  # fresh data for each round; sets jobstore_pid redis_pid pg_pid ceiling_pid
  rm -rf "$tmp/js" "$tmp/redis" "$tmp/pg" "$tmp/ceiling.log"
  # The ceiling for creates and the worker: a bare cpp-httplib server, each POST body written and
  # fdatasync'ed.
  "$bare" 18304 --durable "$tmp/ceiling.log" >/dev/null 2>&1 &
  ceiling_pid=$!; pids+=("$ceiling_pid")
  mkdir -p "$tmp/redis" "$tmp/pg"
  # jobstore tuned for throughput as its README says (as each peer is): a delayed group commit
  # for the many single writes at once. JOBSTORE_PEERS_COMMIT_DELAY_US=0 runs it at its defaults.
  "$jobstore" serve --data-dir "$tmp/js" --listen 127.0.0.1:18301 --sync always \
      --commit-delay-us "${JOBSTORE_PEERS_COMMIT_DELAY_US:-1000}" 2>"$tmp/js.log" &
  jobstore_pid=$!; pids+=("$jobstore_pid")
  # BullMQ's production notes: noeviction; AOF with fsync on every write for equal durability.
  redis-server --port 18302 --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes \
      --appendfsync always --save '' --maxmemory-policy noeviction >"$tmp/redis.log" 2>&1 &
  redis_pid=$!; pids+=("$redis_pid")
  chown -R "$( [ "$(id -u)" = 0 ] && echo postgres || id -un )" "$tmp/pg"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/pg/data" -U bench --auth=trust >/dev/null
  # Durability stays at PostgreSQL's defaults (fsync=on, synchronous_commit=on, checked by the
  # driver); memory as a throughput setup would size it.
  "${as_pg[@]}" "$pg_bin/postgres" -D "$tmp/pg/data" -p 18303 -k "$tmp/pg" -c listen_addresses=127.0.0.1 \
      -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c max_connections=100 \
      >"$tmp/pg.log" 2>&1 &
  pg_pid=$!; pids+=("$pg_pid")
  for _ in $(seq 100); do
    curl -sf http://127.0.0.1:18301/readyz -o /dev/null && curl -sf http://127.0.0.1:18304/api/v1/jobs/x -o /dev/null &&
      redis-cli -p 18302 ping >/dev/null 2>&1 &&
      "$pg_bin/pg_isready" -q -h 127.0.0.1 -p 18303 && return 0
    sleep 0.2
  done
  echo "run_peers.sh: a server did not start; logs in $tmp" >&2; exit 1
}

stop_servers() {
  for pid in $jobstore_pid $redis_pid $pg_pid $ceiling_pid; do kill "$pid" 2>/dev/null || true; done
  for pid in $jobstore_pid $redis_pid $pg_pid $ceiling_pid; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
}

sizes=()
[ $smoke = 1 ] && sizes=(--jobs 200 --bulk-jobs 2000 --seconds 10 --expect-all)
drive() {  # SYSTEM PID ARGS...
  node bench/peers/drive.mjs --system "$1" --server-pid "$2" "${sizes[@]}" "${@:3}" | tee -a "$results"
}

order=(jobstore bullmq pgboss graphile ceiling)
for round in $(seq "$rounds"); do
  echo "== round $round: ${order[*]}" >&2
  start_servers
  for system in "${order[@]}"; do
    case $system in
      jobstore) drive jobstore "$jobstore_pid" --url http://127.0.0.1:18301 ;;
      bullmq)   drive bullmq "$redis_pid" --redis-port 18302 ;;
      pgboss)   drive pgboss "$pg_pid" --pg-url postgres://bench@127.0.0.1:18303/postgres ;;
      graphile) drive graphile "$pg_pid" --pg-url postgres://bench@127.0.0.1:18303/postgres ;;
      ceiling)  drive ceiling "$ceiling_pid" --url http://127.0.0.1:18304 ;;
    esac
  done
  stop_servers
  order=("${order[@]:1}" "${order[0]}")  # the next round starts with the next system
done
python3 bench/peers/summarize.py "$results"
