"""The encoder tools tried as a hostile user would: every bad input is one line and exit code 2, and a
refused command writes nothing (cases that other files already run as commands are not repeated here:
evaluate.py's missing ckpt in test_cli.py, value ranges in test_schema.py, unknown labels in
test_encoder_tools.py); a stopped ogan-invert leaves its output as it was and finishes with
resume=true; a second run into a folder in use is refused. (ogan-invert's input and numbers cases are
in test_encoder_tools.py.)"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ogan_pl.edits import save_directions
from tests.conftest import ROOT, run_command_here, run_in, script_env

FIXTURE = ROOT / "tests" / "fixtures" / "pre_layout.ckpt"  # a 2-iteration shapes model: 32x32 RGB, 16-d codes

INVERT, DIRECTIONS, EDIT = "-m ogan_pl.tools.invert", "-m ogan_pl.tools.directions", "-m ogan_pl.tools.edit"
EXPORT, TRAIN = "-m ogan_pl.tools.export_images", "train.py"

CASES = [
    # required values left out
    (INVERT, ["ckpt=CKPT", "input=MINE"], "output has no value: add output=... to the command line"),
    (DIRECTIONS, ["ckpt=CKPT"], "output has no value: add output=... to the command line"),
    (EDIT, ["ckpt=CKPT", "output=NEW"], "directions has no value: add directions=... to the command line"),
    # output paths of the wrong kind
    (INVERT, ["ckpt=CKPT", "input=MINE", "output=FILE"], "is a file; give a folder"),
    (INVERT, ["ckpt=CKPT", "input=MINE", "output=USERDIR", "overwrite=true"], "not written by an ogan_pl tool"),
    (INVERT, ["ckpt=CKPT", "input=MINE", "output=UNDERFILE"], "cannot write there"),
    (EDIT, ["ckpt=CKPT", "directions=DIRS", "output=FILE"], "is a file; give a folder"),
    (DIRECTIONS, ["ckpt=CKPT", "output=USERDIR", "method=sefa"], "is a folder or a device; give the directions file"),
    (DIRECTIONS, ["ckpt=CKPT", "output=DIRS", "method=sefa"], "exists; give another name, or overwrite=true"),
    (EXPORT, ["digits", "FILE"], "is a file; give a folder"),
    # impossible combinations and values
    (INVERT, ["ckpt=CKPT", "input=MINE", "output=NEW", "overwrite=true", "resume=true"], "choose one"),
    (INVERT, ["ckpt=CKPT", "input=MINE", "output=NEW", "cpu_threads=0"], "cpu_threads=0: give auto or an integer"),
    (DIRECTIONS, ["ckpt=CKPT", "output=NEW.pt", "method=sefa", "k=17"], "k=17: the codes have 16 entries"),
    (
        DIRECTIONS,
        ["ckpt=CKPT", "output=NEW.pt", "method=class_mean", "target=1", "source=1", "n_images=48"],
        "source=1 is the target",
    ),
    (DIRECTIONS, ["ckpt=CKPT", "output=NEW.pt", "labels=ONECLASS"], "labels=CSV goes with input=DIR"),
    (
        DIRECTIONS,
        ["ckpt=CKPT", "output=NEW.pt", "target=a", "input=MINE", "labels=ONECLASS"],
        "gives every image the label 'a'",
    ),
    (EDIT, ["ckpt=CKPT", "directions=DIRS", "output=NEW", "index=3"], "holds 1 direction(s)"),
    (EDIT, ["ckpt=CKPT", "directions=DIRS", "output=NEW", "strengths=[]"], "strengths=[] must be a non-empty list"),
    (EDIT, ["ckpt=CKPT", "directions=MISSING", "output=NEW"], "not found; write one with ogan-directions"),
    (EDIT, ["ckpt=CKPT", "directions=FILE", "output=NEW"], "cannot read directions file"),
    (EDIT, ["ckpt=CKPT", "directions=WRONGSIZE", "output=NEW"], "this model's codes have 16 entries"),
    (EXPORT, ["nosuchset", "NEW"], "unknown dataset 'nosuchset'"),
    (EXPORT, ["lsun_church", "NEW"], "church_outdoor_train_lmdb does not exist; download LSUN"),
    (EXPORT, ["digits", "NEW", "root=x"], "give the dataset's settings as dataset.KEY=VALUE"),
    (EXPORT, ["digits", "NEW", "dataset.nokey=1"], "dataset.nokey: unknown key"),
    (EXPORT, ["digits", "NEW", "--overwrite", "--resume"], "--overwrite and --resume: choose one"),
    (TRAIN, ["model.z_dim=${data_settings:nokey}", "train.steps=1"], "${data_settings:nokey}: no such setting"),
    # files from strangers
    (INVERT, ["ckpt=FILE", "input=MINE", "output=NEW"], "FILE"),
    (EDIT, ["ckpt=CKPT", "directions=CKPT", "output=NEW"], "is not a directions file written by ogan-directions"),
]


def _images(folder, n=3, size=32):
    folder.mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(gen.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    return folder


def _fixtures(tmp_path) -> dict:
    shutil.copy(FIXTURE, tmp_path / "model.ckpt")
    _images(tmp_path / "mine")
    (tmp_path / "file").write_text("not what you think")
    (tmp_path / "userdir").mkdir()
    (tmp_path / "userdir" / "thesis.tex").write_text("years of work")
    (tmp_path / "oneclass.csv").write_text("file,attribute\nimg000.png,a\nimg001.png,a\nimg002.png,a\n")
    direction = torch.nn.functional.normalize(torch.randn(1, 16), dim=1)
    save_directions(tmp_path / "dirs.pt", direction, ["class_mean:rest->1"], {"method": "class_mean"})
    save_directions(tmp_path / "wrongsize.pt", torch.nn.functional.normalize(torch.randn(1, 8), dim=1), ["x"], {})
    return {
        "CKPT": tmp_path / "model.ckpt",
        "MINE": tmp_path / "mine",
        "FILE": tmp_path / "file",
        "USERDIR": tmp_path / "userdir",
        "UNDERFILE": tmp_path / "file" / "out",
        "NEW": tmp_path / "new",
        "NEW.pt": tmp_path / "new.pt",
        "DIRS": tmp_path / "dirs.pt",
        "ONECLASS": tmp_path / "oneclass.csv",
        "MISSING": tmp_path / "missing.pt",
        "WRONGSIZE": tmp_path / "wrongsize.pt",
    }


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("script,args,message", CASES, ids=[f"{c[0].split('.')[-1]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_to_a_tool_is_one_line_exit_code_2_and_writes_nothing(tmp_path, script, args, message):
    paths = _fixtures(tmp_path)
    given = []
    for arg in args:
        key, _, value = arg.rpartition("=")
        given.append(f"{key}={paths[value]}" if key and value in paths else str(paths.get(arg, arg)))
    message = str(paths.get(message, message))
    before = _listing(tmp_path)
    proc = run_command_here(tmp_path, *script.split(), *given)  # as the command runs it, in this process
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _listing(tmp_path) == before  # a refused command writes nothing: no logs/, no output, no staging


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start_paused_after_a_batch(tmp_path, common):
    """ogan-invert into tmp_path/inv, paused (SIGSTOP) once its first batches are done."""
    command = [sys.executable, "-m", "ogan_pl.tools.invert", *common, f"output={tmp_path / 'inv'}"]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=script_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: any(p.joinpath("files.txt").exists() for p in tmp_path.glob(".inv.partial-*")))
    proc.send_signal(signal.SIGSTOP)  # so that it is still running whatever the machine's speed
    return proc


def _stop(proc, signum):
    proc.send_signal(signum)
    proc.send_signal(signal.SIGCONT)
    stopped = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - stopped < 5, "the stop took more than a few seconds"
    return err


def _invert_setup(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(FIXTURE, ckpt)
    images = _images(tmp_path / "mine", n=24)
    return [f"ckpt={ckpt}", f"input={images}", "steps=100", "batch_size=4", "lr=0.05"]


def test_a_stopped_invert_leaves_its_output_and_resume_true_finishes_it_as_one_run_would(tmp_path):
    common = _invert_setup(tmp_path)
    run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common, f"output={tmp_path / 'whole'}")
    proc = _start_paused_after_a_batch(tmp_path, common)
    second = run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common, f"output={tmp_path / 'inv'}", check=False)
    assert second.returncode == 2 and "is in use by another run of ogan-invert (pid" in second.stderr
    err = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130 and err.strip().splitlines() == [
        (
            f"stopped by Ctrl-C during invert; output={tmp_path / 'inv'} unchanged; the images finished so far are "
            "kept aside: run again with resume=true to finish"
        )
    ]
    assert not (tmp_path / "inv").exists()  # a first run: nothing in place until it is whole
    partial = next(tmp_path.glob(".inv.partial-*"))
    finished = len((partial / "files.txt").read_text().splitlines())
    assert 0 < finished < 24
    refused = run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common, f"output={tmp_path / 'inv'}", check=False)
    assert refused.returncode == 2 and "resume=true finishes them, overwrite=true starts afresh" in refused.stderr
    other = run_in(
        tmp_path,
        "-m",
        "ogan_pl.tools.invert",
        *common[:-1],
        "lr=0.5",
        "resume=true",
        f"output={tmp_path / 'inv'}",
        check=False,
    )
    assert other.returncode == 2 and "other settings (lr=0.05 there, 0.5 here)" in other.stderr
    done = run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common, "resume=true", f"output={tmp_path / 'inv'}")
    assert f"24 images inverted into {tmp_path / 'inv'} ({finished} of them finished earlier)" in done.stdout
    for name in ("files.txt", "inversions.jsonl"):
        assert len((tmp_path / "inv" / name).read_text().splitlines()) == 24
    assert (tmp_path / "inv" / "files.txt").read_text() == (tmp_path / "whole" / "files.txt").read_text()
    # the same codes as the run that was never stopped: the batches are the same, each image its own
    np.testing.assert_allclose(
        np.load(tmp_path / "inv" / "codes.npy"), np.load(tmp_path / "whole" / "codes.npy"), rtol=0, atol=1e-5
    )
    assert sorted(os.listdir(tmp_path / "inv" / "reconstructions")) == [f"img{i:03d}.png" for i in range(24)]
    assert not list(tmp_path.glob(".inv.*")) and not (tmp_path / "logs").exists()


def test_sigterm_stops_a_resumed_invert_and_keeps_the_complete_result(tmp_path):
    common = _invert_setup(tmp_path)
    run_in(
        tmp_path,
        "-m",
        "ogan_pl.tools.invert",
        *common[:1],
        f"input={tmp_path / 'mine' / 'img000.png'}",
        *common[2:],
        f"output={tmp_path / 'inv'}",
    )
    before = (tmp_path / "inv" / "codes.npy").read_bytes()
    proc = _start_paused_after_a_batch(tmp_path, [*common, "resume=true"])
    err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 143 and err.strip().splitlines() == [
        (
            f"stopped by SIGTERM during invert; output={tmp_path / 'inv'} unchanged; the images finished so far are "
            "kept aside: run again with resume=true to finish"
        )
    ]
    assert (tmp_path / "inv" / "codes.npy").read_bytes() == before  # the complete result, as it was


def test_resume_true_inverts_only_the_images_added_since(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(FIXTURE, ckpt)
    images = _images(tmp_path / "mine", n=3)
    common = [f"ckpt={ckpt}", f"input={images}", "steps=2", f"output={tmp_path / 'inv'}"]
    run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common)
    first = np.load(tmp_path / "inv" / "codes.npy")
    _images(tmp_path / "more", n=5)
    shutil.copy(tmp_path / "more" / "img004.png", images / "img004.png")
    done = run_in(tmp_path, "-m", "ogan_pl.tools.invert", *common, "resume=true")
    assert "4 images inverted" in done.stdout and "(3 of them finished earlier)" in done.stdout
    codes = np.load(tmp_path / "inv" / "codes.npy")
    assert codes.shape == (4, 16) and np.array_equal(codes[:3], first)
    assert (tmp_path / "inv" / "files.txt").read_text().split() == [
        "img000.png",
        "img001.png",
        "img002.png",
        "img004.png",
    ]


def test_export_images_resumes_and_overwrites(tmp_path):
    out = tmp_path / "png"
    run_in(tmp_path, "-m", "ogan_pl.tools.export_images", "digits", str(out), "--split", "holdout")
    files = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert len(files) == 1000
    proc = run_in(tmp_path, "-m", "ogan_pl.tools.export_images", "digits", str(out), "--split", "holdout", check=False)
    assert proc.returncode == 2 and "--overwrite to replace it whole, or --resume to finish it" in proc.stderr
    (out / files[0]).unlink()
    proc = run_in(tmp_path, "-m", "ogan_pl.tools.export_images", "digits", str(out), "--split", "holdout", "--resume")
    assert "wrote 1 images" in proc.stdout and "(999 written earlier)" in proc.stdout
    proc = run_in(
        tmp_path, "-m", "ogan_pl.tools.export_images", "digits", str(out), "--split", "train", "--resume", check=False
    )
    assert proc.returncode == 2 and "other settings (split='holdout' there, 'train' here)" in proc.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*.png")) == files


def test_more_images_than_the_split_holds_is_said_in_one_line(tmp_path):
    paths = _fixtures(tmp_path)
    done = run_in(
        tmp_path,
        "-m",
        "ogan_pl.tools.edit",
        f"ckpt={paths['CKPT']}",
        f"directions={paths['DIRS']}",
        f"output={tmp_path / 'edits'}",
        "n_images=100000",
        "strengths=[0]",
    )
    note = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert note == ["note: n_images=100000 but the held-out split holds 16 images: using all 16"], done.stderr[-2000:]
    done = run_in(
        tmp_path,
        "-m",
        "ogan_pl.tools.directions",
        f"ckpt={paths['CKPT']}",
        "method=pca",
        "k=2",
        f"output={tmp_path / 'pca.pt'}",
        "n_images=100000",
    )
    note = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert note == ["note: n_images=100000 but the training split holds 64 images: using all 64"], done.stderr[-2000:]
