"""Hydra multiruns: one directory and W&B run per job, a summary; DDP inside sweeps; Optuna; SLURM."""

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from tests.conftest import tiny_config
from tests.test_cli import TINY


def read_summary(sweep):
    return [json.loads(line) for line in (sweep / "summary.jsonl").read_text().splitlines()]


def test_multirun_jobs_have_own_dirs_wandb_runs_and_a_summary(run_script, tmp_path):
    run_script("train.py", "-m", *TINY, "train.steps=2", "loss.corr_weight=0,1", "seed=1,2", "hydra.sweep.dir=sweep")
    sweep = tmp_path / "sweep"
    summary = read_summary(sweep)
    assert [r["job"] for r in summary] == ["0", "1", "2", "3"]
    combos = set()
    for r in summary:
        job = sweep / r["job"]
        cfg = OmegaConf.load(job / "config.yaml")
        combos.add((cfg.loss.corr_weight, cfg.seed))
        assert f"loss.corr_weight={cfg.loss.corr_weight}" in r["overrides"] and f"seed={cfg.seed}" in r["overrides"]
        assert r["status"] == "finished" and r["g_iter"] == 2 and r["output_dir"] == str(job.resolve())
        assert math.isfinite(r["metrics"]["train/loss_g"])
        assert len(list(job.glob("wandb/offline-run-*"))) == 1  # its own W&B run, finished before the next
        assert json.loads((job / "result.json").read_text())["metrics"] == r["metrics"]
    assert combos == {(0, 1), (0, 2), (1, 1), (1, 2)}
    rows = (sweep / "summary.csv").read_text().splitlines()
    assert len(rows) == 5 and "train/loss_g" in rows[0]


def test_ddp_relaunching_inside_a_multirun_is_a_one_line_error(run_script):
    proc = run_script(
        "train.py",
        "-m",
        *TINY,
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "loss.corr_weight=0,1",
        "hydra.sweep.dir=sweep",
        check=False,
    )
    assert proc.returncode == 2
    assert "error: a Hydra multirun cannot re-launch DDP ranks" in proc.stderr
    assert "trainer.strategy=ddp_spawn" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ddp_spawn_multirun_two_jobs_of_two_processes(run_script, tmp_path):
    run_script(
        "train.py",
        "-m",
        *TINY,
        "train.steps=3",
        "dataset.size=128",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_spawn",
        "loss.corr_weight=0,1",
        "hydra.sweep.dir=sweep",
    )
    sweep = tmp_path / "sweep"
    summary = read_summary(sweep)
    assert [(r["job"], r["status"], r["g_iter"]) for r in summary] == [("0", "finished", 3), ("1", "finished", 3)]
    for r in summary:
        job = sweep / r["job"]
        ckpt = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
        # both ranks' images: 3 iterations x 2 processes x batch 8
        assert ckpt["ogan"]["g_iter"] == 3 and ckpt["ogan"]["images_seen"] == 3 * 2 * 8
        assert len(list(job.glob("wandb/offline-run-*"))) == 1
    weights = [OmegaConf.load(sweep / r["job"] / "config.yaml").loss.corr_weight for r in summary]
    assert weights == [0, 1]


