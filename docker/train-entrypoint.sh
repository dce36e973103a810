#!/usr/bin/env bash
# Entry point of docker/train.Dockerfile: run the papermill training notebook with out_dir=/out, then export ONNX.
#   docker run --rm -v "$PWD/out:/out" IMAGE [papermill args, e.g. -p task char -p n_synth 20000 -p epochs 8]
#   docker run --rm IMAGE --help       this message;   docker run --rm -it IMAGE bash   any other command
# Environment: OUT_DIR (default /out), EXPORT=0 to skip captcha-export, WANDB_MODE (default offline).
set -euo pipefail

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*|"") ;;
  *) exec "$@" ;;  # a command instead of papermill arguments: captcha-eval, bash, ...
esac
cd /app

out="${OUT_DIR:-/out}"
if ! mkdir -p "$out" 2>/dev/null || [ ! -w "$out" ]; then
  echo "train: $out is not writable by uid $(id -u)." >&2
  echo "Mount a folder you own and run as yourself: docker run -v \"\$PWD/out:$out\" --user \"\$(id -u):\$(id -g)\" ..." >&2
  exit 2
fi
# An arbitrary --user has no home directory: matplotlib, wandb and torch want a writable one.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME}" ]; then export HOME=/tmp/home; mkdir -p "$HOME"; fi

echo "train: papermill nbs/03_train.ipynb -> $out/train.ipynb $*"
papermill nbs/03_train.ipynb "$out/train.ipynb" --log-output \
  -p out_dir "$out" -p executed_nb "$out/train.ipynb" -p wandb_mode "${WANDB_MODE:-offline}" "$@"

if [ "${EXPORT:-1}" != 0 ]; then
  captcha-export "$out"
fi
echo "train: done; outputs in $out (serve with: docker run -v \"\$PWD/out:/models:ro\" -p 8000:8000 captcha-nb-serve)"
