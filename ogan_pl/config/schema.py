"""Every value a user can type, checked by one declaration, before anything heavy starts.

- ogan_pl's own sections (`train`, `ogan`, `speed`, `optim`'s rates, `preemption` and the top-level
  keys) are pydantic models below: types, ranges, choices and unknown keys (a typo such as
  `+train.step=3`) come from their fields.
- A registered part (model, loss, augment, optimizer, dataset, metric) is checked against its
  constructor's type-annotated signature (ogan_pl.registry.registries): one declaration per part, and a part a
  user adds is checked the same way. Ranges that depend on other values stay in the part itself.
- `trainer` is checked against `pytorch_lightning.Trainer`'s signature, plus the few values Lightning
  would only reject deep inside (devices, precision, an accelerator this machine lacks).

A failure is one line: `key=value` and what it must be.
"""

import inspect
import typing
from typing import Annotated, Any, Literal

import pytorch_lightning as pl
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ogan_pl.method.head import HEADS
from ogan_pl.method.schedule import DECAY_SHAPES
from ogan_pl.registry.values import (
    NonNegativeInt,
    PositiveFinite,
    PositiveInt,
    check_type,
    did_you_mean,
    finite,
    must_be,
    one_of,
)
from ogan_pl.utils.errors import UserError


def _one_line(key: str, value: Any, error: dict, known: list[str], description: str | None) -> str:
    """`key=value must be ...` for the pydantic error `error`; `key: unknown key ...` for a typo."""
    if error["type"] == "extra_forbidden":
        section, _, name = key.rpartition(".")
        return f"{key}: unknown key; {did_you_mean(name, known, section)}({section or 'the config'} has: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{key} is required; set {key}=..."
    return f"{key}={value!r} must be {must_be(error, description)}"


# ----------------------------------------------------------------- ogan_pl's own sections
CpuThreads = str | int  # auto or a count: checked by ogan_pl.utils.threads.parse_threads before any command runs


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommandConfig(Section):
    """What every command's config holds (conf/*.yaml): its name, the user's plugins, the CPU thread
    policy and the paths."""

    task_name: str
    plugins: list[str]
    cpu_threads: CpuThreads
    paths: dict


class ModelCommandConfig(CommandConfig):
    """A command that opens a trained model (ogan_pl.run.models.open_model)."""

    ckpt: str
    device: str
    use_ema: bool


class MetricOptions(BaseModel):
    """conf/metrics/: what every metric shares; each metric's own node (metrics.kid, ...) is checked by
    its registered constructor when the metric is built."""

    model_config = ConfigDict(extra="allow")
    inception_weights: str | None
    download: bool
    antialias: bool
    batch_size: PositiveInt
    classifier: dict


UPDATES = ("alternating", "joint")


class TrainSection(Section):
    steps: Annotated[int, Field(ge=1, strict=True, description="a positive number of generator iterations")]
    n_critic: Annotated[
        int, Field(ge=1, strict=True, description="an integer >= 1 (E updates per generator iteration)")
    ]
    update: one_of(UPDATES)


class OganSection(Section):
    disc_head: one_of(HEADS)
    recon_scale: PositiveFinite
    ema_decay: finite(0, below=1, note="0 turns EMA off")


class SpeedSection(Section):
    channels_last: Annotated[Literal["auto"] | bool, Field(description="auto, true or false")]
    compile: bool
    float32_matmul_precision: one_of(("highest", "high", "medium"))


class OptimSection(Section):
    lr: PositiveFinite
    lr_e: PositiveFinite
    lr_g: PositiveFinite
    decay: one_of(DECAY_SHAPES)
    decay_start: finite(0, below=1, note="the fraction of train.steps before the decay")
    decay_final: Annotated[
        float,
        Field(
            gt=0,
            le=1,
            allow_inf_nan=False,
            description=("a finite number > 0 and <= 1 (the rates at the end, as a fraction of optim.lr)"),
        ),
    ]
    encoder: dict
    generator: dict


class PreemptionSection(Section):
    requeue: bool


#: the sections of ogan_pl's own a checkpoint's recipe holds, checked when a checkpoint is read
RECIPE_SECTIONS = {"train": TrainSection, "ogan": OganSection, "speed": SpeedSection}


