"""Editing directions for a trained model: fitted on codes of labelled real images (the dataset's
labels or factors, or a user's `file,attribute` CSV) or found without labels, saved as a small
file with its provenance and read back as safely as a checkpoint (weights-only, checked).

The math is in ogan_pl.method.directions; this module gathers the codes and labels and keeps the files.
"""

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ogan_pl.checkpoints import local_path
from ogan_pl.data.shapes import FACTORS
from ogan_pl.method.directions import (
    METHODS,
    SUPERVISED,
    above_median,
    class_mean_direction,
    linear_direction,
    pca_directions,
    sefa_directions,
)
from ogan_pl.registry.values import check_plain
from ogan_pl.utils.errors import UserError
from ogan_pl.utils.io import atomic_torch_save
from ogan_pl.utils.text import printable

FORMAT = "ogan_pl.directions/1"


def dataset_labels(batch: dict, attribute: str) -> np.ndarray:
    """The labels of a batch of dataset items: `label`, or a shapes factor (x, y, scale, rotation,
    hue), split at its median into "low" and "high"."""
    if attribute == "label":
        if "label" not in batch:
            raise UserError("attribute=label: this dataset has no labels; give labels=CSV with your own")
        return batch["label"].numpy()
    if attribute in FACTORS and "factors" in batch:
        return np.where(above_median(batch["factors"][:, FACTORS.index(attribute)]).numpy(), "high", "low")
    raise UserError(
        f"attribute={attribute!r}: the dataset has label"
        + (f" and the factors {', '.join(FACTORS[1:])}" if "factors" in batch else "")
    )


def _match(labels: np.ndarray, value) -> object:
    """`value` (from the command line, a string or a number) as it appears among the labels."""
    for label in np.unique(labels):
        if str(label) == str(value):
            return label
    raise UserError(f"target/source {value!r} is not among the labels ({', '.join(map(str, np.unique(labels)))})")


def fit_directions(
    model,
    method: str,
    codes: Tensor | None = None,
    labels: np.ndarray | None = None,
    target=None,
    source=None,
    k: int = 5,
    use_ema: bool = True,
) -> tuple[Tensor, list[str]]:
    """-> (directions (n, z_dim), a name for each)."""
    if method in SUPERVISED:
        if codes is None or labels is None or target is None:
            raise UserError(f"method={method} needs labelled images and target=LABEL (or target=all)")
        if str(target) == "all":  # one direction to each label, in the labels' order
            found = [
                fit_directions(model, method, codes, labels, label, source, k, use_ema)
                for label in np.unique(labels)
                if source is None or str(label) != str(source)
            ]
            return torch.cat([d for d, _ in found]), [name for _, names in found for name in names]
        target = _match(labels, target)
        source = _match(labels, source) if source is not None else None
        if source is not None and str(source) == str(target):
            raise UserError(
                f"source={source} is the target: a direction from a class to itself is zero; give "
                "another source, or none (then: from all the other images)"
            )
        ids = torch.as_tensor(np.searchsorted(np.unique(labels), labels))
        target_id = int(np.searchsorted(np.unique(labels), target))
        source_id = int(np.searchsorted(np.unique(labels), source)) if source is not None else None
        if method == "class_mean":
            direction = class_mean_direction(codes, ids, target_id, source_id)
        else:
            if source is not None:
                keep = (ids == target_id) | (ids == source_id)
                codes, ids = codes[keep], ids[keep]
            direction = linear_direction(codes, ids, target_id)
        name = f"{method}:{source if source is not None else 'rest'}->{target}"
        return direction[None], [name]
    if method in ("pca", "sefa") and not 1 <= k <= model.z_dim:
        raise UserError(f"k={k}: the codes have {model.z_dim} entries, so give k from 1 to {model.z_dim}")
    if method == "pca":
        if codes is None:
            raise UserError("method=pca needs images to encode")
        found = pca_directions(codes, k)
        return found, [f"pca:{i}" for i in range(len(found))]
    if method == "sefa":
        found = sefa_directions(model.first_layer_weight(use_ema).cpu(), k)
        return found, [f"sefa:{i}" for i in range(len(found))]
    raise UserError(f"method={method!r} must be one of: {', '.join(METHODS)}")


