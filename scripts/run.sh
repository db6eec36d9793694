#!/usr/bin/env bash
# Builds jobstore and starts the server on ./data (127.0.0.1:8000). Extra args go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
exec build/cli/jobstore serve --data-dir ./data "$@"
