"""Perceptual distances for inversion: LPIPS-VGG when its weights are on disk, else distances in the
features of a network that is at hand (the encoder E itself, or the dataset's domain classifier).

Both compare images in [-1, 1] (B, C, R, R) through feature maps f_l, each unit-normalised over
channels at every position (LPIPS's normalisation), per image:

    d(a, b) = sum_l mean_{h,w} sum_c w_lc (n(f_l(a)) - n(f_l(b)))_c^2       n(f) = f / ||f||_channels

with w = 1 for a network's own features and LPIPS's learned non-negative w for LPIPS-VGG.
"""

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import vgg16

from ogan_pl.utils.errors import UserError

#: where the two LPIPS-VGG files come from (neither ships with a package that ogan_pl depends on)
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
LPIPS_VGG_URL = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"
#: the ReLU outputs LPIPS-VGG reads (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), as indices of vgg16().features
VGG_TAPS = (3, 8, 15, 22, 29)
VGG_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS's input scaling: images in [-1, 1], shifted and scaled per channel
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


def _unit(f: Tensor, eps: float = 1e-10) -> Tensor:
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def layer_distance(fa: Tensor, fb: Tensor, weight: Tensor | None = None) -> Tensor:
    """sum_c w_c (n(fa) - n(fb))_c^2, averaged over positions -> (B,)."""
    diff = (_unit(fa.float()) - _unit(fb.float())).pow(2)
    if weight is not None:
        diff = diff * weight.view(1, -1, 1, 1)
    return diff.sum(1).flatten(1).mean(1)


class FeatureDistance(nn.Module):
    """d(a, b) in the outputs of `taps`, modules inside `network` (e.g. every Conv2d of E)."""

    def __init__(self, network: nn.Module, taps: list[nn.Module]):
        super().__init__()
        if not taps:
            raise ValueError("FeatureDistance needs at least one module to read features from")
        self.network = network
        self.taps = taps

    def features(self, x: Tensor) -> list[Tensor]:
        """The taps' outputs for x (hooks held only during this forward pass: the network is left as it was)."""
        out: list[Tensor] = []
        hooks = [tap.register_forward_hook(lambda module, args, result: out.append(result)) for tap in self.taps]
        try:
            self.network(x)
        finally:
            for hook in hooks:
                hook.remove()
        return out

    def compare(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        """d from features already computed (an inversion computes its targets' features once)."""
        return sum(layer_distance(x, y) for x, y in zip(fa, fb, strict=True))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.compare(self.features(a), self.features(b))

    @classmethod
    def of_convolutions(cls, network: nn.Module) -> "FeatureDistance":
        """Distances in the outputs of every Conv2d of `network` (the encoder's own features)."""
        return cls(network, [m for m in network.modules() if isinstance(m, nn.Conv2d)])


class LPIPS(nn.Module):
    """LPIPS-VGG (Zhang et al. 2018, v0.1): VGG16's ImageNet features with LPIPS's learned weights."""

    def __init__(self, vgg_features: nn.Sequential, weights: list[Tensor]):
        super().__init__()
        self.vgg = vgg_features[: VGG_TAPS[-1] + 1].eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.weights = nn.ParameterList([nn.Parameter(w.flatten().clone(), requires_grad=False) for w in weights])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def features(self, x: Tensor) -> list[Tensor]:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # grayscale: the same image in R, G and B
        h, out = (x.float() - self.shift) / self.scale, []
        for i, layer in enumerate(self.vgg):
            h = layer(h)
            if i in VGG_TAPS:
                out.append(h)
        return out

    def compare(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        """d from features already computed (an inversion computes its targets' features once)."""
        return sum(layer_distance(x, y, w) for x, y, w in zip(fa, fb, self.weights, strict=True))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.compare(self.features(a), self.features(b))

    @classmethod
    def from_files(cls, vgg_path: str | Path, lpips_path: str | Path) -> "LPIPS":
        """From torchvision's VGG16 ImageNet weights and LPIPS's `vgg.pth` (v0.1), both read weights-only."""
        vgg_state = _read_weights(vgg_path, "the VGG16 ImageNet weights", VGG16_URL)
        lin_state = _read_weights(lpips_path, "the LPIPS-VGG weights (v0.1 vgg.pth)", LPIPS_VGG_URL)
        vgg = vgg16(weights=None)
        features = {k.removeprefix("features."): v for k, v in vgg_state.items() if k.startswith("features.")}
        try:
            vgg.features.load_state_dict(features)
            weights = [lin_state[f"lin{i}.model.1.weight"] for i in range(len(VGG_TAPS))]
        except (RuntimeError, KeyError) as err:
            raise UserError(
                f"{vgg_path} / {lpips_path}: not the VGG16 and LPIPS-VGG weights "
                f"({type(err).__name__}: {str(err).splitlines()[0][:120]})"
            ) from None
        for i, (w, c) in enumerate(zip(weights, VGG_CHANNELS, strict=True)):
            if w.numel() != c or (w < 0).any():
                raise UserError(f"{lpips_path}: lin{i} must hold {c} non-negative weights")
        return cls(vgg.features, weights)


def _read_weights(path: str | Path, what: str, url: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{what} not found at {path}; download {url} to that path (or point the setting at "
            "the file), or use another perceptual distance (encoder, classifier, none)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file: one line, never code
        raise UserError(
            f"cannot read {what} from {path} ({type(err).__name__}); download it again from {url}"
        ) from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict of {what}")
    return state
