"""evaluate.py and the FID callback end to end (subprocess, CPU), with random Inception weights
that the tests write: the real torchmetrics / torch-fidelity code runs on a few images."""

import csv
import json

import pytest
import torch

from ogan_pl.metrics.inception import WEIGHTS_NAME, WEIGHTS_URL
from ogan_pl.utils.io import read_jsonl
from tests.conftest import run_command_here, run_in
from tests.test_cli import TINY

FID_TRAIN = [
    *TINY,
    "logger=csv",
    "callbacks=fid",
    "callbacks.fid.every_n_steps=2",
    "callbacks.fid.n_samples=8",
    "callbacks.fid.n_real=16",
    "metrics.batch_size=8",
]
EVAL = [
    "metrics.n_fake=16",
    "metrics.n_real=16",
    "metrics.batch_size=8",
    "metrics.encoder.n_rho=64",
    "metrics.encoder.n_probe_train=32",
]


@pytest.fixture(scope="module")
def fid_run(tmp_path_factory, inception_weights):
    """One tiny training run with the FID callback, shared by the tests below (read-only but for
    metrics.jsonl, where each test reads only the lines it appended)."""
    cwd = tmp_path_factory.mktemp("fid_run")
    run_in(cwd, "train.py", *FID_TRAIN, "hydra.run.dir=run", f"metrics.inception_weights={inception_weights}")
    return cwd / "run"


