"""The encoder's watchdog (ogan_pl.callbacks.encoder_watch): its rule on given sequences of scores,
and training runs whose encoder is destroyed on purpose mid-run (tests.helpers.DestroyEncoder):
one warning, the earlier best_encoder.ckpt kept, and what `on_alarm` asks; a healthy run never
warns; unlabelled data gets the label-free measures."""

import json

import pytest
import torch
from PIL import Image

from ogan_pl.callbacks.encoder_watch import EncoderWatch

ALARM = "the encoder's health fell"


def judge_all(watch: EncoderWatch, values, diversities=None) -> list[tuple[bool, bool]]:
    diversities = diversities or [1.0] * len(values)
    return [
        tuple(watch._judge(100 * (i + 1), v, d).values())
        for i, (v, d) in enumerate(zip(values, diversities, strict=True))
    ]


def test_rule_keeps_the_best_and_sounds_once():
    watch = EncoderWatch("unused", measure="health/recon_ratio", margin=0.1, collapse=0.5, after=0)
    got = judge_all(watch, [0.9, 0.6, 0.55, 0.62, 0.64, 0.66, 0.70, 0.5, 0.9])
    # (improved, alarm): better -> kept; within the margin -> nothing; 0.66 > 0.55 + 0.1 -> alarm, once
    assert got == [
        (True, False),
        (True, False),
        (True, False),
        (False, False),
        (False, False),
        (False, True),
        (False, False),
        (True, False),
        (False, False),
    ]
    assert watch.best == 0.5 and watch.best_g_iter == 800 and watch.alarms == [600]


def test_rule_for_a_higher_is_better_measure_and_the_collapse_test():
    watch = EncoderWatch("unused", measure="health/rho", margin=0.2, collapse=0.5, after=0)
    watch.higher_is_better = True
    assert judge_all(watch, [0.5, 0.6, 0.45, 0.39]) == [(True, False), (True, False), (False, False), (False, True)]
    collapse = EncoderWatch("unused", margin=10.0, collapse=0.5, after=0)
    # the measure never falls by 10, but the reconstructions' spread halves
    assert judge_all(collapse, [0.6, 0.5, 0.55, 0.55], [1.0, 0.9, 0.5, 0.4]) == [
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]
    young = EncoderWatch("unused", margin=0.1, after=450)
    # the best is kept from the start; a fall before `after` is no alarm, the same fall after it is
    assert judge_all(young, [0.5, 0.9, 0.9, 0.9, 0.9]) == [
        (True, False),
        (False, False),
        (False, False),
        (False, False),
        (False, True),
    ]
    nan = EncoderWatch("unused", margin=0.1, after=0)
    assert judge_all(nan, [0.5, float("nan")]) == [(True, False), (False, True)]


@pytest.mark.parametrize(
    "value, key",
    [
        ("measure=recon_classifier_accuracy", "measure"),
        ("margin=0", "margin"),
        ("collapse=1.5", "collapse"),
        ("after=-1", "after"),
        ("on_alarm=panic", "on_alarm"),
        ("rollback_lr_factor=0", "rollback_lr_factor"),
    ],
)
def test_bad_options_are_one_line(run_script, value, key):
    proc = run_script("train.py", "logger=none", "train.steps=2", f"callbacks.encoder_watch.{value}", check=False)
    assert proc.returncode == 2
    assert f"callbacks.encoder_watch.{key}" in proc.stderr and "Traceback" not in proc.stderr


# The default run's model on the built-in digits, scored every 50 iterations from iteration 100 on.
# loss.corr_factor_e=1: by iteration 300 its encoder is well ahead of a random one (ratio 0.64 against 0.97);
# the default's twice-as-strong E starts slower (0.71-0.74 at 300), too close for a clear test of the rule
WATCHED = [
    "logger=none",
    "train.steps=400",
    "loss.corr_factor_e=1",
    "callbacks.quality.every_n_steps=50",
    "callbacks.quality.names=[health]",
    "callbacks.encoder_watch.after=100",
    "callbacks.images.every_n_steps=1000",
    "callbacks.checkpoint.every_n_steps=1000",
    "metrics.health.n_rho=256",
]
DESTROYED_AT = 300
DESTROY = ["+callbacks.destroy._target_=tests.helpers.DestroyEncoder", f"+callbacks.destroy.at={DESTROYED_AT}"]


def checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def watch_state(ckpt: dict) -> dict:
    return next(v for k, v in ckpt["callbacks"].items() if k.startswith("EncoderWatch"))


def encoder_weights(ckpt: dict) -> torch.Tensor:
    return torch.cat([v.flatten() for k, v in ckpt["state_dict"].items() if k.startswith("E_ema.")])


