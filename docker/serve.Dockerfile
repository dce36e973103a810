# syntax=docker/dockerfile:1
# Serving image: onnxruntime + LitServe only (the package without extras: no torch, no fastai).
#   docker build -f docker/serve.Dockerfile -t captcha-nb-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/models/default:/models:ro" -v captcha-data:/data captcha-nb-serve
# The model is read from /models/model.onnx (mount a folder written by captcha-export) and the prediction log
# goes to /data/predictions.jsonl (a volume owned by the image's user, uid 10001). Other options:
#   docker run ... captcha-nb-serve captcha-serve --model /models/model.onnx --model /models/captcha.onnx \
#       --host 0.0.0.0 --port 8000 --prediction-log /data/predictions.jsonl --workers 2
# CAPTCHA_API_KEY=secret (docker run -e) makes every endpoint but / and /health require X-API-Key.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY captcha_nb ./captcha_nb
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "import importlib.util as u; bad = [m for m in ('torch', 'fastai', 'timm') if u.find_spec(m)]; assert not bad, bad" \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin captcha \
    && mkdir -p /models /data \
    && chown captcha:captcha /data

WORKDIR /home/captcha
USER 10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["captcha-serve", "--model", "/models/model.onnx", "--host", "0.0.0.0", "--port", "8000", "--prediction-log", "/data/predictions.jsonl"]
