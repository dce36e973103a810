#!/usr/bin/env bash
# Train captcha_nb on a fresh Linux VM (Debian or Ubuntu, any cloud) from a clean clone: install, get the data,
# run the papermill training notebook, export ONNX (fp32 + int8) and push the artefacts.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/vm_train.sh [-r REPO_URL] [-b BRANCH] [-d DIR] [-n RUN] [-h] [-- PAPERMILL_ARGS...]

  -r REPO_URL  repository to clone (or $REPO_URL)
  -b BRANCH    branch or tag to train (or $BRANCH; default main)
  -d DIR       where to clone (or $WORKDIR; default ./captcha_nb); an existing clone is updated
  -n RUN       run name: the model goes to DIR/models/RUN (or $RUN; default vm-YYYYmmdd-HHMMSS)
  -h           this message
  PAPERMILL_ARGS  papermill parameters for nbs/03_train.ipynb (paths relative to nbs/); default, the README's
                  default run: -p task char -p synth_dirs data/synth/char -p epochs 5

Environment:
  DVC_REMOTE_URL  s3://, gs://, azure:// or any DVC remote: `dvc pull` the data from it and `dvc push` the model
                  (cloud credentials as the DVC docs say, e.g. AWS_* variables or the VM's service account).
                  Without it the synthetic data is generated (`make data`, deterministic).
  ARTIFACT_URL    gs://BUCKET/PATH or s3://BUCKET/PATH: copy DIR/models/RUN there (gsutil or aws s3 cp).
  N_SYNTH         synthetic images for `make data` (default 12000)
  WANDB_MODE      offline (default), online after `wandb login`, or disabled

Example:
  REPO_URL=https://github.com/captcha-nb/captcha_nb.git ARTIFACT_URL=gs://my-bucket/captcha \
    bash vm_train.sh -n char-e8 -- -p task char -p synth_dirs data/synth/char -p epochs 8
USAGE
}

die() { echo "vm_train: $*" >&2; exit 1; }
log() { echo "=== vm_train: $*"; }

repo_url=${REPO_URL:-}
branch=${BRANCH:-main}
workdir=${WORKDIR:-captcha_nb}
run=${RUN:-vm-$(date -u +%Y%m%d-%H%M%S)}
while getopts ':r:b:d:n:h' opt; do
  case "$opt" in
    r) repo_url=$OPTARG ;;
    b) branch=$OPTARG ;;
    d) workdir=$OPTARG ;;
    n) run=$OPTARG ;;
    h) usage; exit 0 ;;
    :) usage >&2; die "-$OPTARG needs a value" ;;
    *) usage >&2; die "unknown option -$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
if [ $# -gt 0 ]; then train_args=("$@"); else train_args=(-p task char -p synth_dirs data/synth/char -p epochs 5); fi
[[ "$run" =~ ^[A-Za-z0-9._-]+$ ]] || die "run name '$run' may only hold letters, digits, '.', '_' and '-'"

export DEBIAN_FRONTEND=noninteractive DVC_NO_ANALYTICS=1 WANDB_MODE=${WANDB_MODE:-offline} WANDB_SILENT=true
# No GPU: take torch's CPU build (the pinned torch==2.14.1 resolves to 2.14.1+cpu, without the CUDA libraries).
if ! command -v nvidia-smi >/dev/null 2>&1; then
  export PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}
fi

log "system packages"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
need=()
for pkg in python3-venv make git; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "install ${need[*]} (no apt-get here)"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "needs Python >= 3.11 (found $(python3 -V 2>&1))"

log "source: ${workdir}"
if [ -d "$workdir/.git" ]; then
  git -C "$workdir" fetch -q origin "$branch"
  git -C "$workdir" checkout -q FETCH_HEAD
elif [ -n "$repo_url" ]; then
  git clone -q --branch "$branch" "$repo_url" "$workdir"
else
  usage >&2; die "give the repository: -r REPO_URL or REPO_URL=..."
fi
cd "$workdir"
log "commit $(git rev-parse --short HEAD)"

log "install (make install)"
make install
bin=.venv/bin

if [ -n "${DVC_REMOTE_URL:-}" ]; then
  case "$DVC_REMOTE_URL" in
    s3://*) extra=s3 ;; gs://*) extra=gs ;; azure://*) extra=azure ;; *) extra="" ;;
  esac
  if [ -n "$extra" ]; then $bin/python -m pip install -q -c constraints.txt "dvc[$extra]"; fi
  log "data: dvc pull from $DVC_REMOTE_URL"
  $bin/dvc remote add -f -d cloud "$DVC_REMOTE_URL"
  $bin/dvc pull
fi
if [ ! -d data/synth/char ]; then
  log "data: make data N_SYNTH=${N_SYNTH:-12000}"
  make data N_SYNTH="${N_SYNTH:-12000}"
fi

out="models/$run"
mkdir -p "$out"
log "train: papermill nbs/03_train.ipynb -> $out (${train_args[*]})"
$bin/papermill nbs/03_train.ipynb "$out/train.ipynb" --log-output \
  -p out_dir "$out" -p executed_nb "$out/train.ipynb" -p wandb_mode "$WANDB_MODE" "${train_args[@]}"

log "export: captcha-export $out"
$bin/captcha-export "$out"

pushed=0
if [ -n "${DVC_REMOTE_URL:-}" ]; then
  # models/ is git-ignored, so DVC refuses a models/RUN.dvc file: track a copy under model-registry/ instead.
  mkdir -p model-registry
  log "push: dvc add $out -> model-registry/$run, dvc push"
  $bin/dvc add "$out" -o "model-registry/$run"
  $bin/dvc push "model-registry/$run.dvc"
  echo "vm_train: commit model-registry/$run.dvc and model-registry/.gitignore to share the model (dvc pull restores it)"
  pushed=1
fi
if [ -n "${ARTIFACT_URL:-}" ]; then
  dest="${ARTIFACT_URL%/}/$run"
  log "push: $out -> $dest"
  case "$ARTIFACT_URL" in
    gs://*) command -v gsutil >/dev/null 2>&1 || die "gsutil not found (install the Google Cloud CLI)"
            gsutil -m cp -r "$out/." "$dest/" ;;
    s3://*) command -v aws >/dev/null 2>&1 || die "aws not found (install the AWS CLI)"
            aws s3 cp --recursive "$out" "$dest" ;;
    *) die "ARTIFACT_URL must start with gs:// or s3:// (got $ARTIFACT_URL)" ;;
  esac
  pushed=1
fi
[ "$pushed" = 1 ] || echo "vm_train: no DVC_REMOTE_URL or ARTIFACT_URL: the artefacts stay in $PWD/$out"
log "done: $PWD/$out (model.onnx, model.int8.onnx, metrics.json, train.ipynb)"
