"""ogan-export: the generator, encoder and latent as TorchScript and ONNX files that compute what the
model computes (compared with OGAN.decode / encode / latent, not with the export's own modules), at
batch sizes other than the one traced, on random and on real images, for every registered
architecture; bad input is one line."""

import json

import pytest
import torch
from torch import nn

from ogan_pl.data import to_model_range
from ogan_pl.data.shapes import ShapesDataset
from ogan_pl.export import FORMATS, Part, export, load_part, require_onnx, write_part
from ogan_pl.registry.registries import ARCHITECTURES
from ogan_pl.utils.errors import UserError
from tests.conftest import ROOT, run_command_here, run_in

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout.ckpt"  # a 2-iteration shapes model: 32x32 RGB, 16-d codes
#: every registered architecture, and the variants that change what runs at inference (self-modulated
#: BatchNorm in G, BatchNorm in E, spectral norm)
ARCHITECTURE_CONFIGS = {
    "dcgan": [],
    "dcgan_sm": ["model=dcgan_sm"],
    "resnet": ["model=resnet", "model.width=4"],
    "resnet_sm_bn": ["model=resnet", "model.width=4", "model.self_modulated=true", "model.e_norm=batch"],
}
#: exported against PyTorch: |difference| / (1 + max |output|) (measured about 1e-6)
TOLERANCE = 1e-4


def test_every_registered_architecture_is_covered():
    covered = {name.split("_")[0] for name in ARCHITECTURE_CONFIGS}
    assert covered == set(ARCHITECTURES.names())


def _with_statistics(model):
    """BatchNorm running statistics away from their defaults, so an export that ignored them (or
    used batch statistics) would differ."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.3)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _close(got, want):
    return float((got - want).abs().max() / (1 + want.abs().max())) <= TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", list(ARCHITECTURE_CONFIGS))
def test_exported_files_compute_what_the_model_computes(make_model, tmp_path, fmt, arch):
    overrides = dict(o.split("=", 1) for o in ARCHITECTURE_CONFIGS[arch])
    model = _with_statistics(make_model(seed=3, **overrides))
    written = export(model, fmt, tmp_path)
    assert set(written) == {"generator", "encoder", "latent"}
    run = {name: load_part(fmt, tmp_path / info["file"]) for name, info in written.items()}
    real = to_model_range(ShapesDataset(7, resolution=32, seed=5, split="holdout").images)
    for n in (1, 3, 7):  # traced at 2: the batch is dynamic
        z = torch.randn(n, model.z_dim)
        x = torch.rand(n, 3, 32, 32) * 2 - 1
        assert _close(run["generator"](z), model.decode(z)), (arch, fmt, n)
        for images in (x, real[:n]):
            assert _close(run["encoder"](images), model.encode(images)), (arch, fmt, n)
            assert _close(run["latent"](images), model.latent(images)), (arch, fmt, n)
    # the two files chained reconstruct as the model does: G(s N(E(x)))
    assert _close(run["generator"](run["latent"](real)), model.reconstruct(real))


def test_the_raw_weights_can_be_exported_instead_of_the_averages(make_model, tmp_path):
    model = _with_statistics(make_model(seed=4))
    with torch.no_grad():  # make the EMA copies differ from the trained weights
        for p in model.G.parameters():
            p.add_(0.05)
    export(model, "torchscript", tmp_path, use_ema=False)
    z = torch.randn(4, model.z_dim)
    generator = load_part("torchscript", tmp_path / "generator.pt")
    assert _close(generator(z), model.decode(z, use_ema=False))
    assert not _close(generator(z), model.decode(z, use_ema=True))


def test_a_part_that_cannot_be_exported_is_one_line(tmp_path):
    class Eigen(nn.Module):
        def forward(self, x):
            return torch.linalg.eigh(x @ x.T)[0]

    part = Part("generator", Eigen().eval(), "z", "image", lambda n: torch.randn(n, 4))
    with pytest.raises(UserError, match=r"the generator \(Eigen\) cannot be exported to onnx: ") as err:
        write_part(part, "onnx", tmp_path / "g.onnx")
    assert "\n" not in str(err.value)


def test_onnx_without_its_packages_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(UserError, match=r"format=onnx needs the onnxruntime package: pip install 'ogan_pl\[onnx\]'"):
        require_onnx()


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_command_writes_the_files_and_their_description(tmp_path, fmt):
    proc = run_command_here(tmp_path, "-m", "ogan_pl.tools.export", f"ckpt={FIXTURE}", f"format={fmt}", "output=out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads((tmp_path / "out" / "export.json").read_text())
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    assert {p["file"] for p in info["parts"].values()} == {f"{n}{suffix}" for n in ("generator", "encoder", "latent")}
    assert (info["resolution"], info["channels"], info["z_dim"], info["image_range"]) == (32, 3, 16, [-1.0, 1.0])
    assert info["recon_scale"] > 0 and info["weights"] == "EMA" and info["ckpt"] == str(FIXTURE.resolve())
    assert all(p["max_relative_difference"] <= info["tolerance"] for p in info["parts"].values())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [*(p["file"] for p in info["parts"].values()), "export.json", "manifest.json"]
    )


def test_the_command_as_a_process(tmp_path):
    proc = run_in(tmp_path, "-m", "ogan_pl.tools.export", f"ckpt={FIXTURE}", "format=onnx", "output=out")
    assert "generator.onnx, encoder.onnx, latent.onnx written to out (onnx)" in proc.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["format=tflite", "output=out"], "format='tflite' must be one of: onnx, torchscript"),
        (["format=onnx", "output=out", "opset=11"], "opset=11 must be an integer >= 18"),
        (["format=onnx"], "output has no value"),
        (["format=onnx", "output=a_file"], "output=a_file is a file; give a folder"),
        (["format=onnx", "output=out", "ckpt=missing.ckpt"], "checkpoint missing.ckpt not found"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "a_file").write_text("mine")
    given = [f"ckpt={FIXTURE}", *args] if not any(a.startswith("ckpt=") for a in args) else args
    proc = run_command_here(tmp_path, "-m", "ogan_pl.tools.export", *given)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
