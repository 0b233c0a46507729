"""The distance a hybrid inversion compares images with, by its setting's name (`perceptual=`): one
builder for `ogan-invert` and the inversion metric."""

from ogan_pl.method.perceptual import LPIPS, FeatureDistance
from ogan_pl.metrics.domain_classifier import ClassifierSpec, load_or_train
from ogan_pl.utils.errors import UserError

PERCEPTUAL = ("encoder", "classifier", "lpips", "none")


def build_perceptual(
    kind: str,
    model,
    datamodule=None,
    cache_dir: str = ".cache/ogan_pl",
    lpips_vgg: str | None = None,
    lpips_weights: str | None = None,
    classifier: dict | None = None,
):
    """The `perceptual` argument of OGAN.invert for a setting's name: "encoder" (E's features), None
    ("none"), or a distance module on the model's device (the domain classifier's features, LPIPS)."""
    if kind == "none":
        return None
    if kind == "encoder":
        return "encoder"
    if kind == "classifier":
        if getattr(datamodule, "num_classes", None) is None:
            raise UserError(
                "perceptual=classifier needs the checkpoint's dataset to be labelled (digits, mnist, "
                "cifar10, shapes); use perceptual=encoder or lpips"
            )
        net, _ = load_or_train(datamodule, cache_dir, ClassifierSpec(**(classifier or {})))
        return FeatureDistance.of_convolutions(net.to(model.device).eval())
    if kind == "lpips":
        return LPIPS.from_files(lpips_vgg or "", lpips_weights or "").to(model.device)
    raise UserError(f"perceptual={kind!r} must be one of: {', '.join(PERCEPTUAL)}")
