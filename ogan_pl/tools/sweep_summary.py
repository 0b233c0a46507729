"""`ogan-sweep-summary SWEEP_DIR [SWEEP_DIR ...]` (or `python -m ogan_pl.tools.sweep_summary`): the
jobs of one or more multirun directories as a Markdown table, grouped by what sets them apart
(the seed ignored), each cell the mean and spread over seeds."""

import argparse
import sys
from pathlib import Path

from ogan_pl.run.cli import run_plain
from ogan_pl.run.exits import exit_with
from ogan_pl.run.sweeps import collect_results, shared_overrides

#: (a key of result.json's "metrics", or g_iter / kimg; column title; format)
TABLE_COLUMNS = [
    ("metrics/recon_classifier_accuracy", "recon label acc", ".3f"),
    ("metrics/is_classifier", "class-IS", ".2f"),
    ("metrics/fd_classifier", "classifier FD", ".2f"),
    ("metrics/prdc_classifier_precision", "precision", ".3f"),
    ("metrics/prdc_classifier_density", "density", ".3f"),
    ("metrics/prdc_classifier_recall", "recall", ".3f"),
    ("metrics/prdc_classifier_coverage", "coverage", ".3f"),
    ("metrics/ppl_classifier", "PPL (z)", ".1f"),
    ("metrics/ppl_classifier_encoder", "PPL (encoder)", ".1f"),
    ("metrics/encoder/rho", "rho", ".3f"),
    ("metrics/health/recon_ratio", "recon ratio", ".3f"),
    ("metrics/health/diversity", "recon spread", ".3f"),
    ("metrics/health/linear_probe", "linear probe", ".3f"),
    ("metrics/health/knn1", "1-NN", ".3f"),
    ("encoder_watch/best_g_iter", "best encoder at", ".0f"),
    ("encoder_watch/alarms", "health alarms", ".0f"),
    ("g_iter", "G iterations", ".0f"),
    ("progress/images_per_sec", "images/s", ".0f"),
]


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def seed_groups(records: list[dict], over: tuple[str, ...] = ("seed",)) -> dict[str, list[dict]]:
    """Finished records grouped by their overrides, ignoring the `over` keys (the seed) and the
    overrides every record shares; each group is named by what sets it apart ("" when nothing)."""
    finished = [r for r in records if r.get("status") == "finished"]
    shared = shared_overrides(finished)
    groups: dict[str, list[dict]] = {}
    for r in finished:
        name = " ".join(o for o in r.get("overrides", []) if o not in shared and _override_key(o) not in over)
        groups.setdefault(name, []).append(r)
    return groups


def _value(record: dict, key: str) -> float | None:
    return record.get(key) if key in ("g_iter", "kimg") else record.get("metrics", {}).get(key)


def mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, var**0.5


def seed_table(records: list[dict], columns=TABLE_COLUMNS) -> str:
    """A Markdown table: one row per group of seeds, each cell mean +- standard deviation."""
    groups = seed_groups(records)
    head = ["runs", "seeds", *[title for _, title, _ in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, group in groups.items():
        cells = [f"`{name}`" if name else "(shared settings)", str(len(group))]
        for key, _, fmt in columns:
            values = [v for v in (_value(r, key) for r in group) if v is not None]
            if not values:
                cells.append("")
                continue
            mean, spread = mean_spread([float(v) for v in values])
            cells.append(f"{mean:{fmt}} ± {spread:{fmt}}" if len(values) > 1 else f"{mean:{fmt}}")
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in records if r.get("status") != "finished"]
    if failed:
        lines.append(
            f"\n{len(failed)} job(s) without a result: " + ", ".join(r.get("output_dir", r["job"]) for r in failed)
        )
    return "\n".join(lines)


def summarize(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ogan-sweep-summary", description="Mean and spread over seeds of one or more multirun directories."
    )
    parser.add_argument("sweep_dirs", nargs="+", help="multirun directories (each holds one folder per job)")
    args = parser.parse_args(argv)
    records = []
    for sweep_dir in args.sweep_dirs:
        if not Path(sweep_dir).is_dir():
            exit_with(f"{sweep_dir} is not a directory; pass a multirun directory (hydra.sweep.dir)")
        records += collect_results(sweep_dir)
    print(seed_table(records))
    return 0


def main() -> None:
    """The `ogan-sweep-summary` console script."""
    sys.exit(run_plain(summarize, "ogan-sweep-summary"))


if __name__ == "__main__":
    main()