def test_a_failed_job_does_not_end_the_sweep(run_script, tmp_path):
    """The bad job is recorded with its one-line error; the jobs after it still run; the sweep
    exits 2 at the end (every failure was bad input)."""
    proc = run_script("train.py", "-m", *TINY, "logger=none", "train.steps=2,0,3", "hydra.sweep.dir=sweep", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "train.steps=0 must be a positive number" in errors[0] and "[job 1]" in errors[0]
    summary = read_summary(tmp_path / "sweep")
    assert [(r["job"], r["status"], r.get("g_iter")) for r in summary] == [
        ("0", "finished", 2),
        ("1", "failed", None),
        ("2", "finished", 3),
    ]
    assert "train.steps=0 must be" in summary[1]["error"] and "train.steps=0" in summary[1]["overrides"]
    rows = (tmp_path / "sweep" / "summary.csv").read_text().splitlines()
    assert len(rows) == 4 and ",failed,train.steps=0 must be" in rows[2]


def test_evaluate_sweep_scores_the_good_checkpoint_after_a_missing_one(run_script, tmp_path):
    run_script("train.py", *TINY, "logger=none", "train.steps=2", "hydra.run.dir=run")
    good = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = run_script(
        "evaluate.py",
        "-m",
        f"ckpt={tmp_path / 'missing.ckpt'},{good}",
        "metrics.names=[encoder]",
        "metrics.batch_size=8",
        "hydra.sweep.dir=sweep",
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    summary = read_summary(tmp_path / "sweep")
    assert [r["status"] for r in summary] == ["failed", "finished"]
    assert "missing.ckpt" in summary[0]["error"]
    assert math.isfinite(summary[1]["metrics"]["encoder/rho"])


def test_any_exception_in_a_multirun_job_is_recorded_not_raised(tmp_path, monkeypatch):
    """Not only bad input: a crash inside a job (a bug, out of memory) is recorded the same way, its
    traceback in the job's log, and the summary then exits 1."""
    from ogan_pl.run import exits
    from ogan_pl.run.sweeps import SweepSummary

    monkeypatch.setattr(exits, "_multirun_job", lambda: ("0", str(tmp_path / "sweep" / "0")))

    @exits.report_user_errors
    def crashing_job(cfg):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    returned = crashing_job(None)
    with pytest.raises(ValueError, match=r"RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"):
        float(returned)  # what Optuna's sweeper does: the trial is told FAILED, the study goes on
    record = json.loads((tmp_path / "sweep" / "0" / "result.json").read_text())
    assert record["status"] == "failed" and record["user_error"] is False
    (tmp_path / "sweep" / "1").mkdir()
    (tmp_path / "sweep" / "1" / "result.json").write_text(json.dumps({"status": "finished", "metrics": {}}))
    with pytest.raises(SystemExit) as stop:
        SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}}))
    assert stop.value.code == 1
    assert [r["status"] for r in read_summary(tmp_path / "sweep")] == ["failed", "finished"]


