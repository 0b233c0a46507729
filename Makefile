# The two set-up commands: `make train` and `make test` each install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser train test lint docs images pretrained demo demo-screenshots gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

train: install   ## train on the built-in real digits (extra overrides: make train ARGS="...")
	$(BIN)/python train.py $(ARGS)

# Two pytest workers of one thread each: most tests start train.py / evaluate.py in a subprocess and
# wait on its start-up, so two single-threaded workers keep both cores busy (PYTEST_WORKERS=0: one process).
PYTEST_WORKERS ?= 2

test: install browser lint docs    ## lint, the docs site (a broken link fails), then the whole test suite, W&B offline
	WANDB_MODE=offline OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

browser:   ## Chromium + chromedriver for the demo's browser tests, from apt if missing (OGAN_SKIP_BROWSER=1: skip them)
	bash scripts/install_browser.sh

lint: install    ## ruff: the rules of pyproject.toml, and one formatting for the whole tree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

docs: install    ## build the docs site into site/ (offline; --strict: a broken link or a missing page fails)
	$(BIN)/python -m mkdocs build --strict --quiet --site-dir site

IMAGES_RUN := logs/images_run
images: install  ## train a fresh default run and copy its final grids to docs/images/ (the README's pictures)
	rm -rf $(IMAGES_RUN)
	$(BIN)/python train.py hydra.run.dir=$(IMAGES_RUN) $(ARGS)
	for grid in samples reconstructions interpolations; do \
	  cp "$$(ls $(IMAGES_RUN)/images/$${grid}_*.png | tail -n 1)" docs/images/$$grid.png; done

PRETRAINED_RUN := logs/pretrained_digits
pretrained: install  ## train the shipped digits model again (experiment=digits_long, seed 42) into ogan_pl/pretrained/
	rm -rf $(PRETRAINED_RUN)
	$(BIN)/python train.py experiment=digits_long hydra.run.dir=$(PRETRAINED_RUN)
	cp $(PRETRAINED_RUN)/checkpoints/last.ckpt ogan_pl/pretrained/digits.ckpt
	$(BIN)/ogan-directions ckpt=pretrained:digits method=class_mean target=all overwrite=true \
	  output=ogan_pl/pretrained/digits.directions.pt
	$(BIN)/python evaluate.py ckpt=pretrained:digits results_file=$(PRETRAINED_RUN)/pretrained.jsonl \
	  metrics.names=[recon_classifier,is_classifier,fd_classifier,health] metrics.n_fake=2000

demo: install   ## the web demo on the shipped digits model: http://127.0.0.1:7860/ (ARGS="ckpt=... port=...")
	$(BIN)/ogan-demo ckpt=pretrained:digits $(ARGS)

demo-screenshots: install browser  ## the demo page's screenshots in docs/images/ (the browser tests take them)
	OGAN_DEMO_SCREENSHOTS=docs/images WANDB_MODE=offline $(BIN)/python -m pytest -q -p no:xdist tests/test_demo_browser.py

# On a GPU machine with ogan_pl importable (a device lease installs nothing from the network):
# the GPU-only tests, then the 64 px long-run comparison; settings in scripts/gpu_check.sh.
GPU_PYTHON ?= $(shell test -x $(BIN)/python && echo $(BIN)/python || echo python3)
gpu-check:   ## the GPU checks in one call (docs/development.md, "GPU checks")
	PYTHON=$(GPU_PYTHON) bash scripts/gpu_check.sh

clean:
	rm -rf logs outputs .pytest_cache site