def check_directions(directions: Tensor, names: list, where: str, z_dim: int | None = None) -> None:
    """What a directions file holds, checked the same way when it is written and when it is read:
    n >= 1 real unit vectors of the codes' size, finite, one name each."""
    if not directions.is_floating_point():
        raise UserError(f"{where} holds directions of type {directions.dtype}; they must be real numbers (float)")
    if directions.ndim != 2 or (z_dim is not None and directions.shape[1] != z_dim):
        raise UserError(
            f"{where} holds directions of shape {tuple(directions.shape)}; this model's codes have {z_dim} entries"
        )
    if len(directions) == 0:
        raise UserError(f"{where} holds no directions; write it again with ogan-directions")
    if len(names) != len(directions):
        raise UserError(
            f"{where} holds {len(directions)} directions but {len(names)} names; write it again with ogan-directions"
        )
    if not torch.isfinite(directions).all():
        raise UserError(f"{where}: its directions are not finite")
    norms = torch.linalg.vector_norm(directions.double(), dim=1)
    if not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
        shown = ", ".join(f"{n:.3g}" for n in norms[:5]) + (f", ... ({len(norms)} in all)" if len(norms) > 5 else "")
        raise UserError(
            f"{where}: its directions must be unit vectors (norms {shown}); write it again with ogan-directions"
        )


def model_fingerprint(model) -> str:
    """A short hash of the model's weights: a directions file records the model it was fitted on, and
    a tool that uses it on another model says so."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def fitted_elsewhere(provenance: dict, model) -> str | None:
    """A one-line warning when the directions were fitted on another model than `model` (None if the
    same, or if the file is older than the record)."""
    recorded = provenance.get("model")
    if recorded is None or recorded == model_fingerprint(model):
        return None
    return (
        f"these directions were fitted on another model (ckpt {printable(str(provenance.get('ckpt')))}, generator "
        f"iteration {printable(str(provenance.get('g_iter')))}): they may not mean the same in this one's codes"
    )


def save_directions(path: str | Path, directions: Tensor, names: list[str], provenance: dict) -> Path:
    check_directions(directions, names, f"the directions for {path}")
    check_plain(provenance, "provenance")
    return atomic_torch_save(
        {
            "format": FORMAT,
            "directions": directions.float().contiguous(),
            "names": list(names),
            "provenance": provenance,
        },
        path,
    )


def load_directions(path: str | Path, z_dim: int) -> tuple[Tensor, list[str], dict]:
    """(directions (n, z_dim), names, provenance) from a file written by save_directions; anything
    else is refused with one line (weights-only unpickling: tensors and plain values, no code)."""
    path = local_path(path, ".directions.pt", key="directions")
    if not path.is_file():
        raise UserError(f"directions={path} not found; write one with ogan-directions")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a stranger's file: whatever torch raises, one line
        raise UserError(
            f"cannot read directions file {path} ({type(err).__name__}); is it from ogan-directions?"
        ) from None
    if not (
        isinstance(data, dict)
        and data.get("format") == FORMAT
        and isinstance(data.get("directions"), Tensor)
        and isinstance(data.get("names"), list)
        and isinstance(data.get("provenance"), dict)
    ):
        raise UserError(f"{path} is not a directions file written by ogan-directions ({FORMAT})")
    directions, names = data["directions"], data["names"]
    check_directions(directions, names, str(path), z_dim)
    check_plain(data["provenance"], "provenance")
    check_plain(names, "names")
    return directions.float(), [printable(str(n)) for n in names], data["provenance"]  # names from a stranger
