#!/usr/bin/env bash
# The docs site with its figures. The committed notebooks carry no outputs (small diffs, no figure older than
# its code), so the site is built from a run: the notebooks are executed into a copy (nbdev-test --save: slow and
# `eval: false` cells stay unrun, as in the tests), the copy is processed for Quarto, and the pages are checked:
# the data and training pages must show figures, the export page its export report.
# Usage: tools/docs.sh [--render] [--file-glob GLOB]
#   --render      also render the site into _docs/ with nbdev-docs (needs Quarto: the docs workflow has it)
#   --file-glob   run and check only the notebooks matching GLOB (e.g. 01_data.ipynb)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
render=0; glob=()
while [ $# -gt 0 ]; do
  case "$1" in
    --render) render=1 ;;
    --file-glob) glob=(--file-glob "$2"); shift ;;
    *) echo "unknown option $1 (usage: tools/docs.sh [--render] [--file-glob GLOB])" >&2; exit 2 ;;
  esac; shift
done
export WANDB_MODE=offline WANDB_SILENT=true DVC_NO_ANALYTICS=1
copy=_nbs_run  # a sibling of nbs/, so the notebooks' relative paths (../models, ../data) mean the same there
rm -rf "$copy" _proc && cp -r nbs "$copy"
echo "=== running the notebooks into $copy/"
$BIN/nbdev-test "$copy" --save --n-workers 2 "${glob[@]}"
echo "=== processing $copy/ for the site"
if [ $render = 1 ]; then $BIN/nbdev-docs --path "$copy" "${glob[@]}"; else $BIN/nbdev-proc-nbs --path "$copy" "${glob[@]}"; fi
$BIN/python - "${glob[@]}" <<'EOF'
import fnmatch, json, sys
from pathlib import Path
glob = sys.argv[2] if len(sys.argv) > 2 else '*'
need = {'01_data': 'image/png', '03_train': 'image/png', '04_export': 'text/plain'}  # page: an output it must show
found = {}
for page, kind in need.items():
    if not fnmatch.fnmatch(f'{page}.ipynb', glob): continue
    outs = [o for c in json.loads(Path(f'_proc/{page}.ipynb').read_text())['cells'] for o in c.get('outputs', [])]
    found[page] = sum(kind in o.get('data', {}) or (kind == 'text/plain' and o.get('output_type') == 'stream') for o in outs)
print('outputs the site will show:', found)
empty = [p for p, n in found.items() if n == 0]
if empty: sys.exit(f'nothing to show on {empty}: the site would carry these pages without their figures')
EOF
