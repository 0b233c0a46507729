"""A run stops when asked (SIGTERM, Ctrl-C) at any moment within seconds, keeping its last checkpoint;
a short run's end-of-run work is bounded by its length."""

import os
import signal
import time

import pytest
import torch

from ogan_pl.utils.stopping import StopRequested, StopSignals, deferred, interruptible
from tests.conftest import run_in, start_in
from tests.test_preemption import wait_for

SMALL = [
    "dataset=shapes",
    "model.bottom_channels=32",
    "model.z_dim=16",
    "dataset.batch_size=8",
    "dataset.size=64",
    "dataset.holdout_size=16",
    "callbacks.images.every_n_steps=2",
    "callbacks.checkpoint.every_n_steps=2",
    "logger=none",
    "hydra.run.dir=run",
    "paths.cache_dir=cache",
]


def wait_for_text(path, text: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert proc.poll() is None, (
            f"the run exited ({proc.returncode}) before printing {text!r}:\n{path.read_text()[-3000:]}"
        )
        assert time.monotonic() < deadline, f"{text!r} did not appear in {timeout} s"
        time.sleep(0.05)


# -- the handler, in this process -------------------------------------------------------------------


def send(signum) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs at the next bytecode boundary


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_outside_the_training_loop_a_stop_raises_at_once(signum):
    with StopSignals() as signals, pytest.raises(StopRequested) as err:
        send(signum)
        assert err.value.during == "set-up" and err.value.signum == signum and err.value.code == 128 + signum
        assert signals.received == signum


def test_in_the_training_loop_a_stop_waits_for_the_step_boundary_except_in_marked_work():
    with StopSignals() as signals:
        signals.phase = "training"
        send(signal.SIGTERM)  # no exception: Lightning's flag takes it at the step boundary
        assert signals.received == signal.SIGTERM
        with (
            pytest.raises(StopRequested) as err,
            interruptible("grids"),
        ):  # marked work is not even started after a stop
            raise AssertionError("not reached")
        assert err.value.during == "grids"
    with StopSignals() as signals:
        signals.phase = "training"
        with pytest.raises(StopRequested) as err, interruptible("quality metrics"):
            send(signal.SIGINT)
            raise AssertionError("not reached")
        assert err.value.during == "quality metrics"


def test_a_checkpoint_write_is_never_cut():
    with StopSignals() as signals:
        signals.phase = "the end of the run"
        with deferred():
            send(signal.SIGTERM)
            finished = True  # reached: the stop waits
        assert finished and signals.received == signal.SIGTERM
        with pytest.raises(StopRequested):
            signals.check("summary")


def test_without_an_active_run_the_sections_do_nothing():
    # compared with what the process had (a pytest-xdist worker may inherit SIGINT ignored)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with interruptible("metrics"), deferred():
        assert {s: signal.getsignal(s) for s in before} == before
    assert {s: signal.getsignal(s) for s in before} == before


def test_handlers_are_restored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    with StopSignals():
        assert signal.getsignal(signal.SIGINT) != before[signal.SIGINT]
    assert {s: signal.getsignal(s) for s in before} == before


# -- train.py as a user runs it ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_during_the_end_of_run_metrics_ends_the_run_within_seconds(tmp_path, signum):
    """The classifier's training (made long: 10,000 epochs) inside the end-of-run metrics is cut; the
    final last.ckpt was written before, and the cache holds no half-trained classifier."""
    proc = start_in(
        tmp_path,
        "train.py",
        *SMALL,
        "train.steps=3",
        "callbacks.quality.at_end=always",
        "metrics.classifier.epochs=10000",
    )
    wait_for_text(tmp_path / "out.txt", "training the ShapesDataModule classifier", proc)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signum)
    code = proc.wait(timeout=60)
    seconds = time.monotonic() - sent
    output = (tmp_path / "out.txt").read_text()
    assert code == 128 + signum, output[-3000:]
    assert seconds < 10, seconds
    line = next(line for line in output.splitlines() if f"stopped by {signal.Signals(signum).name}" in line)
    assert "at generator iteration 3, during the end-of-run quality metrics" in line
    assert "skipped: quality metrics, summary" in line and "last.ckpt saved" in line
    assert "Traceback" not in output
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["ogan"]["g_iter"] == 3 and last["global_step"] == 6
    assert not list((tmp_path / "cache").rglob("*.pt"))  # no classifier cached


