"""`ogan-bench-short-runs` (or `python -m ogan_pl.tools.bench_short_runs`): a short run stays short.

Runs `train.py model=M dataset=shapes dataset.resolution=64 train.steps=3 dataset.batch_size=8
logger=none` for every architecture config (conf/model/) with the default callbacks, as a user's smoke
test of a config would, and reports each run's wall time and the time from its last training step to
its exit (the end-of-run work: grids, the metrics it can afford, the summary). Exits 1 when a run takes
longer than `--limit` seconds (60: the target on a 2-core CPU). Timing is noisy on a busy machine:
run it with nothing else running.

    ogan-bench-short-runs [--models dcgan resnet] [--limit 60] [--out short_runs.json]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ogan_pl.run.cli import CONF_DIR, run_plain
from ogan_pl.run.exits import exit_with

ARGS = ["dataset=shapes", "dataset.resolution=64", "train.steps=3", "dataset.batch_size=8", "logger=none"]
LAST_STEP = "`Trainer.fit` stopped"


def models() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if not p.stem.startswith("_"))


def time_run(model: str, workdir: Path) -> dict:
    run_dir = workdir / model
    command = [
        sys.executable,
        "-m",
        "ogan_pl.run.train",
        f"model={model}",
        *ARGS,
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={workdir / 'cache'}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    start = time.monotonic()
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last_step, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if LAST_STEP in line and last_step is None:
            last_step = time.monotonic()
    code = proc.wait()
    end = time.monotonic()
    skipped = [m.group(1) for line in lines if (m := re.search(r"end of run: (.+?) skipped", line))]
    return {
        "model": model,
        "exit_code": code,
        "wall_s": round(end - start, 1),
        "after_last_step_s": round(end - last_step, 1) if last_step else None,
        "skipped": skipped,
        "tail": "".join(lines[-5:]) if code else "",
    }


def time_short_runs(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="architecture configs (default: all)")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a run may take")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models or []) - set(models()))
    if unknown:
        exit_with(f"--models {' '.join(unknown)}: no such config in conf/model/ ({', '.join(models())})")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models or models():
            result = time_run(model, Path(tmp))
            results.append(result)
            print(
                f"{model:<10} exit {result['exit_code']}  wall {result['wall_s']:6.1f} s  after the last step "
                f"{result['after_last_step_s']} s  skipped: {', '.join(result['skipped']) or '-'}",
                flush=True,
            )
            if result["exit_code"]:
                print(result["tail"], file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps({"limit_s": args.limit, "args": ARGS, "runs": results}, indent=2))
    slow = [r["model"] for r in results if r["exit_code"] or r["wall_s"] > args.limit]
    if slow:
        print(f"over {args.limit:.0f} s or failed: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """The `ogan-bench-short-runs` console script."""
    sys.exit(run_plain(lambda: time_short_runs(sys.argv[1:]), "ogan-bench-short-runs"))


if __name__ == "__main__":
    main()
