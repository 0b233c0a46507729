"""Evaluate a checkpoint: `python evaluate.py ckpt=PATH [overrides]` (the same as `ogan-evaluate`; see conf/evaluate.yaml)."""

from ogan_pl.run.evaluate import main

if __name__ == "__main__":
    main()
