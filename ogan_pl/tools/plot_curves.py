"""`ogan-plot-curves RUN_DIR [RUN_DIR ...] --out curves.png` (or `python -m ogan_pl.tools.plot_curves`):
the scores of each run's `checkpoints/metrics.jsonl` against the generator iteration, one panel per
score, one line per run, as one PNG (the health curves of docs/results.md). Needs matplotlib
(`pip install ogan_pl[plot]`)."""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from ogan_pl.run.cli import run_plain
from ogan_pl.run.exits import exit_with
from ogan_pl.utils.io import atomic_write

#: (score, panel title); a panel without data in any run is left out
PANELS = [
    ("recon_classifier_accuracy", "reconstructions keep the label"),
    ("health/rho", "rho(z, E(G(z))), fixed z"),
    ("health/recon_ratio", "||x - x_hat|| / ||x - x'|| (lower better)"),
    ("health/diversity", "spread of reconstructions / originals"),
    ("health/linear_probe", "linear probe on E(x)"),
    ("health/knn1", "1-NN on E(x)"),
    ("is_classifier", "class-IS of samples"),
    ("fd_classifier", "classifier FD (lower better, log scale)"),
]
LOG_SCALE = {"fd_classifier"}


def read_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """score -> [(generator iteration, value)], from every JSON line of the run, sorted by iteration
    (a later line for the same iteration and score replaces an earlier one)."""
    path = run_dir / "checkpoints" / "metrics.jsonl"
    if not path.is_file():
        exit_with(f"{run_dir} has no checkpoints/metrics.jsonl; pass a training run directory")
    points: dict[str, dict[int, float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            g_iter, scores = int(record["g_iter"]), dict(record["metrics"])
        except (ValueError, KeyError, TypeError):
            print(f"warning: {path}:{number} is not a results line; skipped", file=sys.stderr)
            continue
        for key, value in scores.items():
            if isinstance(value, (int, float)):
                points.setdefault(key, {})[g_iter] = float(value)
    return {key: sorted(values.items()) for key, values in points.items()}


def plot(runs: dict[str, dict[str, list[tuple[int, float]]]], out: Path, title: str | None = None) -> list[str]:
    """One PNG of every panel some run has; returns the panels drawn."""
    try:
        import matplotlib  # optional: only this tool needs it
    except ImportError:
        exit_with("ogan-plot-curves needs matplotlib: pip install 'ogan_pl[plot]' (or pip install matplotlib)")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")  # after the backend is chosen

    panels = [(key, name) for key, name in PANELS if any(key in curves for curves in runs.values())]
    if not panels:
        exit_with(f"none of the runs has any of the plotted scores ({', '.join(k for k, _ in PANELS)})")
    columns = min(4, len(panels))
    rows = (len(panels) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, (key, name) in zip(axes.flat, panels, strict=False):
        for label, curves in runs.items():
            if key in curves:
                x, y = zip(*curves[key], strict=True)
                ax.plot(x, y, label=label, linewidth=1.2)
        if key in LOG_SCALE:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("generator iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return [key for key, _ in panels]


def main(argv: list[str] | None = None) -> int:
    """The `ogan-plot-curves` console script."""
    return run_plain(lambda: plot_command(argv), "ogan-plot-curves")


def plot_command(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="ogan-plot-curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="training run directories (each with checkpoints/metrics.jsonl)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--labels", help="comma-separated names of the runs (default: the folder names)")
    parser.add_argument("--title", help="a title above the panels")
    args = parser.parse_args(argv)
    dirs = [Path(d) for d in args.run_dirs]
    for d in dirs:
        if not d.is_dir():
            exit_with(f"{d} is not a directory; pass training run directories")
    labels = args.labels.split(",") if args.labels else [d.name for d in dirs]
    if len(labels) != len(dirs):
        exit_with(f"--labels names {len(labels)} runs but {len(dirs)} run directories were given")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        exit_with(f"--out {out}: the plot is a PNG; give a path ending in .png")
    if out.is_dir() or not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        exit_with(f"--out {out}: cannot write there (a folder, or its folder is missing or read-only)")
    drawn = plot({label: read_curves(d) for label, d in zip(labels, dirs, strict=True)}, out, args.title)
    print(f"{out}: {len(dirs)} run(s), panels {', '.join(drawn)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
