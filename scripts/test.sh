#!/usr/bin/env bash
# Builds jobstore and runs every test suite. Exits non-zero on any failure or missing piece.
#   scripts/test.sh [--sanitizers]
# With --sanitizers (and always under CI), the C++ suites also run in an ASan+UBSan build
# (build-asan/), where any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=0
[ "${1:-}" = "--sanitizers" ] && sanitizers=1
[ -n "${CI:-}" ] && sanitizers=1

scripts/setup.sh build
# The dashboard's browser tests drive Debian's Chromium with playwright-core, pinned by the lock file.
npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error
ctest --test-dir build --output-on-failure -j2 --timeout 600

if [ "$sanitizers" = 1 ]; then
  echo "== the C++ suites again under AddressSanitizer + UndefinedBehaviorSanitizer =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DJOBSTORE_SANITIZE=address -DJOBSTORE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  # Leaks are checked in the in-process suites; server processes end by signal in many tests.
  ASAN_OPTIONS=detect_leaks=1 build-asan/tests/jobstore_unit_tests --gtest_brief=1
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 \
        -E '^(python_client|dashboard_browser)$'
fi
