"""`ogan-bench [train.py overrides]` (or `python -m ogan_pl.tools.bench`): how fast ogan_pl trains and evaluates.

In one process, after warm-up, each measurement repeated `bench.repeats` times (median, min, max):
  1. lightning_step: the training step through the LightningModule (E and G updates, EMA,
     logging as in training, data from the training DataLoader), real images/s;
  2. bare_step: the same step as a plain PyTorch loop over the same nn.Modules and objective
     functions, on the same DataLoader, under the same precision;
  3. input_pipeline: the training DataLoader alone, batches moved to the device;
  4. generate and fid_features: evaluation's G(z) and Inception features, images/s;
  5. peak GPU memory of each training loop;
  6. FLOPs of one training step (torch.utils.flop_counter) and the TFLOP/s both loops achieve.
Images/s counts the real images a step shows E (batch_size x n_critic), per device.
Prints a table and writes JSON (bench.out). The device is synchronised only at window edges.
"""

import copy
import datetime
import itertools
import json
import logging
import platform
import statistics
import time
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from ogan_pl.config.checks import check_training
from ogan_pl.config.schema import Section, TrainConfig
from ogan_pl.metrics import InceptionFeatures
from ogan_pl.module import optimizer_steps_per_iteration
from ogan_pl.registry.values import PositiveInt
from ogan_pl.run.cli import run
from ogan_pl.run.setup import configure_torch
from ogan_pl.run.train import build_data_and_model, build_trainer, finish_wandb
from ogan_pl.tools.data_bench import images_per_second
from ogan_pl.utils.device import synchronize
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_write

log = logging.getLogger(__name__)


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


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


class WindowTimer(pl.Callback):
    """Marks the time every `steps` generator iterations after `warmup` (a device sync at each mark)."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps = warmup, steps
        self.marks: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = pl_module.g_iter - self.warmup
        if done >= 0 and done % self.steps == 0:
            synchronize(pl_module.device)
            self.marks.append(time.perf_counter())


def window_rates(marks: list[float], steps: int, images_per_step: int) -> list[float]:
    return [steps * images_per_step / (t1 - t0) for t0, t1 in itertools.pairwise(marks)]


def peak_memory_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def lightning_step(cfg: DictConfig, datamodule, model, images_per_step: int):
    """Rates, peak memory and the device of a real trainer.fit with the run's logger."""
    b = cfg.bench
    timer = WindowTimer(b.warmup, b.steps)
    total = b.warmup + b.steps * b.repeats
    trainer = build_trainer(
        cfg,
        [timer],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        max_steps=total * optimizer_steps_per_iteration(cfg.train),
    )
    device = trainer.strategy.root_device
    reset_peak_memory(device)
    try:
        trainer.fit(model, datamodule=datamodule)
    finally:
        finish_wandb()
    return window_rates(timer.marks, b.steps, images_per_step), peak_memory_mb(device), device


class _ScaledOptimizer:
    """A torch optimizer whose step goes through the AMP GradScaler (a no-op scaler outside fp16)."""

    def __init__(self, optimizer, scaler: torch.amp.GradScaler):
        self.optimizer, self.scaler = optimizer, scaler

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()


class BareLoop:
    """The training step without Lightning: the module's own `train_iteration` with plain torch
    optimizers and backward, under the same autocast: the baseline the Lightning step is measured against."""

    def __init__(self, model, device: torch.device, precision: str, seed: int):
        self.model = model.to(device).train()
        self.device = device
        self.dtype = {"bf16": torch.bfloat16, "16": torch.float16}.get(str(precision).split("-")[0])
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        self.optimizers = [_ScaledOptimizer(opt, self.scaler) for opt in model.configure_optimizers()]
        model.on_fit_start()  # the speed settings (channels_last, compile), as in training

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, x: torch.Tensor) -> None:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            self.model.train_iteration(x, *self.optimizers, self._backward)


def endless(loader):
    while True:
        yield from loader


def device_images(datamodule, device: torch.device):
    """Training batches on the device, converted (and flipped) as in training."""
    for batch in endless(datamodule.train_dataloader()):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        yield datamodule.on_after_batch_transfer(batch, 0)["image"]


def step_flops(cfg: DictConfig, datamodule, model, device: torch.device) -> int | None:
    """FLOPs of one generator iteration, counted on an uncompiled copy (the counter traces eagerly);
    None when torch's counter cannot trace the step (the double backward of R1 / WGAN-GP)."""
    probe = copy.deepcopy(model)
    probe.compile_networks = False
    loop = BareLoop(probe, device, cfg.trainer.precision, cfg.seed)
    try:
        with FlopCounterMode(display=False) as counter:
            loop.step(next(device_images(datamodule, device)))
    except RuntimeError as err:
        log.warning("FLOPs not counted: torch's FlopCounterMode cannot trace this step (%s)", str(err).splitlines()[0])
        return None
    return counter.get_total_flops()


