"""The front door of every Hydra command (train, evaluate, invert, bench, ...): compose the config,
check it against the command's schema, import the user's plugins (once), turn every mistake into
one line and exit code 2, set the CPU thread policy (`cpu_threads`), and end on Ctrl-C or SIGTERM
within seconds with one line. The task receives a checked config."""

import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel

from ogan_pl.config.schema import check_sections
from ogan_pl.registry.plugins import load_plugins, plugins_from_argv
from ogan_pl.registry.values import did_you_mean
from ogan_pl.run.exits import exit_stopped, exit_with, report_user_errors
from ogan_pl.run.setup import register_resolvers
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.nested import plain_config
from ogan_pl.utils.stopping import StopRequested, StopSignals
from ogan_pl.utils.threads import cpu_threads


def _conf_dir() -> Path:
    """The Hydra configs: the copy a wheel ships inside the package (setup.py), else the repository's
    top-level conf/ (a checkout, an editable install)."""
    package = Path(__file__).resolve().parents[1]
    return package / "conf" if (package / "conf").is_dir() else package.parent / "conf"


CONF_DIR = _conf_dir()


def run(
    config_name: str,
    task: Callable[[DictConfig], Any],
    schema: type[BaseModel] | None = None,
    handles_stops: bool = False,
) -> None:
    """Compose `conf/<config_name>.yaml` with the command line, check it against `schema` (the
    command's pydantic model: types, ranges, choices, unknown keys), import the plugins it names, and
    run `task` on it (once per job).

    A stop signal ends the task at once (`StopRequested` where it is), unless the task `handles_stops`
    itself (training: it stops at a step boundary and saves); either way the command ends with one line
    and exit code 128 + the signal's number.
    """
    register_resolvers()
    try:
        check_group_choices(sys.argv[1:], CONF_DIR)
        load_plugins(plugins_from_argv(sys.argv[1:]))  # the user's own parts, before the config naming them
    except UserError as err:
        exit_with(err)
    except KeyboardInterrupt:
        exit_stopped(None)
    main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(
        report_user_errors(command(task, schema, handles_stops))
    )
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors, to be printed as one line here
    try:
        main()
    except (ConfigCompositionException, OverrideParseException, MissingConfigException) as err:
        exit_with(composition_error(err))
    except (StopRequested, KeyboardInterrupt) as stop:
        exit_stopped(stop)


def command(
    task: Callable[[DictConfig], Any], schema: type[BaseModel] | None, handles_stops: bool
) -> Callable[[DictConfig], Any]:
    """`task` on the checked config, under the run's CPU thread policy and, unless it handles them,
    the stop signals."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        if schema is not None:
            check_sections(plain_config(cfg), schema)
        load_plugins(cfg.get("plugins") or [])  # the config files' plugins too (the command line's are in)
        if handles_stops:
            with cpu_threads(cfg.get("cpu_threads", "auto")):
                return task(cfg)
        return stoppable(lambda: task(cfg), str(cfg.get("task_name", "the command")), cfg.get("cpu_threads", "auto"))

    return wrapper


def stoppable(work: Callable[[], Any], name: str, threads="auto") -> Any:
    """`work()` under the CPU thread policy, a stop signal ending it at once (StopRequested)."""
    with cpu_threads(threads), StopSignals(requeue=False) as signals:
        signals.phase = name
        return work()


def run_plain(work: Callable[[], Any], name: str) -> Any:
    """A command without a Hydra config (argparse) run as `run` runs the others: a UserError or a stop
    signal ends it with one line."""
    try:
        return stoppable(work, name)
    except UserError as err:
        exit_with(err)
    except (StopRequested, KeyboardInterrupt) as stop:
        exit_stopped(stop)


def dataset_defaults(name: str, overrides: list[str] = ()) -> dict:
    """conf/dataset/NAME.yaml as a training run composes it with `overrides` (`dataset.root=...`), its
    paths under the current folder (as a run started here); {} for a dataset a user's package registers
    without a file there (its class defaults apply). For the commands that build a dataset other than
    their run's own."""
    if not (CONF_DIR / "dataset" / f"{name}.yaml").is_file():
        return {}
    overrides = [f"dataset={name}", f"paths.root_dir={Path.cwd()}", *overrides]
    try:
        if GlobalHydra.instance().is_initialized():  # inside a Hydra command (evaluate.py): its search path is conf/
            cfg = hydra.compose("config", overrides=overrides)
        else:
            with hydra.initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = hydra.compose("config", overrides=overrides)
    except (ConfigCompositionException, OverrideParseException) as err:
        raise UserError(composition_error(err)) from None
    return OmegaConf.to_container(cfg.dataset, resolve=True)


def composition_error(err: Exception) -> str:
    """Hydra's multi-line composition error as one line; an override of a key that does not exist
    (`trainer.devise=2`) names the key and the closest existing one."""
    cause = err.__cause__
    match = re.search(r"Could not override '([^']+)'", str(err))
    if match and "not in struct" in str(cause):
        key = match.group(1)
        parent = getattr(cause, "parent_node", None)
        known = [str(k) for k in parent] if hasattr(parent, "keys") else []
        section, _, name = key.rpartition(".")
        return f"{key}: unknown key; {did_you_mean(name, known, section)}(to add a key of your own, write +{key}=...)"
    return " ".join(" ".join(str(part) for part in (err, cause or "")).split())


def check_group_choices(argv: list[str], conf_dir: Path) -> None:
    """Unknown config-group options (`loss=foo`) fail with one line listing the valid ones.

    Hydra would print a multi-line error and exit 1; users sweep these, so say it plainly. Files
    whose name starts with "_" are bases of the group's options, not options. With
    `hydra.searchpath=[...]` (a user's own config folders) Hydra itself checks the choices.
    """
    if any(arg.lstrip("+").startswith("hydra.searchpath=") for arg in argv):
        return
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        group_dir = conf_dir / key
        # hydra/launcher, hydra/sweeper: Hydra's plugins add options that are not in conf/
        if "." in key or key.startswith("hydra/") or not group_dir.is_dir() or "(" in value:
            continue
        options = sorted(p.stem for p in group_dir.glob("*.yaml") if not p.stem.startswith("_"))
        for choice in value.split(","):
            if choice in ("null", "") or choice in options:
                continue
            raise UserError(
                f"unknown {key} {choice!r}; {did_you_mean(choice, options)}choose one of: {', '.join(options)}"
            )
