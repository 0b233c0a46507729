"""Every value a user can type, checked by one declaration, before anything heavy starts.

- ogan_pl's own sections (`train`, `ogan`, `speed`, `optim`'s rates, `preemption` and the top-level
  keys) are pydantic models below: types, ranges, choices and unknown keys (a typo such as
  `+train.step=3`) come from their fields.
- A registered part (model, loss, augment, optimizer, dataset, metric) is checked against its
  constructor's type-annotated signature (ogan_pl.registry): one declaration per part, and a part a
  user adds is checked the same way. Ranges that depend on other values stay in the part itself.
- `trainer` is checked against `pytorch_lightning.Trainer`'s signature, plus the few values Lightning
  would only reject deep inside (devices, precision, an accelerator this machine lacks).

A failure is one line: `key=value` and what it must be.
"""
import difflib
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ogan_pl.errors import UserError

#: pydantic error type -> what the value must be (when the field gives no description of its own)
MUST_BE = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "tuple_type": "a list",
    "none_required": "null",
}


def _one_line(key: str, value: Any, error: dict, known: list[str], description: str | None) -> str:
    """`key=value must be ...` for the pydantic error `error`; `key: unknown key ...` for a typo."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        section, _, name = key.rpartition(".")
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {section + '.' if section else ''}{close[0]}? " if close else ""
        return f"{key}: unknown key; {hint}({section or 'the config'} has: {', '.join(known)})"
    if kind == "missing":
        return f"{key} is required; set {key}=..."
    if description:
        return f"{key}={value!r} must be {description}"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{key}={value!r} must be one of: {choices}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        return f"{key}={value!r} must be {op} {next(iter(ctx.values()), '')}"
    return f"{key}={value!r} must be {MUST_BE.get(kind, error['msg'].lower())}"


def check_int(key: str, value: Any, minimum: int) -> int:
    """A value that must be an integer >= minimum, checked where it is used (a range that is not in
    the type): one line naming the key otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{key}={value!r} must be an integer >= {minimum}")
    return value