@pytest.mark.slow
def test_optuna_marks_a_failed_trial_failed_and_goes_on(run_script, tmp_path):
    tiny = [arg for arg in TINY if not arg.startswith("train.steps=")]
    proc = run_script(
        "train.py",
        "-m",
        "hydra/sweeper=optuna",
        *tiny,
        "logger=none",
        "optimized_metric=train/loss_g",
        "train.steps=choice(0,2)",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.seed=0",
        "hydra.sweep.dir=sweep",
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    summary = read_summary(tmp_path / "sweep")
    assert len(summary) == 4
    statuses = {r["status"] for r in summary}
    assert statuses == {"failed", "finished"}, summary
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_params"] == {"train.steps": 2}


@pytest.mark.slow
def test_optuna_sweep_minimises_the_final_fid(run_script, tmp_path, torch_home):
    run_script(
        "train.py",
        "hparams_search=optuna_fid",
        *TINY,
        "train.steps=2",
        "logger=none",
        "callbacks.fid.n_samples=16",
        "callbacks.fid.n_real=16",
        "metrics.batch_size=8",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "hydra.sweep.dir=sweep",
        timeout=600,
    )
    sweep = tmp_path / "sweep"
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    summary = read_summary(sweep)
    fids = [r["metrics"]["metrics/fid"] for r in summary]
    assert len(fids) == 3 and all(math.isfinite(f) for f in fids)
    assert best["best_value"] == pytest.approx(min(fids))
    assert set(best["best_params"]) == {"optim.lr_e", "optim.lr_g", "loss.corr_weight", "train.n_critic"}
    for r in summary:  # each trial trained with the values Optuna chose for it
        cfg = OmegaConf.load(sweep / r["job"] / "config.yaml")
        chosen = dict(o.split("=", 1) for o in r["overrides"])
        assert cfg.optim.lr_e == pytest.approx(float(chosen["optim.lr_e"]))
        assert cfg.train.n_critic == int(chosen["train.n_critic"])


def test_optimized_metric_that_was_not_logged_is_a_one_line_error(run_script):
    proc = run_script(
        "train.py",
        *TINY,
        "logger=none",
        "train.steps=1",
        "optimized_metric=metrics/fid",
        "hydra.run.dir=run",
        check=False,
    )
    assert proc.returncode == 2
    assert "optimized_metric=metrics/fid was not logged by this run" in proc.stderr and "callbacks=fid" in proc.stderr


def fake_slurm_bin(tmp_path):
    """sbatch that keeps the submission script and refuses the job; srun that submitit looks for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "sbatch": f'#!/bin/sh\ncp "$1" {tmp_path}/submission.sh\necho "sbatch: error: test" >&2\nexit 1\n',
        "srun": "#!/bin/sh\nexit 0\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return bin_dir


def test_slurm_launcher_submits_one_task_per_gpu(run_script, tmp_path):
    """2 nodes x 4 GPUs with a paper preset: the sbatch script submitit generates (no cluster here)."""
    bin_dir = fake_slurm_bin(tmp_path)
    proc = run_script(
        "train.py",
        "-m",
        "hydra/launcher=slurm",
        "experiment=lsun_church_128",
        "trainer.devices=4",
        "trainer.num_nodes=2",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=600",
        "hydra.sweep.dir=sweep",
        check=False,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode != 0 and "sbatch: error: test" in proc.stderr  # submitted, then refused
    lines = set((tmp_path / "submission.sh").read_text().splitlines())
    for line in [
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=600",
        "#SBATCH --requeue",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --cpus-per-task=10",
    ]:
        assert line in lines, line
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)


def test_slurm_config_composes_with_experiment_presets():
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "hydra/launcher=slurm",
                "experiment=celeba_hq_256_sm",
                "trainer.devices=8",
                "trainer.num_nodes=3",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == launcher.gpus_per_node == 8 and launcher.nodes == 3
    assert cfg.dataset.resolution == 256 and launcher.max_num_timeout > 0
    assert tiny_config()["resume"] == "auto"


def test_slurm_job_preempted_saves_requeues_and_resumes(tmp_path):
    """SLURM emulated on this machine: the launcher submits (fake sbatch); the job runs as SLURM
    would start it (submitit's entry point, SLURM's variables, Lightning's SLURMEnvironment);
    SIGUSR2 (submitit's time-limit warning) makes it save last.ckpt and requeue itself (fake
    scontrol); the requeued run resumes from that checkpoint in the same job directory."""
    from tests.conftest import script_env, start_in
    from tests.test_preemption import assert_same_state, wait_for

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {
        "sbatch": '#!/bin/sh\necho "Submitted batch job 4242"\n',
        "srun": "#!/bin/sh\nexit 0\n",
        "scontrol": f'#!/bin/sh\necho "$@" >> {tmp_path}/scontrol.txt\n',
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    path = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    record = tmp_path / "state_at_start.pt"
    launcher = start_in(
        tmp_path,
        "train.py",
        "-m",
        "hydra/launcher=slurm",
        *TINY,
        "train.steps=100000",
        "callbacks.checkpoint.every_n_steps=25",
        "callbacks.images.every_n_steps=100000",
        "logger=none",
        "trainer.accelerator=cpu",
        "hydra.sweep.dir=sweep",
        "+callbacks.record._target_=tests.helpers.RecordStateAtStart",
        f"+callbacks.record.path={record}",
        env=path,
    )
    submitted = tmp_path / "sweep" / ".submitit" / "4242"
    try:
        wait_for(submitted / "4242_submitted.pkl", launcher)
    finally:
        launcher.kill()  # it would wait for the job forever: there is no sacct here
        launcher.wait()
    slurm = {
        **path,
        "SUBMITIT_EXECUTOR": "slurm",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODELIST": "localhost",
    }

    def start_job():
        return subprocess.Popen(
            [sys.executable, "-u", "-m", "submitit.core._submit", str(submitted)],
            cwd=tmp_path,
            env=script_env(tmp_path, slurm),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    job = start_job()
    checkpoints = tmp_path / "sweep" / "0" / "checkpoints"
    wait_for(checkpoints / "giter_0000025.ckpt", job)
    job.send_signal(signal.SIGUSR2)
    output = job.communicate(timeout=120)[0]
    assert "stopped by SIGUSR2" in output and "Requeued job 4242" in output, output[-3000:]
    assert (tmp_path / "scontrol.txt").read_text().split() == ["requeue", "4242"]
    saved = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert saved["ogan"]["g_iter"] >= 25

    requeued = start_job()  # what SLURM runs after the requeue: the same job, the same directory
    try:
        deadline = time.monotonic() + 120
        while not (record.exists() and torch.load(record, weights_only=True)["g_iter"] > 0):
            assert requeued.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        requeued.send_signal(signal.SIGTERM)
        requeued.communicate(timeout=120)
    assert_same_state(torch.load(record, weights_only=True), saved)


def test_seed_table_gives_mean_and_sample_spread_per_setting(tmp_path, capsys):
    """`ogan-sweep-summary DIR...`: jobs grouped by what sets them apart (the seed ignored),
    each cell the mean +- sample standard deviation, checked against NumPy."""
    import numpy as np

    from ogan_pl.tools.sweep_summary import summarize

    scores = {"0": [0.81, 0.85, 0.86], "0.5": [0.90, 0.92, 0.91]}
    job = 0
    for lam, values in scores.items():
        for seed, value in enumerate(values, 1):
            (tmp_path / "sweep" / str(job)).mkdir(parents=True)
            record = {
                "g_iter": 100 + seed,
                "metrics": {"metrics/recon_classifier_accuracy": value},
                "overrides": ["experiment=digits_budget", f"loss.corr_weight={lam}", f"seed={seed}"],
            }
            (tmp_path / "sweep" / str(job) / "result.json").write_text(json.dumps(record))
            job += 1
    (tmp_path / "sweep" / "6" / ".hydra").mkdir(parents=True)  # a job that died without a result
    # evaluate.py run later on jobs 0 and 1: its lines for the final checkpoint join the table; a line
    # of another iteration, a training-callback line (no ckpt) and a line cut short do not
    for job, precision in ((0, 0.5), (1, 0.7)):
        lines = [
            {"ckpt": "last.ckpt", "g_iter": 101 + job, "metrics": {"prdc_classifier_precision": precision}},
            {"ckpt": "step.ckpt", "g_iter": 50, "metrics": {"prdc_classifier_precision": 0.0}},
            {"g_iter": 101 + job, "metrics": {"prdc_classifier_precision": 0.0}},
        ]
        (tmp_path / "sweep" / str(job) / "checkpoints").mkdir()
        (tmp_path / "sweep" / str(job) / "checkpoints" / "metrics.jsonl").write_text(
            "\n".join(json.dumps(line) for line in lines) + '\n{"ckpt": "last.ckpt", "g_i'
        )
    assert summarize([str(tmp_path / "sweep")]) == 0
    out = capsys.readouterr().out
    head = [c.strip() for c in next(line for line in out.splitlines() if "G iterations" in line).strip("|").split("|")]
    for lam, values in scores.items():
        row = next(line for line in out.splitlines() if f"`loss.corr_weight={lam}`" in line)
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == "3"
        assert cells[2] == f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
        assert cells[head.index("G iterations")] == "102 ± 1"
        assert cells[head.index("precision")] == ("0.600 ± 0.141" if lam == "0" else "")
    assert "1 job(s) without a result" in out
    with pytest.raises(SystemExit) as exit_info:
        summarize([str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err
