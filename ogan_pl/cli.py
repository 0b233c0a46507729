"""The shared entry point of train.py and evaluate.py: Hydra, config checks, one-line errors."""
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import hydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
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
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors, to be printed as one line here
    try:
        main()
    except (ConfigCompositionException, OverrideParseException, MissingConfigException) as err:
        print(f"error: {composition_error(err)}", file=sys.stderr, flush=True)
        sys.exit(2)


def composition_error(err: Exception) -> str:
    """Hydra's multi-line composition error as one line; an override of a key that does not exist
    (`trainer.devise=2`) names the key and the closest existing one."""
    cause = err.__cause__
    match = re.search(r"Could not override '([^']+)'", str(err))
    if match and "not in struct" in str(cause):
        key = match.group(1)
        parent = getattr(cause, "parent_node", None)
        known = [str(k) for k in parent.keys()] if hasattr(parent, "keys") else []
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
        section = key.rsplit(".", 1)[0] + "." if "." in key else ""
        hint = f"did you mean {section}{close[0]}? " if close else ""
        return f"{key}: unknown key; {hint}(to add a key of your own, write +{key}=...)"
    return " ".join(" ".join(str(part) for part in (err, cause or "")).split())
