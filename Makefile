# captcha_nb: every entry point a user needs. `make help` lists them.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
PY    := $(BIN)/python
# the install is redone when pyproject.toml or constraints.txt change in content: nbdev-export rewrites pyproject.toml,
# unchanged, on every run (make test runs it), which a timestamp would take for a change and reinstall
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d" " -f1)
PIP_VERSION := 26.3

# Main job defaults (override: make run N_SYNTH=5000 EPOCHS=2 READER_MINUTES=4). READER_MINUTES=13 against 8: the
# general reader reads 29 % of its synthetic test set against 20 %, and fine-tuning from it 45.0 against 41.5 %
# on receita's validation part, 77.4 against 79.0 % on scheme2's (200 labels; benchmarks/few_shot.py --score-on
# valid; scheme2's 314 images are the noisier comparison); make run stays under 20 min. Minutes train fewer images
# on a slower CPU, and those figures are from the Intel VM with the previous recipe (lr 0.003, no easy images).
# On a 2-core AMD EPYC without AVX-512, 13 minutes are 12 000 images, and that recipe ended on CTC's blank plateau
# (valid loss 3.90, nothing read). lr 0.001 with READER_EASY=0.4 of the images easy (upright, filled, no noise) left it
# there (valid loss 2.99; 2.58 since each epoch validates 512 CAPTCHAs, not 2 316): see 03_train, "Has the reader learnt
# anything?". READER_IMAGES=N trains a fixed N images instead, however long that takes; the run warns when its reader
# reads nothing.
# The reader reads seven views of an image, as every reader does (00_core, "Which text?": the text most probable over
# them; with no labels, 45.3 and 53.3 % of captcha_images_v2's and cloud_digits' test parts against 31.4 and 41.2 % for
# the reader before it, which read the image alone; README, "This release reads").
# Scored so, its 2 000 validation (5 %) and 2 000 synthetic test CAPTCHAs (15 %) took 107 s of its 13 minutes;
# it validates on 1.25 % (about 500, as many as each epoch scores anyway) and is tested on 500, and the rest trains.
N_SYNTH ?= 12000
EPOCHS  ?= 5
MODEL_DIR ?= models/default
N_READER ?= 40000
READER_MINUTES ?= 13
READER_IMAGES ?= 0
READER_EASY ?= 0.4
READER_AMOUNT = $(if $(filter-out 0,$(READER_IMAGES)),-p images $(READER_IMAGES) -p epochs 8,-p minutes $(READER_MINUTES))
READER_DIR ?= models/reader
PORT ?= 8000
NAME ?= reader
STAGE ?= prod
TIMED := tools/timed.sh

export DVC_NO_ANALYTICS=1
export WANDB_MODE ?= offline
export WANDB_SILENT=true

.PHONY: help install run data train reader export serve test lab repro clean-install readme sync register promote which rollback

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: $(STAMP)  ## create .venv with the pinned set, the package (editable, dev extras) and the python3 kernel
$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check pip==$(PIP_VERSION)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (captcha_nb)" >/dev/null
	rm -f $(VENV)/.installed*; touch $@

run: install  ## the main job: synthetic data -> character model + general CAPTCHA reader -> ONNX -> LitServe on 127.0.0.1:$(PORT)
	@$(TIMED) --reset
	@$(TIMED) "data" $(MAKE) --no-print-directory data
	@$(TIMED) "train characters" $(MAKE) --no-print-directory train
	@$(TIMED) "train general reader" $(MAKE) --no-print-directory reader
	@$(TIMED) "export both to ONNX" $(MAKE) --no-print-directory export
	@echo "=== where the time went"; $(TIMED) --summary
	$(MAKE) --no-print-directory serve

