#!/usr/bin/env bash
# The long fuzz runs of docs/reliability.md: each libFuzzer target of the asan build for RUNS
# executions (default 1 000 000; at most MAX_SECONDS each), two at a time, over a copy of the seed
# corpus and the regression inputs, with -print_final_stats=1; prints one table row per target
# (executions, seconds, exec/s, coverage, features, corpus, peak RSS, result).
#   scripts/fuzz-long.sh [BUILD_DIR]     (default build/asan; `make sanitize` builds it)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/asan}
runs=${RUNS:-1000000}
max=${MAX_SECONDS:-1200}
out=$build/fuzz-long
mkdir -p "$out"
export OPENCV_LOG_LEVEL=SILENT
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp
run() {
  local f=$1 name
  name=$(basename "$f" _fuzzer)
  rm -rf "$out/corpus-$name" && mkdir -p "$out/corpus-$name"
  local regress=tests/fuzz/regressions/$name; [[ -d $regress ]] || regress=
  "$f" "$out/corpus-$name" "tests/fuzz/corpus/$name" $regress -runs="$runs" \
    -max_total_time="$max" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$out/crash-$name-" > "$out/$name.log" 2>&1
  echo $? > "$out/$name.rc"
}
targets=("$build"/tests/fuzz/*_fuzzer)
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [[ -n ${targets[i + 1]:-} ]] && run "${targets[i + 1]}" &
  wait
done
echo "| target | executions | seconds | exec/s | cov (edges) | ft (features) | corpus | peak RSS MB | result |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in "${targets[@]}"; do
  name=$(basename "$f" _fuzzer)
  log=$out/$name.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  secs=$(awk '/Done [0-9]+ runs in/ {print $(NF-1)}' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  rc=$(cat "$out/$name.rc")
  result="ok"
  [[ $rc != 0 ]] && result="FAILED (exit $rc; $out/$name.log)"
  echo "| $name | $execs | ${secs:-?} | $rate | $cov | $ft | $corp | $rss | $result |"
done
