# syntax=docker/dockerfile:1
# The serving image with one registered model inside (the registry workflow builds it when a version reaches prod):
#   captcha-registry fetch reader#prod --dest model
#   docker build -f docker/model.Dockerfile --build-arg BASE=captcha-nb-serve -t captcha-nb-serve:reader-prod model
# The build context is the fetched folder (model.onnx, metrics.json, reference.csv, registry.json): /info and
# /metrics then say which registered version is serving.
ARG BASE=captcha-nb-serve
FROM ${BASE}
COPY --chown=10001:10001 . /models/
