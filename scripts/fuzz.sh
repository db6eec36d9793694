#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and runs each one for SECONDS
# (default 30) over its seed corpus in fuzz/corpus/<target>/, as many side by side as there are
# cores. New inputs the fuzzer finds go to <build dir>/corpus/<target>/ (the seeds in the
# repository stay as they are). Any crash, leak or sanitizer report fails the run and leaves the
# input in the build dir (crash-*, leak-*).
#   [JOBSTORE_FUZZ_BUILD_DIR=DIR] scripts/fuzz.sh [SECONDS] [TARGET...]
# With JOBSTORE_FUZZ_BUILD_DIR, a build dir already configured with -DJOBSTORE_FUZZ=ON (the test
# stage's build-asan/, which keeps its tests) is built and used instead of build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_mutation_requests fuzz_record_decoding fuzz_merge_patch fuzz_time_parsing fuzz_request_head)

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/setup.sh installs it)" >&2; exit 1; }
build=${JOBSTORE_FUZZ_BUILD_DIR:-build-fuzz}
if [ -z "${JOBSTORE_FUZZ_BUILD_DIR:-}" ]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DJOBSTORE_FUZZ=ON -DJOBSTORE_BUILD_TESTS=OFF -DJOBSTORE_BUILD_BENCH=OFF >/dev/null
else
  grep -q '^JOBSTORE_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null ||
    { echo "fuzz.sh: $build is not configured with -DJOBSTORE_FUZZ=ON" >&2; exit 1; }
fi
cmake --build "$build" --target fuzzers -j"$(nproc)"

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# One libFuzzer process uses one core: the targets run side by side, as many at once as there
# are cores, each with its own log.
fuzz_one() {  # fuzz_one TARGET: exit code of the run
  mkdir -p "$build/corpus/$1"
  (cd "$build" && "fuzz/$1" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
       -print_final_stats=1 "corpus/$1" "../fuzz/corpus/$1" >"$1.log" 2>&1)
}
failed=()
for ((i = 0; i < ${#targets[@]}; i += $(nproc))); do
  batch=("${targets[@]:i:$(nproc)}")
  pids=()
  for t in "${batch[@]}"; do
    echo "== $t for ${seconds}s =="
    fuzz_one "$t" &
    pids+=($!)
  done
  for k in "${!batch[@]}"; do
    t=${batch[$k]}
    if wait "${pids[$k]}"; then
      echo "-- $t:"
      grep -E "^stat::(number_of_executed_units|new_units_added)" "$build/$t.log"
    else
      grep -v "^#[0-9]" "$build/$t.log" | tail -40 >&2
      echo "fuzz.sh: $t FAILED (the input is in $build/crash-* or leak-*; log: $build/$t.log)" >&2
      failed+=("$t")
    fi
  done
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz.sh: failed: ${failed[*]}" >&2; exit 1; }
echo "fuzz.sh: every target ran clean"
