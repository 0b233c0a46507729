"""`ogan-bench-sharing --ckpt PATH [--policies auto,2,1]`: how the CPU thread policy (`cpu_threads`)
holds up when the machine is shared. Each policy runs `ogan-invert` and a short training

- alone,
- beside a one-core busy loop (`python -c "while True: pass"`, standing for a browser or another job),
- twice at once,

and the table gives the work's speed (inversion: seconds of the inversion loop, from inversions.jsonl;
training: images/s over the last logging interval, from result.json), and each case's slowdown
against the first policy alone. One JSON line per case goes to `--out`. Nothing else may run meanwhile.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ogan_pl.run.cli import run_plain
from ogan_pl.run.exits import exit_with
from ogan_pl.utils.io import append_jsonl, now_iso

CASES = ("alone", "beside a busy loop", "two at once")


@contextlib.contextmanager
def busy_loop(on: bool):
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        time.sleep(0.5 if on else 0)
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def invert_command(args, policy: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ogan_pl.tools.invert",
        f"ckpt={args.ckpt}",
        f"input={args.work / 'images'}",
        f"output={out}",
        f"steps={args.steps}",
        "device=cpu",
        f"cpu_threads={policy}",
    ]


def train_command(args, policy: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ogan_pl.run.train",
        f"hydra.run.dir={out}",
        f"train.steps={args.train_steps}",
        "logger=none",
        "callbacks.quality=null",
        "callbacks.images=null",
        "callbacks.encoder_watch=null",
        "trainer.log_every_n_steps=50",
        "trainer.accelerator=cpu",
        f"cpu_threads={policy}",
    ]


def invert_seconds(out: Path) -> float:
    lines = [json.loads(line) for line in (out / "inversions.jsonl").read_text().splitlines()]
    return sum(line["ms_per_image"] for line in lines) / 1000


def train_speed(out: Path) -> float:
    return json.loads((out / "result.json").read_text())["metrics"]["progress/images_per_sec"]


def run_case(args, task: str, policy: str, case: str, index: int) -> float:
    """The work's measure for one case (the mean of the two runs when two run at once)."""
    build, measure = (invert_command, invert_seconds) if task == "invert" else (train_command, train_speed)
    outs = [args.work / f"{task}_{policy}_{index}_{n}" for n in range(2 if case == "two at once" else 1)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the policy decides
    with busy_loop(case == "beside a busy loop"):
        processes = [
            subprocess.Popen(
                build(args, policy, out),
                env=env,
                cwd=args.work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for out in outs
        ]
        for process in processes:
            _, err = process.communicate()
            if process.returncode != 0:
                last = (err.strip().splitlines() or ["no output"])[-1]
                exit_with(f"{task} with cpu_threads={policy} ({case}) failed: {last}")
    return sum(measure(out) for out in outs) / len(outs)


def export_images(args) -> None:
    subprocess.run(
        [sys.executable, "-m", "ogan_pl.tools.export_images", "digits", str(args.work / "all"), "--split", "holdout"],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=args.work,
    )
    (args.work / "images").mkdir()
    for n, path in enumerate(sorted((args.work / "all").rglob("*.png"))[: args.images]):
        os.link(path, args.work / "images" / f"{n:04d}.png")


def main(argv: list[str] | None = None) -> None:
    """The `ogan-bench-sharing` console script."""
    run_plain(lambda: bench(argv), "ogan-bench-sharing")


def bench(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="ogan-bench-sharing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="a digits checkpoint for ogan-invert")
    parser.add_argument("--policies", default=f"auto,{os.cpu_count()},1", help="cpu_threads values, comma-separated")
    parser.add_argument("--tasks", default="invert,train", help="invert, train or both")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--steps", type=int, default=100, help="inversion steps")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench_sharing.jsonl"))
    args = parser.parse_args(argv)
    if not args.ckpt.is_file():
        exit_with(f"--ckpt {args.ckpt} is not a file; give a checkpoint of a digits model")
    tasks = [t for t in args.tasks.split(",") if t]
    if not tasks or set(tasks) - {"invert", "train"}:
        exit_with(f"--tasks {args.tasks}: give invert, train or invert,train")
    policies = [p for p in args.policies.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="ogan_bench_sharing_") as work:
        args.work = Path(work)
        export_images(args)
        for task in tasks:
            unit = "s" if task == "invert" else "img/s"
            print(
                f"\n{task}: "
                + (
                    f"{args.images} digits, {args.steps} steps"
                    if task == "invert"
                    else f"{args.train_steps} iterations of the default run"
                )
                + f" ({unit})"
            )
            print("| cpu_threads | " + " | ".join(CASES) + " |\n|---|---|---|---|")
            base = None
            for policy in policies:
                cells = []
                for case in CASES:
                    value = run_case(args, task, policy, case, len(cells))
                    base = base or value
                    slowdown = value / base if task == "invert" else base / value
                    cells.append(f"{value:.1f} ({slowdown:.1f}x)")
                    append_jsonl(
                        args.out,
                        {
                            "task": task,
                            "cpu_threads": policy,
                            "case": case,
                            unit: round(value, 2),
                            "slowdown": round(slowdown, 2),
                            "cores": os.cpu_count(),
                            "images": args.images,
                            "steps": args.steps,
                            "train_steps": args.train_steps,
                            "time": now_iso(),
                        },
                    )
                print(f"| {policy} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
