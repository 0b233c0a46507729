"""`ogan-data-bench dataset=NAME` (or `python -m ogan_pl.tools.data_bench`): how many images/s the training DataLoader delivers.

Measures decoding on the fly (raw) and the decode-once cache, each after a warm-up, iterating the
same DataLoader that training uses (workers, pinned memory, batch size from the dataset config).
"""

import time

from omegaconf import DictConfig

from ogan_pl.registry.registries import DATASETS
from ogan_pl.run.cli import run
from ogan_pl.utils.nested import plain_config


def images_per_second(loader, batches: int, warmup: int, transfer=None, sync=None) -> float:
    """Batches of `loader` per second, each passed through `transfer` (e.g. to the device); `sync`
    waits for the device at the end of the timed window."""

    def endless():
        while True:
            yield from loader

    stream = endless()
    transfer = transfer or (lambda batch: batch)
    for _ in range(warmup):
        transfer(next(stream))
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(transfer(next(stream))["image"])
    if sync is not None:
        sync()
    return seen / (time.perf_counter() - start)


def bench(cfg: DictConfig) -> dict[str, float]:
    has_cache = "cache" in cfg.dataset
    modes = list(cfg.bench.modes) if has_cache else ["memory"]
    results = {}
    for mode in modes:
        overrides = {"cache": mode == "cache"} if has_cache else {}
        datamodule = DATASETS.build({**plain_config(cfg.dataset), **overrides}, "dataset")
        start = time.perf_counter()
        datamodule.setup("fit")
        setup_s = time.perf_counter() - start
        rate = images_per_second(datamodule.train_dataloader(), cfg.bench.batches, cfg.bench.warmup)
        results[mode] = rate
        print(
            f"{mode:>6}: {rate:10.0f} images/s  ({cfg.dataset.resolution}x{cfg.dataset.resolution}, "
            f"batch {datamodule.batch_size}, {datamodule.num_workers} workers; setup {setup_s:.1f} s)",
            flush=True,
        )
    return results


def main() -> None:
    """The `ogan-data-bench` console script."""
    run("bench", bench)


if __name__ == "__main__":
    main()