def test_training_logs_fid_keeps_best_checkpoint_and_no_inception_weights(fid_run):
    ckpts = fid_run / "checkpoints"
    for line in (ckpts / "metrics.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line), dict)
    lines = [line for line in read_jsonl(ckpts / "metrics.jsonl") if line["source"] == "train.py"]
    assert [line["g_iter"] for line in lines] == [2, 4]
    fids = [line["metrics"]["fid"] for line in lines]
    assert all(f > 0 for f in fids) and lines[-1]["best_fid"] == min(fids)
    assert lines[0]["protocol"]["n_fake"] == 8 and lines[0]["protocol"]["n_real"] == 16
    assert "TF1-compatible" in lines[0]["protocol"]["resize"]

    (csv_file,) = fid_run.glob("csv/version_*/metrics.csv")
    with open(csv_file) as f:
        logged = [(int(r["step"]), float(r["metrics/fid"])) for r in csv.DictReader(f) if r.get("metrics/fid")]
    assert [step for step, _ in logged] == [2, 4] and [v for _, v in logged] == pytest.approx(fids)

    best = torch.load(ckpts / "best_fid.ckpt", weights_only=True)
    best_g_iter = lines[fids.index(min(fids))]["g_iter"]
    assert best["ogan"]["g_iter"] == best_g_iter
    for path in (ckpts / "best_fid.ckpt", ckpts / "last.ckpt"):
        ckpt = torch.load(path, weights_only=True)
        assert not any("inception" in k.lower() or "Mixed_" in k for k in ckpt["state_dict"])
        assert path.stat().st_size < 5_000_000  # Inception alone is 95 MB
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    (fid_state,) = [v for k, v in last["callbacks"].items() if "MetricsCallback" in k and "'fid'" in k]
    assert fid_state == {"best_fid": min(fids), "best_g_iter": best_g_iter}


def test_training_callback_computes_any_registered_metric(run_script, tmp_path):
    """The callback is not FID-only: the encoder metrics every 2 iterations, best_<monitor>.ckpt
    kept on a higher-is-better score (PSNR), no Inception weights needed."""
    run_script(
        "train.py",
        *TINY,
        "logger=none",
        "callbacks=fid",
        "callbacks.fid.names=[encoder]",
        "callbacks.fid.monitor=recon/psnr",
        "callbacks.fid.every_n_steps=2",
        "metrics.encoder.n_rho=32",
        "metrics.encoder.n_probe_train=32",
        "metrics.batch_size=16",
        "hydra.run.dir=run",
    )
    lines = read_jsonl(tmp_path / "run" / "checkpoints" / "metrics.jsonl")
    assert [line["g_iter"] for line in lines] == [2, 4]
    psnr = [line["metrics"]["recon/psnr"] for line in lines]
    assert lines[-1]["best_recon/psnr"] == max(psnr) and "probe/shape_accuracy" in lines[-1]["metrics"]
    best = torch.load(tmp_path / "run" / "checkpoints" / "best_recon_psnr.ckpt", weights_only=True)
    assert best["ogan"]["g_iter"] == lines[psnr.index(max(psnr))]["g_iter"]


def test_evaluate_scores_a_checkpoint_and_appends_json_lines(fid_run, run_script, torch_home, inception_weights):
    ckpts = fid_run / "checkpoints"
    proc = run_script("evaluate.py", f"ckpt={ckpts / 'last.ckpt'}", *EVAL, "hydra.run.dir=ev1")
    for name in ("fid", "kid_mean", "is_mean", "recon/psnr", "recon/ssim", "encoder/rho", "probe/x_r2"):
        assert name in proc.stdout
    record = read_jsonl(ckpts / "metrics.jsonl")[-1]
    assert record["source"] == "evaluate.py" and record["ckpt"] == str(ckpts / "last.ckpt")
    assert record["g_iter"] == 4 and record["seed"] == 0 and record["wall_time_s"] > 0
    scores = record["metrics"]
    # IS = exp(E KL(p(y|x) || p(y))) >= 1; float32 rounding leaves it just under 1 when every p(y|x) is alike
    assert scores["fid"] > 0 and scores["is_mean"] >= 1 - 1e-5 and scores["recon/mse"] > 0
    assert set(scores) >= {"kid_mean", "kid_std", "is_std", "recon/ssim", "encoder/rho", "probe/shape_accuracy"}
    protocol = record["protocol"]
    assert protocol["n_fake"] == 16 and protocol["n_real"] == 16 and protocol["use_ema"] is True
    assert protocol["weights"] == WEIGHTS_NAME and protocol["precision"] == "32"
    # the training run cached FID statistics of the same 16 images, but KID needs the features
    assert protocol["real_stats"]["cached"] is False

    # selection, raw weights, an explicit weights file (no hub cache needed) and a second line
    run_script(
        "evaluate.py",
        f"ckpt={ckpts / 'last.ckpt'}",
        *EVAL,
        "metrics.names=[fid]",
        "use_ema=false",
        "precision=bf16",
        f"metrics.inception_weights={inception_weights}",
        "hydra.run.dir=ev2",
    )
    record2 = read_jsonl(ckpts / "metrics.jsonl")[-1]
    assert set(record2["metrics"]) == {"fid"} and record2["protocol"]["use_ema"] is False
    assert record2["protocol"]["precision"] == "bf16"
    assert record2["protocol"]["real_stats"] == {**protocol["real_stats"], "cached": True}  # same weights' hash
    assert record2["metrics"]["fid"] != record["metrics"]["fid"]


def test_evaluate_is_deterministic_and_multirun_scores_several_checkpoints(fid_run, run_script, torch_home, tmp_path):
    ckpts = fid_run / "checkpoints"
    a, b = ckpts / "giter_0000002.ckpt", ckpts / "last.ckpt"
    before = len(read_jsonl(ckpts / "metrics.jsonl"))
    run_script("evaluate.py", "-m", f"ckpt={a},{b}", *EVAL, "metrics.names=[fid,kid]", "hydra.sweep.dir=sweep")
    lines = read_jsonl(ckpts / "metrics.jsonl")[before:]
    assert [line["ckpt"] for line in lines] == [str(a), str(b)]
    assert [line["g_iter"] for line in lines] == [2, 4]
    summary = read_jsonl(tmp_path / "sweep" / "summary.jsonl")  # one row per scored checkpoint
    assert [(r["ckpt"], r["status"]) for r in summary] == [(str(a), "finished"), (str(b), "finished")]
    assert [r["metrics"] for r in summary] == [line["metrics"] for line in lines]
    run_script("evaluate.py", f"ckpt={b}", *EVAL, "metrics.names=[fid,kid]", "hydra.run.dir=again")
    again = read_jsonl(ckpts / "metrics.jsonl")[-1]
    assert again["metrics"] == pytest.approx(lines[1]["metrics"])


def assert_missing_weights_line(proc, torch_home):
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert WEIGHTS_NAME in line and WEIGHTS_URL in line and "metrics.inception_weights=PATH" in line
    assert str(torch_home / "hub" / "checkpoints") in line
    assert "Traceback" not in proc.stderr


def test_missing_inception_weights_stop_evaluation_at_once(fid_run, run_script, torch_home_empty):
    proc = run_script(
        "evaluate.py",
        f"ckpt={fid_run / 'checkpoints/last.ckpt'}",
        "metrics.download=false",
        "hydra.run.dir=run",
        check=False,
        timeout=120,
    )
    assert_missing_weights_line(proc, torch_home_empty)
    assert "real images" not in proc.stdout  # stopped before reading any data


def test_missing_inception_weights_stop_training_before_it_starts(run_script, torch_home_empty, tmp_path):
    proc = run_script("train.py", *FID_TRAIN, "metrics.download=false", "hydra.run.dir=run", check=False, timeout=120)
    assert_missing_weights_line(proc, torch_home_empty)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["metrics.names=[fid,fcd]"],
            "metrics.fcd._name_: unknown metric 'fcd'; did you mean fid? registered: editing, encoder, factor_editing, fd_classifier, fid",
        ),
        (["metrics.n_fake=1"], "metrics.n_fake=1 must be an integer >= 2"),
        (["precision=8"], "precision=8 must be one of: 32, bf16, 16"),
    ],
)
def test_bad_metric_options_are_one_line_errors(tmp_path, args, message):
    proc = run_command_here(tmp_path, "evaluate.py", "ckpt=any.ckpt", *args, "hydra.run.dir=run")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_results_file_is_one_line(fid_run, run_script, tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_script(
        "evaluate.py",
        f"ckpt={fid_run / 'checkpoints/last.ckpt'}",
        *EVAL,
        "metrics.names=[encoder]",
        f"results_file={tmp_path / 'a_file' / 'metrics.jsonl'}",
        "hydra.run.dir=ev",
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pass results_file=PATH to write them elsewhere" in proc.stderr.splitlines()[-1]