def bare_step(cfg: DictConfig, datamodule, model, images_per_step: int, device: torch.device):
    b = cfg.bench
    loop = BareLoop(model, device, cfg.trainer.precision, cfg.seed)
    images = device_images(datamodule, device)
    for _ in range(b.warmup):
        loop.step(next(images))
    reset_peak_memory(device)
    rates = []
    for _ in range(b.repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(b.steps):
            loop.step(next(images))
        synchronize(device)
        rates.append(b.steps * images_per_step / (time.perf_counter() - start))
    return rates, peak_memory_mb(device)


@torch.no_grad()
def evaluation_rates(cfg: DictConfig, model, device: torch.device) -> dict:
    """G(z) and Inception features at metrics.batch_size; Inception needs its weights (no download)."""
    b, n = cfg.bench, cfg.metrics.batch_size
    G = (model.G_ema.module if model.has_ema else model.G).to(device).eval()
    z = torch.randn(n, model.z_dim, device=device)

    def timed(fn) -> list[float]:
        for _ in range(2):
            fn()
        rates = []
        for _ in range(b.repeats):
            synchronize(device)
            start = time.perf_counter()
            for _ in range(b.eval_batches):
                fn()
            synchronize(device)
            rates.append(b.eval_batches * n / (time.perf_counter() - start))
        return rates

    out = {"generate": summary(timed(lambda: G(z)))}
    try:
        extractor = InceptionFeatures.load(
            cfg.metrics.inception_weights, download=False, antialias=cfg.metrics.antialias
        ).to(device)
    except UserError as err:
        out["fid_features"] = {"skipped": str(err)}
        return out
    images = torch.randint(0, 256, (n, 3, *G(z[:1]).shape[-2:]), dtype=torch.uint8, device=device)
    out["fid_features"] = summary(timed(lambda: extractor(images)))
    return out


def environment(device: torch.device) -> dict:
    return {
        "date": datetime.date.today().isoformat(),
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
    }


def print_table(result: dict) -> None:
    table = Table(title=f"ogan_pl.tools.bench: {result['environment']['device']}")
    for column in ("measure", "images/s (median)", "min .. max", "note"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for key in ("lightning_step", "bare_step", "input_pipeline", "generate", "fid_features"):
        entry = result[key]
        if "skipped" in entry:
            table.add_row(key, "-", "-", "skipped: no Inception weights")
            continue
        note = ""
        if key == "lightning_step":
            note = f"{result['lightning_vs_bare']:.3f} x bare"
        elif key == "input_pipeline":
            note = f"{result['input_vs_training']:.1f} x training"
        table.add_row(key, f"{entry['median']:,.0f}", f"{entry['min']:,.0f} .. {entry['max']:,.0f}", note)
    Console().print(table)
    memory = result["peak_memory_mb"]
    flops = result["flops_per_step"]
    speed = (
        f"FLOPs per step {flops / 1e9:.2f} G; achieved {result['tflops']['lightning']:.2f} TFLOP/s (Lightning), "
        f"{result['tflops']['bare']:.2f} TFLOP/s (bare)"
        if flops is not None
        else "FLOPs per step: not counted"
    )
    print(
        f"{speed}; peak memory: "
        + (
            f"{memory['lightning']:.0f} MB (Lightning), {memory['bare']:.0f} MB (bare)"
            if memory["lightning"] is not None
            else "n/a (CPU)"
        )
    )


def bench(cfg: DictConfig) -> dict:
    recipe = check_training(cfg, BenchConfig)
    b = cfg.bench
    configure_torch(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build_data_and_model(cfg, recipe)
    n_critic = cfg.train.n_critic if cfg.train["update"] == "alternating" else 1
    images_per_step = datamodule.batch_size * n_critic
    bare_model = copy.deepcopy(model)  # the same initial weights for both loops

    lightning, lightning_memory, device = lightning_step(cfg, datamodule, model, images_per_step)
    bare, bare_memory = bare_step(cfg, datamodule, bare_model, images_per_step, device)
    flops = step_flops(cfg, datamodule, copy.deepcopy(bare_model), device)

    def to_device(batch):
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    loader = datamodule.train_dataloader()
    pipeline = [
        images_per_second(
            loader, b.batches, b.warmup if i == 0 else 0, transfer=to_device, sync=lambda: synchronize(device)
        )
        for i in range(b.repeats)
    ]
    result = {
        "environment": environment(device),
        "config": {
            "model": cfg.model._name_,
            "resolution": cfg.dataset.resolution,
            "batch_size": datamodule.batch_size,
            "n_critic": n_critic,
            "update": cfg.train["update"],
            "precision": str(cfg.trainer.precision),
            "channels_last": model.channels_last,
            "compile": model.compile_networks,
            "float32_matmul_precision": cfg.speed.float32_matmul_precision,
            "dataset": cfg.dataset._name_,
            "warmup": b.warmup,
            "steps": b.steps,
            "repeats": b.repeats,
        },
        "lightning_step": summary(lightning),
        "bare_step": summary(bare),
        "input_pipeline": summary(pipeline),
        **evaluation_rates(cfg, model, device),
        "peak_memory_mb": {"lightning": lightning_memory, "bare": bare_memory},
        "flops_per_step": flops,
    }
    result["lightning_vs_bare"] = result["lightning_step"]["median"] / result["bare_step"]["median"]
    result["input_vs_training"] = result["input_pipeline"]["median"] / result["lightning_step"]["median"]
    steps_per_sec = {k: result[f"{k}_step"]["median"] / images_per_step for k in ("lightning", "bare")}
    result["tflops"] = {k: flops * v / 1e12 if flops is not None else None for k, v in steps_per_sec.items()}
    print_table(result)
    out = Path(b.out)
    atomic_write(out, lambda f: f.write(json.dumps(result, indent=2).encode()))
    print(f"JSON: {out}")
    return result


def main() -> None:
    """The `ogan-bench` console script."""
    run("bench", bench)


if __name__ == "__main__":
    main()
