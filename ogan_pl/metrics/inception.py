"""The Inception-v3 feature extractor of FID/KID/IS, as torch-fidelity and the TF reference run it.

One network serves all three metrics: each batch goes through it once and yields the 2048-d
pool features (FID, KID) and the 1008 unbiased logits (IS).
"""

import hashlib
import logging
import socket
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchmetrics.image.fid import NoTrainInceptionV3

from ogan_pl.utils.errors import UserError

log = logging.getLogger(__name__)

WEIGHTS_URL = URL_INCEPTION_V3
WEIGHTS_NAME = WEIGHTS_URL.rsplit("/", 1)[1]  # weights-inception-2015-12-05-6726825d.pth
WEIGHTS_SHA256_PREFIX = "6726825d"
DOWNLOAD_TIMEOUT_S = 60


def hub_weights_path() -> Path:
    """Where torch.hub (and torch-fidelity) keep the weights: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def _how_to_supply() -> str:
    return (
        f"download {WEIGHTS_URL} to {hub_weights_path()} (the torch hub cache), "
        "or pass metrics.inception_weights=PATH to a local copy"
    )


def find_inception_weights(path: str | None = None, download: bool = True) -> Path:
    """The weights file: `path` if given, else the torch hub cache, downloading it there if allowed."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(
                f"metrics.inception_weights={path} does not exist; point it at {WEIGHTS_NAME} (from {WEIGHTS_URL})"
            )
        return path
    cached = hub_weights_path()
    if cached.is_file():
        return cached
    if not download:
        raise UserError(f"Inception weights {WEIGHTS_NAME} not found and metrics.download=false: " + _how_to_supply())
    log.info("downloading %s to %s", WEIGHTS_URL, cached)
    cached.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(WEIGHTS_URL, str(cached), hash_prefix=WEIGHTS_SHA256_PREFIX)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a hash mismatch a RuntimeError
        raise UserError(
            f"Inception weights {WEIGHTS_NAME} not found and the download failed "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no network?'}): " + _how_to_supply()
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return cached


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_weights_file(path: Path) -> None:
    """torch-fidelity unpickles the file with weights_only=False; make sure it is a plain state dict first."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise UserError(
            f"cannot read the Inception weights {path} ({type(err).__name__}); "
            f"replace it with {WEIGHTS_NAME} from {WEIGHTS_URL}"
        ) from None
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise UserError(f"{path} is not the Inception-v3 state dict {WEIGHTS_NAME}; get it from {WEIGHTS_URL}")


class InceptionFeatures(nn.Module):
    """uint8 images (N, 3, H, W) -> (pool features (N, 2048), unbiased logits (N, 1008)), float32.

    antialias=False (the default) resizes to 299 with torch-fidelity's TF1-compatible bilinear
    resize, so scores compare with torch-fidelity, StyleGAN2-ADA and the TF reference.
    """

    num_features = 2048
    num_logits = 1008

    def __init__(self, weights: str | Path, antialias: bool = False):
        super().__init__()
        weights = Path(weights)
        _check_weights_file(weights)
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(weights),
                antialias=antialias,
            )
        except RuntimeError as err:  # wrong keys or shapes
            raise UserError(
                f"{weights} does not fit Inception-v3 ({str(err).splitlines()[0]}); "
                f"get {WEIGHTS_NAME} from {WEIGHTS_URL}"
            ) from None
        # What the features depend on; part of the real-statistics cache key.
        self.cache_key = (
            f"inception-v3-compat/sha256={file_sha256(weights)[:16]}/"
            f"resize={'antialias' if antialias else 'tf1-bilinear'}"
        )
        self.protocol = {
            "network": "Inception-v3 (torch-fidelity inception-v3-compat)",
            "weights": weights.name,
            "resize": "299x299, "
            + ("antialiased bilinear (not TF-comparable)" if antialias else "TF1-compatible bilinear (torch-fidelity)"),
        }

    @classmethod
    def load(cls, weights: str | Path | None = None, download: bool = True, antialias: bool = False):
        """From `weights` (metrics.inception_weights) or the torch hub cache; see find_inception_weights."""
        return cls(find_inception_weights(weights, download), antialias)

    @torch.no_grad()
    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features, logits = self.net._torch_fidelity_forward(images)
        return features, logits
