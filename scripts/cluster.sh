#!/usr/bin/env bash
# A local cluster on loopback: three NATS servers (one JetStream cluster) and three jobstore
# instances on one replicated log. For trying it out and for benchmarks; tests start their own.
#
#   scripts/cluster.sh start [DIR (./cluster)]   # NATS on 4222-4224, jobstore on 8001-8003
#   scripts/cluster.sh stop  [DIR]
#
# Every process is started in the background with its PID in DIR/*.pid and its log in DIR/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-start}
dir=$(realpath -m "${2:-./cluster}")
binary=${JOBSTORE_BINARY:-build/cli/jobstore}

# SIGTERM to each, then waits until every one has exited (jobstore first: it hands its lease on).
stop_all() {
  local pids=()
  for pidfile in "$dir"/jobstore*.pid "$dir"/nats*.pid; do
    [ -e "$pidfile" ] || continue
    pids+=("$(cat "$pidfile")")
    kill "${pids[-1]}" 2>/dev/null || true
    rm -f "$pidfile"
  done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
}

case "$cmd" in
  stop) stop_all; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac

command -v nats-server >/dev/null || { echo "nats-server is missing: scripts/setup.sh installs it" >&2; exit 1; }
[ -x "$binary" ] || { echo "$binary is missing: build first (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$dir"
urls=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
for i in 1 2 3; do
  cat > "$dir/nats$i.conf" <<CONF
server_name: n$i
host: 127.0.0.1
port: $((4221 + i))
jetstream { store_dir: "$dir/nats$i" }
cluster {
  name: jobstore
  listen: 127.0.0.1:$((6221 + i))
  routes: [nats-route://127.0.0.1:6222, nats-route://127.0.0.1:6223, nats-route://127.0.0.1:6224]
}
CONF
  nats-server -c "$dir/nats$i.conf" > "$dir/nats$i.log" 2>&1 &
  echo $! > "$dir/nats$i.pid"
done
for port in 4222 4223 4224; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
# Each instance waits (up to 30 s) for JetStream to elect its leader before it opens the stream.
for i in 1 2 3; do
  "$binary" serve --data-dir "$dir/jobstore$i" --listen 127.0.0.1:$((8000 + i)) --nats "$urls" \
    > "$dir/jobstore$i.log" 2>&1 &
  echo $! > "$dir/jobstore$i.pid"
done
for i in 1 2 3; do
  for _ in $(seq 1 400); do
    curl -fs "http://127.0.0.1:$((8000 + i))/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/jobstore$i.pid")" 2>/dev/null || break
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$((8000 + i))/readyz" >/dev/null 2>&1 || {
    echo "jobstore$i is not ready; its log ($dir/jobstore$i.log) ends with:" >&2
    tail -5 "$dir/jobstore$i.log" >&2
    stop_all
    exit 1
  }
done
echo "cluster up: jobstore on http://127.0.0.1:8001 8002 8003, NATS on $urls (logs in $dir)"
