#!/usr/bin/env bash
# Builds jobstore and runs every test suite. Exits non-zero on any failure or missing piece.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ctest --test-dir build --output-on-failure -j2 --timeout 300
