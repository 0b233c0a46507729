"""Evaluate a checkpoint: `python evaluate.py ckpt=PATH [overrides]` (see README.md and conf/evaluate.yaml)."""
from ogan_pl.cli import run
from ogan_pl.evaluate import evaluate

if __name__ == "__main__":
    run("evaluate", evaluate)
