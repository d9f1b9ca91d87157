#!/usr/bin/env bash
# make sanitize: (1) clang ASan+UBSan build running the unit and integration tests (not `slow`:
# the allocator fix does not apply under ASan) and 60 s of each libFuzzer target; (2) a clang TSan
# build of core/ alone (no protobuf, gRPC or OpenCV) with -Werror=thread-safety running its tests;
# (3) clang-tidy on the .cc files changed in the last 20 commits, time-boxed, reported.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

stage() { echo "--- sanitize: $*"; }

stage "asan: configure + build"
cmake --preset asan
cmake --build --preset asan
stage "asan: ctest -L 'unit|integration' -LE slow"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan -L 'unit|integration' -LE slow -j2 --output-on-failure

stage "asan: fuzzers, ${FUZZ_SECONDS} s each"
for f in build/asan/tests/fuzz/*_fuzzer; do
  name=$(basename "$f" _fuzzer)
  work=build/asan/fuzz-corpus/$name
  mkdir -p "$work"
  echo "fuzzing $name"
  regress=tests/fuzz/regressions/$name; [[ -d $regress ]] || regress=
  OPENCV_LOG_LEVEL=SILENT LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp "$f" "$work" "tests/fuzz/corpus/$name" $regress \
    -artifact_prefix="build/asan/fuzz-artifacts-$name-" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 2>&1 | tail -n 12
done

stage "clang-tidy: .cc files changed in the last 20 commits (time box ${TIDY_SECONDS:-60} s)"
# Reported, not gating: the warnings go to build/asan/clang-tidy.txt and a count is printed.
tidy_end=$(( $(date +%s) + ${TIDY_SECONDS:-60} ))
base=$(git rev-list --max-count=21 HEAD 2>/dev/null | tail -n 1)
: > build/asan/clang-tidy.txt
checked=0 skipped=0
for f in $(git diff --name-only "$base" HEAD -- '*.cc' 2>/dev/null | sort -u); do
  [[ -f $f ]] || continue
  grep -q "\"file\": \"$PWD/$f\"" build/asan/compile_commands.json || { skipped=$((skipped + 1)); continue; }
  left=$(( tidy_end - $(date +%s) ))
  if (( left <= 0 )); then skipped=$((skipped + 1)); continue; fi
  timeout "$left" clang-tidy -p build/asan --quiet "$f" >> build/asan/clang-tidy.txt 2>/dev/null || true
  checked=$((checked + 1))
done
echo "clang-tidy: $checked files checked, $skipped skipped (time box or not built), $(grep -c 'warning:' build/asan/clang-tidy.txt || true) warnings -> build/asan/clang-tidy.txt"

stage "tsan: configure + build (core only, -Werror=thread-safety)"
cmake --preset tsan
cmake --build --preset tsan
stage "tsan: ctest"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/sanitizers/tsan.supp" \
  ctest --test-dir build/tsan -j2 --output-on-failure
echo "--- sanitize: all passed"
