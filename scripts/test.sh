#!/usr/bin/env bash
# Builds jobstore and runs every test suite. Exits non-zero on any failure or missing piece.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
# The dashboard's browser tests drive Debian's Chromium with playwright-core, pinned by the lock file.
npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error
ctest --test-dir build --output-on-failure -j2 --timeout 300
