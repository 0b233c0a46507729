# The two set-up commands: `make train` and `make test` each install everything first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

train: install   ## train on the built-in real digits (extra overrides: make train ARGS="...")
	$(BIN)/python train.py $(ARGS)

test: install    ## the whole test suite, W&B offline
	WANDB_MODE=offline $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf logs outputs .pytest_cache