@pytest.mark.slow
def test_a_destroyed_encoder_warns_once_and_keeps_the_earlier_best(run_script, tmp_path):
    proc = run_script("train.py", *WATCHED, *DESTROY, "hydra.run.dir=run")
    out = proc.stdout + proc.stderr
    assert out.count(ALARM) == 1, out[-3000:]
    line = next(line for line in out.splitlines() if ALARM in line)
    assert "best_encoder.ckpt" in line and "health/recon_ratio" in line and "iteration" in line
    best, last = (checkpoint(tmp_path / "run/checkpoints" / name) for name in ("best_encoder.ckpt", "last.ckpt"))
    assert 50 <= best["ogan"]["g_iter"] <= DESTROYED_AT  # scored at 300 before the hook (a later callback) struck
    state = watch_state(last)
    assert state["alarms"] == [DESTROYED_AT + 50]  # the first scoring of the dead encoder
    assert state["best_g_iter"] == best["ogan"]["g_iter"]
    assert not torch.equal(encoder_weights(best), encoder_weights(last))
    assert "best encoder (health/recon_ratio)" in proc.stdout
    # the kept encoder is usable by the tools that read checkpoints
    scored = run_script(
        "evaluate.py", "ckpt=run/checkpoints/best_encoder.ckpt", "metrics.names=[health]", "metrics.health.n_rho=256"
    )
    records = [json.loads(line) for line in (tmp_path / "run/checkpoints/metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in records if r.get("source") == "evaluate.py"]
    assert evaluated and evaluated[-1]["g_iter"] == best["ogan"]["g_iter"], scored.stdout[-2000:]
    during = next(r for r in records if r.get("source") == "train.py" and r["g_iter"] == best["ogan"]["g_iter"])
    assert evaluated[-1]["metrics"]["health/recon_ratio"] == pytest.approx(
        during["metrics"]["health/recon_ratio"], abs=1e-6
    )
    images = tmp_path / "mine"
    images.mkdir()
    for i in range(2):
        Image.fromarray((torch.rand(32, 32) * 255).byte().numpy()).save(images / f"d{i}.png")
    run_script(
        "-m",
        "ogan_pl.tools.invert",
        "ckpt=run/checkpoints/best_encoder.ckpt",
        f"input={images}",
        "output=inverted",
        "steps=2",
        "hydra.run.dir=run_invert",
    )
    assert len((tmp_path / "inverted/inversions.jsonl").read_text().splitlines()) == 2
    # and training goes on from it, in a run directory of its own
    run_script(
        "train.py",
        *WATCHED,
        "ckpt_path=run/checkpoints/best_encoder.ckpt",
        f"train.steps={best['ogan']['g_iter'] + 10}",
        "hydra.run.dir=continued",
    )
    assert checkpoint(tmp_path / "continued/checkpoints/last.ckpt")["ogan"]["g_iter"] == best["ogan"]["g_iter"] + 10


@pytest.mark.slow
def test_a_healthy_run_never_warns(run_script, tmp_path):
    proc = run_script("train.py", *WATCHED, "hydra.run.dir=run")
    assert ALARM not in proc.stdout + proc.stderr
    best = checkpoint(tmp_path / "run/checkpoints/best_encoder.ckpt")
    assert best["ogan"]["g_iter"] >= 50
    assert watch_state(checkpoint(tmp_path / "run/checkpoints/last.ckpt"))["alarms"] == []


def test_the_plain_gan_is_not_watched(run_script, tmp_path):
    """lambda 0 trains no encoder: its health is still measured, but nothing is kept or alarmed."""
    proc = run_script(
        "train.py",
        "logger=none",
        "loss.corr_weight=0",
        "train.steps=6",
        "callbacks.quality.every_n_steps=3",
        "callbacks.quality.names=[health]",
        "callbacks.encoder_watch.after=0",
        "metrics.health.n_rho=64",
        "hydra.run.dir=run",
    )
    assert "(loss.corr_weight=0 or loss.corr_factor_e=0): the plain GAN trains no encoder" in proc.stdout + proc.stderr
    assert not (tmp_path / "run/checkpoints/best_encoder.ckpt").exists()
    assert (tmp_path / "run/checkpoints/metrics.jsonl").read_text().count("health/recon_ratio") == 2


@pytest.mark.slow
def test_on_alarm_stop_ends_the_run_and_rollback_restores_the_best(run_script, tmp_path):
    run_script("train.py", *WATCHED, *DESTROY, "callbacks.encoder_watch.on_alarm=stop", "hydra.run.dir=stop")
    last = checkpoint(tmp_path / "stop/checkpoints/last.ckpt")
    assert last["ogan"]["g_iter"] == watch_state(last)["alarms"][0] < 400

    proc = run_script(
        "train.py", *WATCHED, *DESTROY, "callbacks.encoder_watch.on_alarm=rollback", "hydra.run.dir=rollback"
    )
    assert "rolled back to the encoder of generator iteration" in proc.stdout + proc.stderr
    last = checkpoint(tmp_path / "rollback/checkpoints/last.ckpt")
    assert last["ogan"]["g_iter"] == 400 and last["ogan"]["lr_scale"] == 0.5
    assert watch_state(last)["rollbacks"] == 1


def test_unlabelled_data_gets_the_label_free_measures(run_script, tmp_path):
    from ogan_pl.data import DigitsDataModule

    data = DigitsDataModule()
    data.setup()
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(80):
        Image.fromarray(data.train_set[i]["image"][0].numpy()).save(folder / f"{i}.png")
    proc = run_script(
        "train.py",
        "logger=none",
        "dataset=image_folder",
        f"dataset.root={folder}",
        "dataset.resolution=32",
        "dataset.channels=1",
        "dataset.holdout_size=8",
        "dataset.batch_size=8",
        "train.steps=6",
        "callbacks.quality.every_n_steps=3",
        "callbacks.encoder_watch.after=0",
        "metrics.health.n_rho=64",
        "hydra.run.dir=run",
    )
    records = [json.loads(line) for line in (tmp_path / "run/checkpoints/metrics.jsonl").read_text().splitlines()]
    assert [r["g_iter"] for r in records] == [3, 6]
    scores = records[-1]["metrics"]
    assert {
        "health/rho",
        "health/psnr",
        "health/ssim",
        "health/recon_ratio",
        "health/diversity",
        "health/code_rank",
    } <= set(scores)
    assert "health/linear_probe" not in scores and "recon_classifier_accuracy" not in scores
    assert (tmp_path / "run/checkpoints/best_encoder.ckpt").is_file()
    assert "Traceback" not in proc.stderr