class TrainConfig(CommandConfig):
    """conf/config.yaml after composition: every top-level key. Groups whose nodes name parts (model,
    loss, augment, dataset, metrics) or classes (trainer, callbacks, logger) are checked by their
    registries and signatures, not here."""

    train: TrainSection
    ogan: OganSection
    speed: SpeedSection
    optim: OptimSection
    preemption: PreemptionSection
    seed: NonNegativeInt
    resume: Annotated[
        Literal["auto", "never"],
        Field(
            description="auto (continue from the run directory's newest checkpoint) or never; to start from a "
            "given file use ckpt_path=PATH"
        ),
    ]
    ckpt_path: str | None
    optimized_metric: str | None
    model: dict
    loss: dict
    augment: dict | None = None
    dataset: dict
    trainer: dict
    callbacks: dict | None = None
    metrics: MetricOptions | None = None
    logger: dict | None = None


def check_sections(config: dict, model: type[BaseModel] = TrainConfig, prefix: str = "") -> None:
    """The composed config (or, with `prefix`, one section of it) against `model`: one line for the
    first problem, keyed by the field."""
    try:
        model.model_validate(config)
    except ValidationError as err:
        error = err.errors()[0]
        owner, path, value = model, [prefix] if prefix else [], config
        for part in error["loc"]:  # down the section models, as far as the failing field
            if not (isinstance(part, str) and part in owner.model_fields) and not (
                error["type"] == "extra_forbidden" and part == error["loc"][-1]
            ):
                break
            path.append(str(part))
            value = value.get(part) if isinstance(value, dict) else None
            field = owner.model_fields.get(str(part))
            sub = getattr(field, "annotation", None)
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                owner = sub
            else:
                break
        name = path[-1] if len(path) > bool(prefix) else ""
        field = owner.model_fields.get(name)
        raise UserError(
            _one_line(".".join(path), value, error, list(owner.model_fields), getattr(field, "description", None))
        ) from None


# ----------------------------------------------------------------- the Lightning trainer
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "transformer-engine")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def _has_target(value: Any) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(_has_target(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_target(v) for v in value)
    return False


def check_trainer(trainer: dict) -> None:
    """`trainer` against `pytorch_lightning.Trainer`'s signature (unknown keys, types), and the values
    Lightning would refuse only after the model and data are built."""
    accepted = [n for n in inspect.signature(pl.Trainer.__init__).parameters if n != "self"]
    hints = typing.get_type_hints(pl.Trainer.__init__)
    for name, value in trainer.items():
        key = f"trainer.{name}"
        if name == "_target_":
            continue
        if name not in accepted:
            raise UserError(
                f"{key}: unknown key; {did_you_mean(name, accepted, 'trainer')}"
                "(it takes the arguments of pytorch_lightning.Trainer)"
            )
        if not _has_target(value) and name not in ("devices", "precision", "accelerator"):
            check_type(value, hints.get(name, Any), key)
    devices = trainer.get("devices", "auto")
    ok = (
        devices == "auto"
        or (isinstance(devices, int) and not isinstance(devices, bool) and (devices >= 1 or devices == -1))
        or (isinstance(devices, list) and devices and all(isinstance(d, int) and d >= 0 for d in devices))
        or (
            isinstance(devices, str)
            and all(p.strip().isdigit() for p in devices.split(",") if p.strip())
            and devices.strip() not in ("", "0")
        )
    )
    if not ok:
        raise UserError(
            f"trainer.devices={devices!r} must be a number of devices >= 1, -1 (all), auto, or a "
            "list of device indices such as [0,2]"
        )
    precision = trainer.get("precision", "32-true")
    if str(precision) not in (*PRECISIONS, "32", "16", "bf16", "64"):
        raise UserError(f"trainer.precision={precision!r} must be one of: {', '.join(PRECISIONS)}")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise UserError(f"trainer.accelerator={accelerator!r} must be one of: {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; use "
            "trainer.accelerator=cpu (or auto, which picks a GPU when there is one)"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UserError("trainer.accelerator=mps but MPS is not available here; use trainer.accelerator=cpu")
