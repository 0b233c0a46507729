"""After a multirun: one summary of every job's final metrics, in the sweep directory.

Each job (train.py or evaluate.py) leaves `result.json` in its own directory; this Hydra
callback reads them back once all jobs are done, so it works the same whichever launcher ran
the jobs (in this process, ddp_spawn, or SLURM through submitit).
"""

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ogan_pl.utils.io import atomic_write

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"


def write_result(out_dir: str | Path, record: dict, status: str = "finished") -> dict:
    """Leave a job's final record (its status, its command-line overrides) in its directory, for the
    summary. status: finished, or failed (then record holds the one-line error)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    record = {"status": status, **record, "overrides": overrides, "output_dir": str(out_dir)}
    atomic_write(Path(out_dir) / RESULT_FILE, lambda f: f.write(json.dumps(record, indent=2).encode()))
    return record


def _job_order(path: Path):
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def final_evaluations(job_dir: Path, g_iter) -> dict[str, float]:
    """What `evaluate.py` measured later on a job's final checkpoint (its lines of
    checkpoints/metrics.jsonl that name a checkpoint of the same generator iteration), as
    result.json keys ("metrics/<score>"); a later line wins."""
    path = job_dir / "checkpoints" / "metrics.jsonl"
    scores: dict[str, float] = {}
    if g_iter is None or not path.is_file():
        return scores
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a killed job
            continue
        if isinstance(entry, dict) and entry.get("ckpt") and entry.get("g_iter") == g_iter:
            scores.update({f"metrics/{k}": v for k, v in (entry.get("metrics") or {}).items()})
    return scores


def collect_results(sweep_dir: str | Path) -> list[dict]:
    """One record per job directory: its status (finished, failed with its error, or "no result" when
    the job died without a word: killed, out of memory), overrides, length and final metrics (the
    training run's, and those evaluate.py measured afterwards on its final checkpoint)."""
    records = []
    for job_dir in sorted((p for p in Path(sweep_dir).iterdir() if p.is_dir()), key=_job_order):
        result_file = job_dir / RESULT_FILE
        if result_file.is_file():
            records.append({"job": job_dir.name, "status": "finished", **json.loads(result_file.read_text())})
            records[-1]["job"] = job_dir.name
            later = final_evaluations(job_dir, records[-1].get("g_iter"))
            if later:
                records[-1]["metrics"] = {**records[-1].get("metrics", {}), **later}
        elif (job_dir / ".hydra").is_dir() or (job_dir / "config.yaml").is_file():
            records.append({"job": job_dir.name, "status": "no result", "output_dir": str(job_dir)})
    return records


def shared_overrides(records: list[dict]) -> set[str]:
    """The overrides every record has (what the jobs of a sweep share)."""
    return set.intersection(*(set(r.get("overrides", [])) for r in records)) if records else set()


def write_summary(sweep_dir: str | Path, records: list[dict]) -> tuple[Path, Path]:
    """summary.jsonl (one record per job) and summary.csv (one row per job, one column per metric)."""
    sweep_dir = Path(sweep_dir)
    jsonl = atomic_write(
        sweep_dir / "summary.jsonl",
        lambda f: f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()),
    )
    metric_names = sorted({name for r in records for name in r.get("metrics", {})})
    rows = [
        {
            "job": r["job"],
            "status": r["status"],
            "error": r.get("error", ""),
            "overrides": " ".join(r.get("overrides", [])),
            "g_iter": r.get("g_iter", ""),
            **r.get("metrics", {}),
        }
        for r in records
    ]

    def write_csv(f):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=["job", "status", "error", "overrides", "g_iter", *metric_names])
        writer.writeheader()
        writer.writerows(rows)
        f.write(text.getvalue().encode())

    return jsonl, atomic_write(sweep_dir / "summary.csv", write_csv)


class SweepSummary(Callback):
    """Hydra callback (conf/hydra/default.yaml): writes the summary when a multirun ends, then exits
    non-zero if a job failed: 2 when every failure was bad input (a UserError), else 1."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = collect_results(sweep_dir) if sweep_dir.is_dir() else []
        if not records:
            return
        jsonl, _ = write_summary(sweep_dir, records)
        key = config.get("optimized_metric") or "metrics/fid"
        shared = shared_overrides(records)
        for r in records:  # only what differs between jobs: the swept values
            value = r.get("metrics", {}).get(key)
            shown = f"{key}={value:.4g}" if value is not None else r["status"]
            if "error" in r:
                shown += f": {r['error']}"
            swept = " ".join(o for o in r.get("overrides", []) if o not in shared)
            log.info("job %s  %s  %s", r["job"], swept, shown)
        log.info("sweep summary: %s (and summary.csv)", jsonl)
        failed = [r for r in records if r["status"] != "finished"]
        if failed:
            log.error("%d of %d jobs failed: %s", len(failed), len(records), ", ".join(r["job"] for r in failed))
            # SystemExit passes Hydra's callback guard (it catches Exception only)
            raise SystemExit(2 if all(r.get("user_error") for r in failed) else 1)
