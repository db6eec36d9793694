#!/usr/bin/env bash
# Builds jobstore, checks its locking with clang's thread-safety analysis (build-tsa/; with
# sanitizers, in build-asan/), and runs every test suite. Exits non-zero on any failure or
# missing piece.
#   scripts/test.sh [--sanitizers]
# With --sanitizers (and always under CI), three more stages run, each failing on any report:
#   - every C++ suite again in a clang ASan+UBSan build (build-asan/), which also builds the
#     libFuzzer targets (one instrumented build serves both: CI time);
#   - the C++ suites (store, background, server, HTTP, crash rounds, replication and part of the
#     cluster suite: the concurrency) in a TSan build (build-tsan/), the server binary they
#     start included;
#   - each libFuzzer target for JOBSTORE_FUZZ_SECONDS (default 20) over its seed corpus.
# The sanitizer builds use -O1 and line tables only: enough for every report's stack, and half
# the compile time of -O2 -g (gcc's UBSan at -O2 -g took 94 s on the store's largest file, clang
# at -O1 22 s). Each stage prints the seconds since the start.
# The builds no suite of the normal stage needs (the thread-safety analysis and the ASan build)
# run at nice 19 beside that stage: its suites wait on timers, elections and child
# processes and left 60 % of two cores idle (vmstat over `ctest -j2`, 416 s), and nice 19 gives
# the builds only what the suites leave. The same way the TSan build runs beside the ASan suites.
# Their output goes to build/side-NAME.log, printed when they are waited for.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=0
[ "${1:-}" = "--sanitizers" ] && sanitizers=1
[ -n "${CI:-}" ] && sanitizers=1

stage() { echo "== $* (at ${SECONDS}s) =="; }
stage "build"
scripts/setup.sh build
# Side builds: at nice 19 in the background, one chain at a time, output to build/side-NAME.log.
# Job control gives each chain its own process group, so that an early exit stops all of it.
side_start() {  # side_start NAME FUNCTION
  side_name=$1
  set -m
  ( set -e; renice -n 19 -p "$BASHPID" >/dev/null; "$2" ) >"build/side-$1.log" 2>&1 &
  side_pid=$!
  set +m
  trap 'kill -- -"$side_pid" 2>/dev/null || true' EXIT
}
side_wait() {
  stage "waiting for the side build: $side_name"
  # Nothing of ours runs beside it now: back to the normal priority, or on a machine busy with
  # other work a build at nice 19 gets almost no CPU (weight 15 against 1,024 per busy process).
  # Raising a priority needs root (as in CI); elsewhere it stays at nice 19.
  renice -n 0 -g "$side_pid" >/dev/null 2>&1 || true
  if ! wait "$side_pid"; then
    tail -60 "build/side-$side_name.log" >&2
    echo "test.sh: the side build '$side_name' failed (all of its output: build/side-$side_name.log)" >&2
    exit 1
  fi
  trap - EXIT
  cat "build/side-$side_name.log"
}
# Beside the normal suites: the thread-safety analysis; with sanitizers, the ASan build, which
# then carries the analysis itself (clang either way: one build less on the critical path).
tsa_and_asan_builds() {
  if [ "$sanitizers" = 0 ]; then
    cmake -S . -B build-tsa -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
          -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DJOBSTORE_THREAD_SAFETY=ON -DJOBSTORE_BUILD_TESTS=OFF \
          -DJOBSTORE_BUILD_BENCH=OFF >/dev/null
    cmake --build build-tsa -j"$(nproc)" --target jobstore
    echo "side build: the thread-safety analysis is clean (at ${SECONDS}s)"
    return 0
  fi
  # JOBSTORE_FUZZ: clang, ASan+UBSan and fuzzer coverage in every library, and the fuzz targets.
  cmake -S . -B build-asan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG" \
        -DJOBSTORE_FUZZ=ON -DJOBSTORE_THREAD_SAFETY=ON -DJOBSTORE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  echo "side build: ASan+UBSan built, and the thread-safety analysis is clean (at ${SECONDS}s)"
}
# Beside the ASan suites: the TSan build.
tsan_build() {
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DJOBSTORE_SANITIZE=thread -DJOBSTORE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-tsan -j"$(nproc)" --target jobstore jobstore_unit_tests jobstore_server_tests \
        jobstore_http_tests jobstore_replication_tests jobstore_cluster_tests
  echo "side build: TSan built (at ${SECONDS}s)"
}
stage "side build at nice 19: clang's thread-safety analysis (every ABSL_GUARDED_BY member, core/mutex.h)$([ "$sanitizers" = 1 ] && echo ', in the ASan+UBSan build')"
side_start tsa-asan tsa_and_asan_builds
# The dashboard's browser tests drive Debian's Chromium with playwright-core, pinned by the lock file.
npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error
# The Node client's .d.ts is checked with TypeScript's compiler, pinned by its lock file.
npm ci --prefix tests/node_types --no-audit --no-fund --loglevel=error
stage "every suite"
ctest --test-dir build --output-on-failure -j2 --timeout 600
side_wait