@pytest.mark.slow
def test_a_stop_during_the_metrics_inside_the_training_loop_saves_the_step_before(tmp_path):
    """A resumed run scores after its first step (iteration 3); Ctrl-C during that scoring (the
    classifier's training) ends it at once, and last.ckpt then holds iteration 3."""
    run_in(tmp_path, "train.py", *SMALL, "train.steps=2", "~callbacks.quality")
    before = (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    proc = start_in(
        tmp_path,
        "train.py",
        *SMALL,
        "train.steps=4",
        "callbacks.quality.every_n_steps=1",
        "metrics.classifier.epochs=10000",
    )
    wait_for_text(tmp_path / "out.txt", "training the ShapesDataModule classifier", proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    output = (tmp_path / "out.txt").read_text()
    assert "stopped by SIGINT at generator iteration 3, during quality metrics" in output, output[-2000:]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["ogan"]["g_iter"] == 3  # the step that ended before the metrics began is saved
    assert before != (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once(tmp_path):
    """The first Ctrl-C waits for a checkpoint write (here one that hangs); the second exits at once."""
    marker = tmp_path / "writing"
    proc = start_in(
        tmp_path,
        "tests/scripts/train_with_slow_saves.py",
        *SMALL,
        "~callbacks.quality",
        "train.steps=100",
        env={"SLOW_SAVE_FROM": "3", "SLOW_SAVE_MARKER": str(marker)},
    )
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(2)
    assert proc.poll() is None  # the write is not cut
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    output = (tmp_path / "out.txt").read_text()
    assert "Ctrl-C: stopping after this checkpoint write" in output and "second Ctrl-C: exiting at once" in output
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["ogan"]["g_iter"] == 2


@pytest.mark.slow
def test_a_short_run_skips_the_metrics_it_cannot_afford_and_logs_each_callbacks_time(tmp_path):
    proc = run_in(tmp_path, "train.py", *SMALL, "train.steps=3")
    output = proc.stdout + proc.stderr
    assert "end of run: quality metrics skipped: not scored during this run's training" in output
    assert (
        "python evaluate.py ckpt=" in output
        and "metrics.names=[health,recon_classifier,is_classifier,fd_classifier]" in output
    )
    assert "end of run: grids took" in output and "end of run: summary took" in output
    assert "callback time: grids" in output and "checkpoints" in output
    assert "rho(z, E(G(z))) on 64 fresh z" in output  # bounded by the images trained on (24), at least 64
    assert not list((tmp_path / "cache").rglob("*.pt"))  # no classifier was trained


@pytest.mark.slow
def test_the_short_run_benchmark_reports_each_architecture(tmp_path):
    out = tmp_path / "short.json"
    proc = run_in(
        tmp_path, "-m", "ogan_pl.tools.bench_short_runs", "--models", "dcgan", "--limit", "600", "--out", str(out)
    )
    assert "dcgan" in proc.stdout and "after the last step" in proc.stdout
    import json

    (run,) = json.loads(out.read_text())["runs"]
    assert run["exit_code"] == 0 and run["skipped"] == ["quality metrics"]
    assert 0 < run["after_last_step_s"] < run["wall_s"]
    bad = run_in(tmp_path, "-m", "ogan_pl.tools.bench_short_runs", "--models", "nosuch", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such config" in bad.stderr


@pytest.mark.parametrize(
    "at_end,last_seconds,train_seconds,scores",
    [
        ("auto", None, 100.0, False),  # never scored in this process: its cost is unknown
        ("auto", 5.0, 100.0, True),  # a scoring costs less than the training: the end is scored
        ("auto", 50.0, 10.0, False),  # it costs more than the training
        ("always", None, 1.0, True),
        ("never", 1.0, 100.0, False),
    ],
)
def test_end_of_run_metrics_are_bounded_by_the_training_time(at_end, last_seconds, train_seconds, scores):
    from types import SimpleNamespace

    from ogan_pl.callbacks import MetricsCallback

    callback = MetricsCallback(names=["is_classifier"], monitor=None, every_n_steps=500, n_samples=100, at_end=at_end)
    callback.key, callback._ready, callback.last_seconds = "quality", True, last_seconds
    scored = []
    callback.score = lambda trainer, module: scored.append(module.g_iter)
    trainer = SimpleNamespace(callbacks=[SimpleNamespace(last_path="run/checkpoints/last.ckpt")])
    why = callback.end_of_run(trainer, SimpleNamespace(g_iter=7), train_seconds)
    assert bool(scored) == scores and (why is None) == scores
    if not scores:
        assert "callbacks.quality.at_end=always" in why and "ckpt=run/checkpoints/last.ckpt" in why
        assert "metrics.names=[is_classifier]" in why
