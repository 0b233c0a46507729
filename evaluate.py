"""Evaluate a checkpoint: `python evaluate.py ckpt=PATH [overrides]` (see README.md)."""
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ogan_pl.config import check_group_choices
from ogan_pl.errors import report_user_errors

CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    from ogan_pl.evaluate import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    check_group_choices(sys.argv[1:], CONF_DIR)
    main()
