# captcha_nb: every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
PY    := $(BIN)/python
STAMP := $(VENV)/.installed
PIP_VERSION := 26.3

# Main job defaults (override: make run N_SYNTH=5000 EPOCHS=2)
N_SYNTH ?= 12000
EPOCHS  ?= 5
MODEL_DIR ?= models/default
PORT ?= 8000

export DVC_NO_ANALYTICS=1
export WANDB_MODE ?= offline
export WANDB_SILENT=true

.PHONY: help install run data train export serve test lab clean-install readme sync

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: $(STAMP)  ## create .venv with the pinned set, the package (editable, dev extras) and the python3 kernel
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (captcha_nb)" >/dev/null
	touch $@

run: install data train export serve  ## the main job: synthetic data -> training -> ONNX -> LitServe on 127.0.0.1:$(PORT)

data: install  ## synthetic training and evaluation crops into data/ (deterministic; tracked by data.dvc)
	$(BIN)/captcha-data synth --n $(N_SYNTH) --task char --dest data/synth/char --seed 0 --quiet
	$(BIN)/captcha-data synth --n 2000 --task char --dest data/synth/eval --seed 1 --quiet

train: install  ## train the default character model with papermill (writes $(MODEL_DIR))
	mkdir -p $(MODEL_DIR)
	$(BIN)/papermill nbs/03_train.ipynb $(MODEL_DIR)/train.ipynb --cwd nbs -p task char -p synth_dirs ../data/synth/char \
	  -p n_synth 0 -p epochs $(EPOCHS) -p out_dir ../$(MODEL_DIR) -p wandb_mode $(WANDB_MODE) -p executed_nb $(MODEL_DIR)/train.ipynb

export: install  ## ONNX fp32 + int8 next to the Learner
	$(BIN)/captcha-export $(MODEL_DIR)

serve: install  ## serve $(MODEL_DIR)/model.onnx on 127.0.0.1:$(PORT)
	$(BIN)/captcha-serve --model $(MODEL_DIR)/model.onnx --host 127.0.0.1 --port $(PORT)

test: install  ## every test: nbdev-test, pytest, ruff, nbdev sync, README sync, coverage
	tools/test.sh

lab: install  ## JupyterLab on the project kernel
	$(BIN)/jupyter lab --notebook-dir=nbs

sync: install  ## export notebooks to captcha_nb/, clean them, regenerate README.md
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(PY) tools/make_readme.py

readme: install  ## README.md from nbs/index.ipynb
	$(PY) tools/make_readme.py

clean-install:  ## remove the virtual environment
	rm -rf $(VENV)
