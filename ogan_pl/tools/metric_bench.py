"""`ogan-metric-bench [--n 10000 50000] [--dim 2048 128] [--device cuda]` (or `python -m
ogan_pl.tools.metric_bench`): wall time of precision / recall / density / coverage for N real and
N generated feature vectors (random Gaussian features: the time depends on N, D and the chunk only).

The real k-NN radii are computed once per run of a metric and reused by every later evaluation;
both times are shown: the first evaluation (radii included) and a later one.
"""

import argparse
import sys
import time

import torch

from ogan_pl.metrics.prdc import knn_radii, prdc
from ogan_pl.run.cli import run_plain
from ogan_pl.run.exits import exit_with
from ogan_pl.utils.device import synchronize


def time_prdc(n: int, dim: int, device: torch.device, chunk: int, seed: int = 0) -> dict[str, float]:
    """Seconds for the real radii and for one evaluation given them, on fresh Gaussian features."""
    gen = torch.Generator().manual_seed(seed)
    real, fake = (torch.randn(n, dim, generator=gen).to(device) for _ in range(2))
    synchronize(device)
    start = time.perf_counter()
    radii = knn_radii(real, (3, 5), chunk)
    synchronize(device)
    middle = time.perf_counter()
    scores = prdc(real, fake, 3, 5, chunk, radii)
    synchronize(device)
    end = time.perf_counter()
    return {"radii_s": middle - start, "evaluation_s": end - middle, **scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ogan-metric-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10000], help="real = generated feature vectors")
    parser.add_argument("--dim", type=int, nargs="+", default=[2048], help="feature dimensions (Inception: 2048)")
    parser.add_argument("--chunk", type=int, default=2048, help="rows of pairwise distances at a time")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if min(args.n) < 6 or min(args.dim) < 1 or args.chunk < 1:
        exit_with("--n must be at least 6 (k = 5 neighbours), --dim and --chunk at least 1")
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as err:
        exit_with(f"--device {args.device} is not available here ({str(err).splitlines()[0]}); use --device cpu")
    print("| N real = N generated | D | device | chunk | radii (s) | evaluation (s) | first evaluation (s) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.n:
        for dim in args.dim:
            t = time_prdc(n, dim, device, args.chunk)
            print(
                f"| {n:,} | {dim} | {device} | {args.chunk} | {t['radii_s']:.1f} | {t['evaluation_s']:.1f} | "
                f"{t['radii_s'] + t['evaluation_s']:.1f} |",
                flush=True,
            )
    return 0


def cli() -> None:
    """The `ogan-metric-bench` console script."""
    sys.exit(run_plain(main, "ogan-metric-bench"))


if __name__ == "__main__":
    cli()
