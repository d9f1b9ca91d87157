#!/usr/bin/env bash
# make demo (after `make build`): the offline loop on synthetic data.
#   1. invad-datagen writes data/demo (4 categories, MVTec AD layout) unless present;
#   2. invad-train trains one unified model on their normal images into models/demo/<version>/
#      unless models/demo already holds a version (about 7 minutes on 2 cores);
#   3. invad-eval scores the test split and prints the metrics table (report in out/demo-eval/);
#   4. invad-server serves models/ on 127.0.0.1 (free ports), the invad CLI checks its health,
#      lists the models and scores every category's test images through it (JSON lines in
#      out/demo-serve/, overlays of the anomalous ones), then the server is stopped with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release
BIN=$BUILD/tools
DATA=data/demo
MODEL=models/demo
CATEGORIES=${INVAD_DEMO_CATEGORIES:-grid,wood,metal,tile}
BUDGET=${INVAD_DEMO_TIME_BUDGET:-420}

if [[ ! -d $DATA ]]; then
  echo "== demo data -> $DATA"
  $BIN/datagen/invad-datagen --out "$DATA" --seed 1 --train 120 --categories "$CATEGORIES"
fi
if ! ls -d "$MODEL"/[0-9]* >/dev/null 2>&1; then
  echo "== training the demo model -> $MODEL (time budget ${BUDGET} s)"
  $BIN/train/invad-train --data "$DATA" --out "$MODEL" --time_budget "$BUDGET" \
    --description "make demo: unified model on invad-datagen categories $CATEGORIES"
else
  echo "== using the existing demo model $(ls -d "$MODEL"/[0-9]* | sort -V | tail -1)"
fi
echo "== evaluating on the test split"
$BIN/eval/invad-eval --model "$MODEL" --data "$DATA" --out out/demo-eval --progress=false

echo "== serving models/ with invad-server and scoring the demo set with the invad CLI"
OUT=out/demo-serve
rm -rf "$OUT"
mkdir -p "$OUT"
$BUILD/server/invad-server --model_repository=models --grpc_address=127.0.0.1:0 \
  --metrics_address=127.0.0.1:0 2>"$OUT/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
PORT=
for _ in $(seq 1 600); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$OUT/server.log" | head -1)
  [[ -n $PORT ]] && break
  kill -0 $SERVER 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
  sleep 0.1
done
TARGET=--target=127.0.0.1:$PORT
until $BUILD/client/invad health "$TARGET" >/dev/null 2>&1; do
  kill -0 $SERVER 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
  sleep 0.2
done
$BUILD/client/invad health "$TARGET"
$BUILD/client/invad models "$TARGET"
status=0
for c in ${CATEGORIES//,/ }; do
  rc=0
  $BUILD/client/invad score "$DATA/$c/test" "$TARGET" --model=demo --category="$c" --json \
    --overlay_dir="$OUT/overlays/$c" --progress=false >"$OUT/$c.jsonl" || rc=$?
  [[ $rc == 2 ]] && status=2
  /usr/bin/python3 - "$OUT/$c.jsonl" "$c" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
good = [r for r in rows if "/good/" in r["file"]]
bad = [r for r in rows if "/good/" not in r["file"]]
errors = sum("error" in r for r in rows)
flag = lambda rs: sum(r.get("anomalous", False) for r in rs)
print(f"{sys.argv[2]:>8}: {len(rows)} images through the server; flagged {flag(bad)}/{len(bad)} "
      f"defective and {flag(good)}/{len(good)} good; {errors} errors")
PY
done
kill -TERM $SERVER
wait $SERVER
trap - EXIT
echo "== server stopped (log: $OUT/server.log; results and overlays: $OUT/)"
exit $status
