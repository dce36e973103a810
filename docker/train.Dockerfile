# syntax=docker/dockerfile:1
# Training image: CPU torch + the package with its train extras, pinned by constraints.txt.
# It runs the papermill training notebook (nbs/03_train.ipynb) and writes everything to /out:
#   docker build -f docker/train.Dockerfile -t captcha-nb-train .
#   mkdir -p out && docker run --rm -v "$PWD/out:/out" --user "$(id -u):$(id -g)" captcha-nb-train \
#       -p task char -p n_synth 20000 -p epochs 8
# Arguments are papermill's (-p NAME VALUE ...). Paths in parameters are relative to /app/nbs:
# mount data read-only (-v /path/to/real:/data:ro) and pass -p real_dirs /data. EXPORT=0 skips captcha-export.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DVC_NO_ANALYTICS=1 \
    WANDB_MODE=offline \
    WANDB_SILENT=true \
    MPLBACKEND=Agg

# Debian point releases drop old package versions, so pinning them breaks rebuilds; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, in its own layer: it is the large download and changes only with constraints.txt.
# The CPU index's 2.14.1+cpu wheels satisfy constraints.txt's ==2.14.1 and pull no CUDA libraries.
COPY constraints.txt ./
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt torch torchvision

COPY . .
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt -e '.[train]' \
    && python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (captcha_nb)" \
    && python -c "import torch, fastai, timm, captcha_nb.train; assert torch.version.cuda is None, 'not the CPU build'" \
    && useradd --create-home --uid 1000 --shell /bin/bash captcha \
    && mkdir -p /out && chown captcha:captcha /out \
    && chmod 0755 docker/train-entrypoint.sh

USER 1000
VOLUME ["/out"]
ENTRYPOINT ["/app/docker/train-entrypoint.sh"]
CMD []
