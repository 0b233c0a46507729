"""The shared entry point of train.py and evaluate.py: Hydra, config checks, one-line errors."""
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
from omegaconf import DictConfig

from ogan_pl.config import check_group_choices
from ogan_pl.errors import UserError, report_user_errors
from ogan_pl.parts import load_plugins, plugins_from_argv

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def run(config_name: str, task: Callable[[DictConfig], Any]) -> None:
    """Compose `conf/<config_name>.yaml` with the command line and run `task` on it (once per job)."""
    check_group_choices(sys.argv[1:], CONF_DIR)
    try:  # the user's own parts, before the config that names them is composed and checked
        load_plugins(plugins_from_argv(sys.argv[1:]))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(report_user_errors(task))
    main()
