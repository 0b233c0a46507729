"""A small CNN classifier of a labelled dataset: the feature network of the classifier-based metrics
(`fd_classifier`, `kid_classifier`, `is_classifier`, `recon_classifier`; ogan_pl.metrics.classifier_metrics).

Inception features need weights that cannot be had offline and judge 28x28 digits poorly; a
classifier trained on the dataset's own training split needs neither. It is trained on first use
and cached under `paths.cache_dir/classifiers/`, keyed by the dataset's identity and the
classifier's own hyper-parameters; its held-out accuracy is stored with it. The cache file is read
like a checkpoint (weights only, never code); a corrupt or mismatched file is retrained, never trusted.

    ogan-train-classifier dataset=digits      # train (or load) and print its held-out accuracy
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ogan_pl.data.convert import to_model_range
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_torch_save
from ogan_pl.utils.loaders import first_items

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class ClassifierSpec:
    """The classifier's hyper-parameters (part of its cache key)."""

    width: int = 16
    feature_dim: int = 128
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    max_shift: float = 0.1  # random translation, as a fraction of the image side (augmentation)
    seed: int = 0


class DomainClassifier(nn.Module):
    """Three conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool), a 4x4 pool, then the
    `feature_dim`-d penultimate layer (the metrics' features) and the class logits."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, feature_dim: int = 128):
        super().__init__()
        layers, c = [], channels
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
            c = out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.features = nn.Sequential(nn.Linear(c * 16, feature_dim), nn.ReLU())
        self.logits = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images in [-1, 1] -> (features (B, feature_dim), logits (B, num_classes))."""
        features = self.features(self.body(x))
        return features, self.logits(features)


def _shift(x: Tensor, max_shift: float, generator: torch.Generator) -> Tensor:
    """Random per-image translation by up to max_shift of the side (background -1 fills in)."""
    if max_shift <= 0:
        return x
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = (torch.rand(len(x), 2, generator=generator) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def accuracy(model: DomainClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(to_model_range(images[i : i + batch_size]))[1]
        correct += (logits.argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(datamodule, spec: ClassifierSpec) -> tuple[DomainClassifier, dict]:
    """Fit on the training split, measure on the held-out split. -> (model in eval mode, record)."""
    start = time.perf_counter()
    train, holdout = first_items(datamodule.train_set), first_items(datamodule.holdout_set)
    train_images, train_labels = train["image"], train["label"].long()
    holdout_images, holdout_labels = holdout["image"], holdout["label"].long()
    generator = torch.Generator().manual_seed(spec.seed)
    torch.manual_seed(spec.seed)
    model = DomainClassifier(datamodule.channels, datamodule.num_classes, spec.width, spec.feature_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    steps = spec.epochs * ((len(train_images) + spec.batch_size - 1) // spec.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=spec.lr, total_steps=steps)
    model.train()
    with torch.enable_grad():  # also when a metric asks for the classifier inside torch.no_grad()
        for _ in range(spec.epochs):
            order = torch.randperm(len(train_images), generator=generator)
            for i in range(0, len(order), spec.batch_size):
                idx = order[i : i + spec.batch_size]
                x = _shift(to_model_range(train_images[idx]), spec.max_shift, generator)
                loss = F.cross_entropy(model(x)[1], train_labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()
    record = {
        "holdout_accuracy": accuracy(model, holdout_images, holdout_labels),
        "train_accuracy": accuracy(model, train_images[:5000], train_labels[:5000]),
        "n_train": len(train_images),
        "n_holdout": len(holdout_images),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return model, record


def cache_key(datamodule, spec: ClassifierSpec) -> dict:
    return {
        "version": CACHE_VERSION,
        "dataset": datamodule.identity(),
        "num_classes": datamodule.num_classes,
        "spec": asdict(spec),
    }


def cache_path(cache_dir: str | Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / "classifiers" / f"{digest}.pt"


def _load_cached(path: Path, key: dict, datamodule, spec: ClassifierSpec) -> tuple[DomainClassifier, dict] | None:
    """The cached classifier, or None when absent, corrupt or made for something else."""
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") != key:
            raise ValueError("its key does not match this dataset and classifier")
        model = DomainClassifier(datamodule.channels, datamodule.num_classes, spec.width, spec.feature_dim)
        model.load_state_dict(stored["state_dict"])
        record = {k: stored["record"][k] for k in ("holdout_accuracy", "train_accuracy", "n_train", "n_holdout")}
    except Exception as err:  # noqa: BLE001 - a file from elsewhere: never trusted, retrained
        log.warning(
            "ignoring the cached classifier %s (%s: %s); training a new one",
            path,
            type(err).__name__,
            str(err).splitlines()[0][:120] if str(err) else "",
        )
        return None
    return model.eval(), record


def load_or_train(
    datamodule, cache_dir: str | Path, spec: ClassifierSpec = ClassifierSpec()
) -> tuple[DomainClassifier, dict]:
    """The dataset's classifier from the cache, or trained now and cached. -> (model, record with
    the file, whether it was cached, and its accuracies)."""
    if getattr(datamodule, "num_classes", None) is None:
        raise UserError(
            f"the classifier metrics need a labelled dataset (digits, mnist, cifar10, shapes); "
            f"{type(datamodule).__name__} has no labels"
        )
    datamodule = datamodule.reference()  # a subset of a dataset is judged by the whole dataset's classifier
    datamodule.setup()
    key = cache_key(datamodule, spec)
    path = cache_path(cache_dir, key)
    cached = _load_cached(path, key, datamodule, spec)
    if cached is not None:
        model, record = cached
        return model, {**record, "file": str(path), "cached": True}
    log.info("training the %s classifier for the classifier metrics (cached in %s)", type(datamodule).__name__, path)
    with torch.random.fork_rng(devices=[]):  # a metric never changes the training run's random stream
        model, record = train_classifier(datamodule, spec)
    atomic_torch_save({"key": key, "state_dict": model.state_dict(), "record": record}, path)
    log.info(
        "classifier: held-out accuracy %.4f (%d training images, %.1f s)",
        record["holdout_accuracy"],
        record["n_train"],
        record["train_seconds"],
    )
    return model, {**record, "file": str(path), "cached": False}