if [ "$sanitizers" = 1 ]; then
  stage "side build at nice 19: TSan"
  side_start tsan tsan_build
  stage "the C++ suites again under AddressSanitizer + UndefinedBehaviorSanitizer"
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  # Leaks are checked in the in-process unit suite (its tests set detect_leaks=1 themselves in
  # this build, tests/CMakeLists.txt); server processes end by signal in many tests.
  # The cluster suite's failure rounds (about 100 s of SIGKILLs and elections) and the end-to-end
  # suites' second run on three instances ran in the normal stage; here the cluster suite's other
  # tests run, to keep the whole of CI well under 45 minutes.
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 \
        -E '^(python_client|python_client_types|prometheus_rules|debian_package|node_client|node_client_types|dashboard_browser|three_instances\..*|ClusterTest\.(WriterSigkill|NatsServerSigkill|WithNatsDown|ALiveWorkers).*)$'

  side_wait
  stage "the unit, server and HTTP suites under ThreadSanitizer"
  reports=$(mktemp -d)
  # Reports go to files: a server process killed by the test would take its report with it.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$reports/tsan suppressions=$PWD/tests/tsan.supp"
  # With halt_on_error a race ends the process that saw it, so a test fails too; the reports
  # are printed either way before the verdict.
  # Two lanes side by side (the server suite alone is about as long as the other four), each
  # printing its output when it ends so the two do not interleave.
  tsan_lane() {  # tsan_lane NAME COMMAND...: runs it, output to $reports/NAME.out, exit code kept
    local rc=0
    "${@:2}" >"$reports/$1.out" 2>&1 || rc=$?
    echo "$rc" >"$reports/$1.rc"
  }
  tsan_lane server build-tsan/tests/jobstore_server_tests --gtest_brief=1 &
  lane_server=$!
  # Several instances: the writes through followers (and their retries across a writer SIGKILL),
  # the cross-instance wake and the fence (the crash rounds run in the normal and ASan stages;
  # under TSan they would take minutes).
  tsan_lane others sh -c 'for suite in jobstore_unit_tests jobstore_http_tests jobstore_replication_tests; do
                            build-tsan/tests/$suite --gtest_brief=1 || exit 1
                          done
                          build-tsan/tests/jobstore_cluster_tests --gtest_brief=1 \
                              --gtest_filter="*AnyInstance*:*Hitl*:*Paused*:*ForwardedWrites*"'
  wait "$lane_server"
  tsan_failed=0
  for lane in others server; do
    echo "-- ThreadSanitizer lane: $lane --"
    cat "$reports/$lane.out"
    [ "$(cat "$reports/$lane.rc")" = 0 ] || tsan_failed=1
  done
  unset TSAN_OPTIONS
  if compgen -G "$reports/tsan*" >/dev/null; then
    cat "$reports"/tsan* >&2
    echo "test.sh: ThreadSanitizer reported the races above" >&2
    exit 1
  fi
  [ "$tsan_failed" = 0 ] || { echo "test.sh: a suite failed under ThreadSanitizer" >&2; exit 1; }

  stage "the libFuzzer targets over their seed corpus"
  JOBSTORE_FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh "${JOBSTORE_FUZZ_SECONDS:-20}"
fi
stage "done"
