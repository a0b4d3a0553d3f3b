#!/usr/bin/env bash
# The loaded-machine determinism check (issue 18): run the whole suite N times (default 3) while a CPU burner
# keeps every core busy, and print each run's pytest summary line. Any failure fails the script.
#   bash scripts/loaded_runs.sh [N] [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"; shift || true
PYTHON="${PYTHON:-python3}"
LOGS="${LOGS:-$(mktemp -d)}"
burn() { "$PYTHON" -c "while True: pass" & }
status=0
for run in $(seq 1 "$RUNS"); do
  pids=()
  for _ in $(seq 1 "$(nproc)"); do burn; pids+=($!); done
  start=$(date +%s)
  "$PYTHON" -m pytest -p no:cacheprovider -q "$@" >"$LOGS/run$run.log" 2>&1
  rc=$?
  kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
  echo "run $run/$RUNS (load: $(nproc) busy loops): exit $rc in $(( $(date +%s) - start )) s: $(tail -1 "$LOGS/run$run.log")"
  [ "$rc" = 0 ] || status=1
done
echo "logs in $LOGS"
exit $status
