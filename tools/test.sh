#!/usr/bin/env bash
# Every test, in the order that fails fastest: nbdev sync, README sync, ruff, notebooks (nbdev-test), pytest.
# Line coverage of captcha_nb/ is measured over the notebooks and pytest together (subprocesses included).
# Usage: tools/test.sh [extra pytest args]   (SLOW=1 also runs slow notebook cells and slow tests; TEST_WORKERS=N)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=.venv/bin
export PATH="$PWD/$BIN:$PATH"  # the tools make install puts in the venv (hadolint, captcha-*)
export DVC_NO_ANALYTICS=1 WANDB_MODE=offline WANDB_SILENT=true PYTHONHASHSEED=0
export COVERAGE_RCFILE="$PWD/pyproject.toml"
# notebooks and tests run several at a time: one thread per training or model, or their thread pools fight over the
# cores (measured: at two threads each, the sweep test took 240 s against 34 s alone)
export OMP_NUM_THREADS=1
# one worker more than the cores (at most 6): tests spend a fifth of their time waiting on servers and subprocesses
# (measured on 2 cores, under coverage: pytest 469 s with 3 workers, 495-503 s with 2). TEST_WORKERS=0: one process
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # GNU nproc would answer OMP_NUM_THREADS
workers=${TEST_WORKERS:-$(( cores + 1 < 6 ? cores + 1 : 6 ))}
failed=()
step() { echo; echo "=== $1"; }

step "nbdev sync: nbdev-export and nbdev-clean must leave git clean"
before=$(git status --porcelain -- nbs captcha_nb)
$BIN/nbdev-export && $BIN/nbdev-clean
after=$(git status --porcelain -- nbs captcha_nb)
if [ "$before" != "$after" ]; then
  echo "out of sync: notebooks and captcha_nb/ changed; run 'make sync' and commit"; git status --short -- nbs captcha_nb
  failed+=("nbdev-sync")
fi

step "README.md follows nbs/index.ipynb"
$BIN/python tools/make_readme.py --check || failed+=("readme")

step "ruff"
$BIN/ruff check captcha_nb tests benchmarks tools nbs || failed+=("ruff")

$BIN/coverage erase
step "nbdev-test (notebooks; slow cells skipped unless SLOW=1)"
flags=(); [ "${SLOW:-0}" = 1 ] && flags=(--flags slow)
# every notebook runs alone (the test kit, captcha_nb.testing, makes what one needs), so all run in parallel
$BIN/coverage run $BIN/nbdev-test --n-workers "$(( workers > 0 ? workers : 1 ))" --timing "${flags[@]}" || failed+=("nbdev-test")

step "pytest"
slow=(); [ "${SLOW:-0}" = 1 ] && slow=(--runslow)
$BIN/coverage run -m pytest -n "$workers" --dist worksteal "${slow[@]}" "$@" 2>&1 | tee .pytest.log
[ "${PIPESTATUS[0]}" = 0 ] || failed+=("pytest")

step "coverage of captcha_nb/ (notebooks + pytest)"
$BIN/coverage combine -q >/dev/null 2>&1
$BIN/coverage report --sort=cover | tail -n 15
total=$($BIN/coverage report --format=total 2>/dev/null)

echo
echo "pytest: $(grep -E '^=+ .*(passed|failed|error).* =+$' .pytest.log | tail -1 | tr -d '=' | xargs)"
echo "coverage: ${total}% of captcha_nb/ lines"
rm -f .pytest.log
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "ALL PASSED"
