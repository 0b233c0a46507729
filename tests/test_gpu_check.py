"""`make gpu-check` (scripts/gpu_check.sh): its settings checked before anything runs, and its
plumbing (jobs at once, summary, archive) tried on the CPU with tiny jobs."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def gpu_check(tmp_path, **env):
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_DIR": str(tmp_path / "check"), **env}
    return subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize(
    "setting, value, says",
    [
        ("GPU_CHECK_MINUTES", "0", "give whole minutes from 1 to 59"),
        ("GPU_CHECK_MINUTES", "90", "give whole minutes from 1 to 59"),
        ("GPU_CHECK_RESOLUTION", "64px", "give a size in pixels such as 64"),
        ("GPU_CHECK_STEPS", "-5", "GPU_CHECK_STEPS=-5: give a positive whole number"),
        ("GPU_CHECK_SEEDS", "", "GPU_CHECK_SEEDS is empty"),
        ("GPU_CHECK_SEEDS", "1 two", "'two' is not a whole number"),
        ("GPU_CHECK_VARIANTS", "lambda", "'lambda' is not an override"),
        ("GPU_CHECK_TESTS", "yes", "GPU_CHECK_TESTS=yes"),
        ("GPU_CHECK_EXPORT", "/no/such/folder", "is not a folder"),
        ("PYTHON", "/no/such/python", "not found"),
    ],
)
def test_bad_settings_are_one_line(tmp_path, setting, value, says):
    proc = gpu_check(tmp_path, **{setting: value})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and says in proc.stderr
    assert not (tmp_path / "check").exists()


def test_a_second_check_never_writes_into_the_first_ones_folder(tmp_path):
    (tmp_path / "check").mkdir()
    proc = gpu_check(tmp_path)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert list((tmp_path / "check").iterdir()) == []


@pytest.mark.slow
def test_the_jobs_run_at_once_and_are_summarised(tmp_path):
    (tmp_path / "export").mkdir()
    proc = gpu_check(
        tmp_path,
        GPU_CHECK_SEEDS="1",
        GPU_CHECK_VARIANTS="loss.corr_weight=0 loss.corr_factor_e=2",
        GPU_CHECK_STEPS="4",
        GPU_CHECK_EVERY="2",
        GPU_CHECK_EXPORT=str(tmp_path / "export"),
        GPU_CHECK_RESOLUTION="32",
        GPU_CHECK_ARGS="debug=fast callbacks.quality.names=[health,recon_classifier] metrics.health.n_rho=64",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = tmp_path / "check"
    assert (check / "corr_weight_0_s1/result.json").is_file() and (check / "corr_factor_e_2_s1/result.json").is_file()
    summary = (tmp_path / "export/summary.md").read_text()
    assert "| `loss.corr_weight=0` | 1 |" in summary and "| `loss.corr_factor_e=2` | 1 |" in summary
    # scored every 2 iterations: the health curve of each job is in the archive, the checkpoints are not
    with tarfile.open(tmp_path / "export/gpu_check.tgz") as archive:
        names = archive.getnames()
        lines = archive.extractfile("./corr_factor_e_2_s1/checkpoints/metrics.jsonl").read().decode()
    assert lines.count("health/recon_ratio") == 2
    assert not any(n.endswith(".ckpt") for n in names)
