#!/usr/bin/env bash
# The fault and load tests of issue 8 with their figures recorded (docs/reliability.md):
#   bench/run_reliability.sh [--soak]      (after `make build`; --soak adds the 10-minute soak)
# Writes out/reliability/<test>.json and prints the tables docs/reliability.md quotes, including
# the overload test's measured p99 against its queueing bound.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release
out=out/reliability
mkdir -p "$out"
tests=(overload sigterm cancel reload)
[[ ${1:-} == --soak ]] && tests+=(soak)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(date -u +%F)"
for t in "${tests[@]}"; do
  /usr/bin/python3 tests/reliability/reliability_test.py "$t" --bin "$bin" \
    --work "$bin/tests/reliability/run-$t" --report "$out/$t.json" > "$out/$t.log" 2>&1 \
    || { echo "$t FAILED (see $out/$t.log)"; exit 1; }
  echo "$t: passed"
done
/usr/bin/python3 - "$out" "${tests[@]}" <<'PY'
import json, sys
out, tests = sys.argv[1], sys.argv[2:]
r = {t: json.load(open(f"{out}/{t}.json")) for t in tests}
o = r["overload"]
print("\n| burst | requests | s | OK | RESOURCE_EXHAUSTED | accepted p50 / p99 ms | bound ms | p99 ÷ bound | refusal p50 / p99 ms | RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for i, b in enumerate(o["bursts"]):
    rej = b["failed_latency"].get("RESOURCE_EXHAUSTED", {})
    print(f"| {i + 1} | {b['requests']} | {b['seconds']:.1f} | {b['codes'].get('OK', 0)} | "
          f"{b['codes'].get('RESOURCE_EXHAUSTED', 0)} | {b['p50_ms']:.1f} / {b['p99_ms']:.1f} | "
          f"{o['bound_ms']:.1f} | {b['p99_ms'] / o['bound_ms']:.2f} | "
          f"{rej.get('p50_ms', 0):.2f} / {rej.get('p99_ms', 0):.2f} | {o['rss_bytes'][i] / 2**20:.1f} |")
print(f"\ncapacity {o['capacity_rps']:.0f} req/s, offered {o['offered_rps']:.0f} req/s (3x), "
      f"full batch {o['full_batch_ms']:.1f} ms, RSS growth burst 1 -> 2 {o['rss_growth']:.2%}")
s = r["sigterm"]
print(f"\nsigterm: health {' -> '.join(s['health'])}, exit {s['exit_status']} after "
      f"{s['exit_seconds']:.2f} s, load codes {s['load']['codes']}")
c = r["cancel"]
print(f"cancel: client codes {c['client']['codes']}, streams killed {c['streams_killed']}, "
      f"server CANCELLED {c['server_cancelled_requests']:.0f}, dropped as cancelled "
      f"{c['dropped_cancelled']:.0f}, in flight / queued after {c['inflight_after']:.0f} / "
      f"{c['queued_after']:.0f}")
l = r["reload"]
print(f"reload: {l['inflight_at_reload']:.0f} in flight at SIGHUP; kept model {l['kept']['codes']}; "
      f"removed model {l['removed']['codes']}")
if "soak" in r:
    k = r["soak"]
    print(f"\nsoak: capacity {k['capacity_rps']:.0f} req/s, offered {k['rate_rps']:.0f} req/s")
    print("| minute | requests | p50 ms | p99 ms | RSS MiB | codes |\n|---|---|---|---|---|---|")
    for i, w in enumerate(k["windows"]):
        print(f"| {i + 1} | {w['requests']} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} | "
              f"{w['rss_bytes'] / 2**20:.1f} | {w['codes']} |")
    print(f"RSS growth after warm-up: {k['rss_growth_after_warmup']:.2%}")
PY
