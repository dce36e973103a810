#!/usr/bin/env bash
# Run one stage of `make run` and say how long it took: tools/timed.sh NAME COMMAND...
# Each stage's seconds are appended to runs/stages.tsv; `tools/timed.sh --summary` prints them and the total.
set -uo pipefail
log=runs/stages.tsv
mkdir -p runs
if [ "${1:-}" = "--summary" ]; then
  awk -F'\t' '{printf "  %-28s %5d s\n", $1, $2; t += $2} END {printf "  %-28s %5d s (%.1f min)\n", "total", t, t / 60}' "$log"
  exit 0
fi
if [ "${1:-}" = "--reset" ]; then : > "$log"; exit 0; fi
name="$1"; shift
echo "=== $name"
start=$(date +%s)
"$@"; rc=$?
took=$(( $(date +%s) - start ))
printf '%s\t%d\n' "$name" "$took" >> "$log"
echo "=== $name: ${took} s"
exit $rc