def non_finite_float(value: Any) -> bool:
    """True if the value is, or holds, a NaN or infinite float."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(non_finite_float(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(non_finite_float(v) for v in value)
    return False


_ADAPTERS: dict[Any, TypeAdapter] = {}


def check_type(value: Any, annotation: Any, key: str) -> Any:
    """`value` checked against a type annotation (as a constructor declares it); returns it converted
    (a list for a tuple, an int for a float). NaN and infinities are refused everywhere."""
    if non_finite_float(value):
        raise UserError(f"{key}={value!r} must be a finite number")
    if annotation is Any or annotation is None:
        return value
    try:
        adapter = _ADAPTERS.get(annotation)
        if adapter is None:
            adapter = _ADAPTERS[annotation] = TypeAdapter(annotation,
                                                          config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # an annotation pydantic cannot express: the part checks the value itself
        return value
    if isinstance(value, bool) and not _accepts_bool(adapter):
        raise UserError(f"{key}={value!r} must be {_expected(annotation)}")
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        kind = err.errors()[0]["type"]
        raise UserError(f"{key}={value!r} must be {MUST_BE.get(kind) or _expected(annotation)}") from None


def _accepts_bool(adapter: TypeAdapter) -> bool:
    try:
        return adapter.validate_python(True, strict=True) is True
    except ValidationError:
        return False


def _expected(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


# ----------------------------------------------------------------- ogan_pl's own sections
PositiveInt = Annotated[int, Field(ge=1, strict=True)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainSection(Section):
    steps: Annotated[PositiveInt, Field(description="a positive number of generator iterations")]
    n_critic: Annotated[PositiveInt, Field(description="an integer >= 1 (E updates per generator iteration)")]
    update: Literal["alternating", "joint"]


class OganSection(Section):
    disc_head: Literal["avg", "linear"]
    recon_scale: PositiveFinite
    ema_decay: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False,
                                      description="in [0, 1) (0 turns EMA off)")]


class SpeedSection(Section):
    channels_last: Annotated[Literal["auto"] | bool, Field(description="auto, true or false")]
    compile: bool
    float32_matmul_precision: Literal["highest", "high", "medium"]


class OptimSection(Section):
    lr: PositiveFinite
    lr_e: PositiveFinite
    lr_g: PositiveFinite
    encoder: dict
    generator: dict


class PreemptionSection(Section):
    requeue: bool


class TrainConfig(Section):
    """conf/config.yaml after composition: every top-level key. Groups whose nodes name parts (model,
    loss, augment, dataset, metrics) or classes (trainer, callbacks, logger) are checked by their
    registries and signatures, not here."""
    train: TrainSection
    ogan: OganSection
    speed: SpeedSection
    optim: OptimSection
    preemption: PreemptionSection
    seed: Annotated[int, Field(ge=0, strict=True, description="an integer >= 0")]
    resume: Annotated[Literal["auto", "never"], Field(
        description="auto (continue from the run directory's newest checkpoint) or never; to start from a "
                    "given file use ckpt_path=PATH")]
    ckpt_path: str | None
    optimized_metric: str | None
    plugins: list[str]
    task_name: str
    model: dict
    loss: dict
    augment: dict | None = None
    dataset: dict
    trainer: dict
    callbacks: dict | None = None
    metrics: dict | None = None
    logger: dict | None = None
    paths: dict


class BenchSection(Section):
    repeats: PositiveInt
    steps: PositiveInt
    warmup: PositiveInt
    batches: PositiveInt
    eval_batches: PositiveInt
    modes: list[Literal["raw", "cache"]]
    out: str


class BenchConfig(TrainConfig):
    """conf/bench.yaml: a training config and the `bench` section."""
    bench: BenchSection


def check_sections(config: dict, model: type[BaseModel] = TrainConfig) -> None:
    """The composed config against `model`: one line for the first problem, keyed by the field."""
    try:
        model.model_validate(config)
    except ValidationError as err:
        error = err.errors()[0]
        owner, path, value = model, [], config
        for part in error["loc"]:  # down the section models, as far as the failing field
            if not (isinstance(part, str) and part in owner.model_fields) and not (
                    error["type"] == "extra_forbidden" and part == error["loc"][-1]):
                break
            path.append(str(part))
            value = value.get(part) if isinstance(value, dict) else None
            field = owner.model_fields.get(str(part))
            sub = getattr(field, "annotation", None)
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                owner = sub
            else:
                break
        name = path[-1] if path else ""
        field = owner.model_fields.get(name)
        raise UserError(_one_line(".".join(path), value, error, list(owner.model_fields),
                                  getattr(field, "description", None))) from None


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
    import inspect
    import typing

    import pytorch_lightning as pl
    import torch

    accepted = [n for n in inspect.signature(pl.Trainer.__init__).parameters if n != "self"]
    hints = typing.get_type_hints(pl.Trainer.__init__)
    for name, value in trainer.items():
        key = f"trainer.{name}"
        if name == "_target_":
            continue
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            raise UserError(f"{key}: unknown key; " + (f"did you mean trainer.{close[0]}? " if close else "")
                            + "(it takes the arguments of pytorch_lightning.Trainer)")
        if not _has_target(value) and name not in ("devices", "precision", "accelerator"):
            check_type(value, hints.get(name, Any), key)
    devices = trainer.get("devices", "auto")
    ok = (devices == "auto" or (isinstance(devices, int) and not isinstance(devices, bool) and (devices >= 1 or devices == -1))
          or (isinstance(devices, list) and devices and all(isinstance(d, int) and d >= 0 for d in devices))
          or (isinstance(devices, str) and all(p.strip().isdigit() for p in devices.split(",") if p.strip())
              and devices.strip() not in ("", "0")))
    if not ok:
        raise UserError(f"trainer.devices={devices!r} must be a number of devices >= 1, -1 (all), auto, or a "
                        "list of device indices such as [0,2]")
    precision = trainer.get("precision", "32-true")
    if str(precision) not in (*PRECISIONS, "32", "16", "bf16", "64"):
        raise UserError(f"trainer.precision={precision!r} must be one of: {', '.join(PRECISIONS)}")
    accelerator = trainer.get("accelerator", "auto")
    if accelerator not in ACCELERATORS:
        raise UserError(f"trainer.accelerator={accelerator!r} must be one of: {', '.join(ACCELERATORS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={accelerator} but this machine has no CUDA GPU; use "
                        "trainer.accelerator=cpu (or auto, which picks a GPU when there is one)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UserError("trainer.accelerator=mps but MPS is not available here; use trainer.accelerator=cpu")
