#!/usr/bin/env bash
# End-to-end HTTP figures, jobstore beside the bare-httplib ceiling, in one run.
#   bench/run_http.sh [SECONDS (5)] [CONNECTIONS (32)]
# Needs a build in build/. Prints one JSON line per measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-32}
data=$(mktemp -d /tmp/jobstore-bench-http-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$data"' EXIT

build/bench/bare_httplib_server 18101 >/dev/null &
build/cli/jobstore serve --data-dir "$data" --listen 127.0.0.1:18102 2>/dev/null &
for port in 18101 18102; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/v1/jobs/x" -o /dev/null && break
    curl -s "http://127.0.0.1:$port/healthz" -o /dev/null && break; sleep 0.1; done
done
for mode in create get; do
  echo "bare_httplib $(build/bench/http_load --port 18101 --mode $mode --connections "$conns" --seconds "$secs")"
  echo "jobstore     $(build/bench/http_load --port 18102 --mode $mode --connections "$conns" --seconds "$secs")"
done
echo "jobstore     $(build/bench/http_load --port 18102 --mode lifecycle --connections "$conns" --seconds "$secs")"
