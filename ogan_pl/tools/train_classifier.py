"""`ogan-train-classifier dataset=NAME` (or `python -m ogan_pl.tools.train_classifier`): train, or
load from the cache, the small classifier behind the classifier metrics, and print its accuracy."""

from omegaconf import DictConfig

from ogan_pl.metrics.domain_classifier import ClassifierSpec, load_or_train
from ogan_pl.registry.registries import DATASETS
from ogan_pl.run.cli import run
from ogan_pl.utils.nested import plain_config


def train_and_report(cfg: DictConfig) -> dict:
    datamodule = DATASETS.build(plain_config(cfg.dataset), "dataset")
    spec = ClassifierSpec(**plain_config(cfg.classifier))
    _, record = load_or_train(datamodule, cfg.paths.cache_dir, spec)
    print(
        f"classifier of {cfg.dataset._name_}: held-out accuracy {record['holdout_accuracy']:.4f} "
        f"({record['n_holdout']} images), training accuracy {record['train_accuracy']:.4f}; "
        f"{'loaded from' if record['cached'] else 'trained and saved to'} {record['file']}"
    )
    return record


def main() -> None:
    """The `ogan-train-classifier` console script."""
    run("classifier", train_and_report)


if __name__ == "__main__":
    main()
