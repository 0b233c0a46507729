"""G and E outside Python research code: the generator (z -> image), the encoder (image -> code) and
the latent (image -> s N(E(x)), the code G reads) as standalone modules, written as TorchScript or
ONNX with a dynamic batch size, each run again from its file and compared with PyTorch before the
export is accepted (docs/encoder.md, "Export").

The modules hold the weights a model generates with (the EMA copies unless `use_ema=False`), in
eval mode: BatchNorm reads its running statistics, and spectral norm's current estimate is folded
into plain weights, so an exported file computes exactly what `OGAN.decode`, `encode` and `latent`
compute. Images are in [-1, 1], (B, C, R, R); codes and z are (B, z_dim).
"""

import contextlib
import copy
import importlib.util
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ogan_pl.method.inversion import encoder_code
from ogan_pl.module import OGAN
from ogan_pl.utils.errors import UserError

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
#: the oldest ONNX opset the exports are written and tested with (torch.export's ONNX exporter's own)
MIN_OPSET = 18
#: an exported output may differ from PyTorch's by this much, relative to the output's largest value
#: (float32 kernels of another runtime sum in another order; measured differences are ~1e-6)
TOLERANCE = 1e-4


class Latent(nn.Module):
    """x -> s * N(E(x)): the code of an image on the noise's scale, ready for the generator."""

    def __init__(self, encoder: nn.Module, recon_scale: float):
        super().__init__()
        self.encoder = encoder
        self.recon_scale = recon_scale

    def forward(self, x: Tensor) -> Tensor:
        return encoder_code(self.encoder, x, self.recon_scale)


@dataclass(frozen=True)
class Part:
    """One exported module: its name, input and output names, and how to draw an example input."""

    name: str
    module: nn.Module
    input_name: str
    output_name: str
    example: Callable[[int], Tensor]


def _plain_weights(module: nn.Module) -> nn.Module:
    """A copy of `module` in eval mode with torch's hook-based spectral norm folded into its weights
    (the value its eval-mode forward computes), so the export holds plain convolutions."""
    module = copy.deepcopy(module).eval()
    for sub in module.modules():
        for hook in list(sub._forward_pre_hooks.values()):
            if type(hook).__name__ == "SpectralNorm":
                torch.nn.utils.remove_spectral_norm(sub, hook.name)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def standalone_parts(model: OGAN, use_ema: bool = True) -> list[Part]:
    """The generator, encoder and latent of `model` as plain eval-mode modules on the CPU."""
    ema = use_ema and model.has_ema
    E = _plain_weights(model.E_ema.module if ema else model.E).cpu()
    G = _plain_weights(model.G_ema.module if ema else model.G).cpu()
    config = model.hparams.config["dataset"]
    shape = (config["channels"], config["resolution"], config["resolution"])

    def images(n: int) -> Tensor:
        return torch.rand(n, *shape, generator=torch.Generator().manual_seed(n)) * 2 - 1

    def noise(n: int) -> Tensor:
        return torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(n))

    return [
        Part("generator", G, "z", "image", noise),
        Part("encoder", E, "image", "code", images),
        Part("latent", Latent(E, model.recon_scale).eval(), "image", "latent", images),
    ]


#: the loggers of torch.export's ONNX writer, which report every pass at INFO
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx")


@contextlib.contextmanager
def _quiet(names: tuple[str, ...]):
    """Those loggers at WARNING while the export runs (the command's log shows INFO)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def require_onnx() -> None:
    """format=onnx needs onnx and onnxscript (torch.export's ONNX writer) and onnxruntime (the export
    is run back)."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"format=onnx needs the {', '.join(missing)} package{'s' if len(missing) > 1 else ''}: "
            "pip install 'ogan_pl[onnx]' (or use format=torchscript, which needs nothing more)"
        )


def write_part(part: Part, fmt: str, path: Path, opset: int = MIN_OPSET) -> None:
    """`part` traced on an example batch of 2 and written to `path`; one line naming the part if it
    cannot be exported."""
    example = part.example(2)
    try:
        with torch.no_grad():
            if fmt == "torchscript":
                torch.jit.save(torch.jit.trace(part.module, example, check_trace=False), str(path))
            else:
                with contextlib.redirect_stdout(io.StringIO()), _quiet(EXPORTER_LOGGERS):
                    torch.onnx.export(
                        part.module,
                        (example,),
                        str(path),
                        input_names=[part.input_name],
                        output_names=[part.output_name],
                        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                        opset_version=opset,
                        dynamo=True,
                        report=False,
                        external_data=False,  # one file a part: the weights inside (a model far below 2 GB)
                    )
    except Exception as err:  # noqa: BLE001 - whatever the tracer or exporter refuses: one line naming the part
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(
            f"the {part.name} ({type(part.module).__name__}) cannot be exported to {fmt}: {first}"
        ) from None


def load_part(fmt: str, path: Path) -> Callable[[Tensor], Tensor]:
    """An exported file as a function of one batch, run by its own runtime (torch.jit or onnxruntime)."""
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu")
        return lambda x: module(x)
    import onnxruntime  # optional: format=onnx only (require_onnx said so first)

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def max_difference(part: Part, run: Callable[[Tensor], Tensor], inputs: Tensor) -> float:
    """max |exported(x) - PyTorch(x)| / (1 + max |PyTorch(x)|) over a batch. The latent's difference
    is first taken back to the code it standardizes (times std(E(x)) / s): N(.) divides by the
    code's spread, so a barely trained encoder's near-constant codes magnify the float32 rounding of
    any runtime, and the tolerance judges the export, not that conditioning."""
    with torch.no_grad():
        want = part.module(inputs)
        got = run(inputs)
        if got.shape != want.shape:
            raise UserError(f"the exported {part.name} gives shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
        difference, scale = (got - want).abs(), want.abs().max()
        if isinstance(part.module, Latent):
            code = part.module.encoder(inputs).float()
            difference = difference * code.std(-1, unbiased=False, keepdim=True) / part.module.recon_scale
            scale = code.abs().max()
    return float(difference.max() / (1 + scale))


def export(model: OGAN, fmt: str, out: Path, use_ema: bool = True, opset: int = MIN_OPSET) -> dict[str, dict]:
    """Write generator, encoder and latent into `out` in format `fmt`; each file is loaded back and
    run on batches of 1 and 5 (not the batch size it was traced with) and must match PyTorch within
    TOLERANCE. Returns, per part, its file, input, output and the largest difference measured."""
    if fmt not in FORMATS:
        raise UserError(f"format={fmt!r} must be one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        require_onnx()
    written = {}
    for part in standalone_parts(model, use_ema):
        path = out / f"{part.name}{SUFFIX[fmt]}"
        write_part(part, fmt, path, opset)
        run = load_part(fmt, path)
        difference = max(max_difference(part, run, part.example(n)) for n in (1, 5))
        if not difference <= TOLERANCE:
            raise UserError(
                f"the exported {part.name} differs from PyTorch by {difference:.2g} (relative; at most "
                f"{TOLERANCE:g} is accepted): this architecture does not export faithfully to {fmt}"
            )
        written[part.name] = {
            "file": path.name,
            "input": part.input_name,
            "output": part.output_name,
            "max_relative_difference": difference,
        }
    return written