data: install  ## synthetic crops and whole CAPTCHAs (general style) into data/ (deterministic; tracked by data.dvc)
	$(BIN)/captcha-data synth --n $(N_SYNTH) --task char --dest data/synth/char --seed 0 --quiet
	$(BIN)/captcha-data synth --n 2000 --task char --dest data/synth/eval --seed 1 --quiet
	$(BIN)/captcha-data synth --n $(N_READER) --task captcha --style general --length 4-8 --case lower --easy $(READER_EASY) \
	  --workers 2 --dest data/synth/reader --seed 2 --quiet

train: install  ## train the default character model with papermill (writes $(MODEL_DIR))
	mkdir -p $(MODEL_DIR)
	$(BIN)/papermill nbs/03_train.ipynb $(MODEL_DIR)/train.ipynb --log-output --no-progress-bar -p task char \
	  -p synth_dirs data/synth/char -p n_synth 0 -p epochs $(EPOCHS) -p out_dir $(MODEL_DIR) -p wandb_mode $(WANDB_MODE) \
	  -p executed_nb $(MODEL_DIR)/train.ipynb

reader: install  ## train the general whole-CAPTCHA reader on synthetic data only, from the character model, in READER_MINUTES (or on READER_IMAGES images) (writes $(READER_DIR))
	mkdir -p $(READER_DIR)
	$(BIN)/papermill nbs/03_train.ipynb $(READER_DIR)/train.ipynb --log-output --no-progress-bar -p task captcha \
	  -p synth_dirs data/synth/reader -p n_synth 0 -p case lower -p text_len 4-8 $(READER_AMOUNT) -p valid_pct 0.0125 -p test_pct 0.0125 \
	  -p lr 0.001 -p bs 32 -p dropout 0 -p views 7 -p init_from $(MODEL_DIR) -p out_dir $(READER_DIR) -p wandb_mode $(WANDB_MODE) \
	  -p executed_nb $(READER_DIR)/train.ipynb

export: install  ## ONNX fp32 + int8 next to each Learner
	$(BIN)/captcha-export $(MODEL_DIR)
	$(BIN)/captcha-export $(READER_DIR)

serve: install  ## serve both models on 127.0.0.1:$(PORT): characters at /predict, whole CAPTCHAs at /solve
	$(BIN)/captcha-serve --model $(MODEL_DIR)/model.onnx --model $(READER_DIR)/model.onnx --host 127.0.0.1 --port $(PORT)

test: install  ## every test: nbdev-test, pytest, ruff, nbdev sync, README sync, coverage
	tools/test.sh

lab: install  ## JupyterLab on the project kernel (--allow-root where the user is root: containers, fresh cloud VMs)
	$(BIN)/jupyter lab --notebook-dir=nbs $$([ "$$(id -u)" = 0 ] && echo --allow-root)

repro: install  ## dvc repro: rebuild models/dvc from data.dvc and params.yaml (dvc.yaml's commands come from the venv)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

register: install  ## register an exported run as the next version of model NAME (make register NAME=reader DIR=models/reader)
	$(BIN)/captcha-registry register $(NAME) $(or $(DIR),$(READER_DIR))

promote: install  ## assign STAGE to VERSION of model NAME (make promote NAME=reader VERSION=v0.0.2 STAGE=prod)
	$(BIN)/captcha-registry promote $(NAME) $(VERSION) $(STAGE)

which: install  ## which version of NAME is in STAGE, from which run and data
	$(BIN)/captcha-registry which '$(NAME)#$(STAGE)'

rollback: install  ## give STAGE of NAME back to its previous version, then serve it on 127.0.0.1:$(PORT) (one command)
	$(BIN)/captcha-registry rollback $(NAME) $(STAGE)
	$(BIN)/captcha-serve --model '$(NAME)#$(STAGE)' --host 127.0.0.1 --port $(PORT)

sync: install  ## export notebooks to captcha_nb/, clean them, regenerate README.md
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean && $(PY) tools/make_readme.py

readme: install  ## README.md from nbs/index.ipynb
	$(PY) tools/make_readme.py

clean-install:  ## remove the virtual environment
	rm -rf $(VENV)
