"""A tool's output folder (ogan_pl.run.outputs): whole or not at all, one run at a time, and never a
folder of the user's own files replaced."""

import json
import subprocess
import sys
import time

import pytest

from ogan_pl.run.outputs import MANIFEST, staged_output
from ogan_pl.utils.errors import UserError


def _write(out, files):
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)


def test_a_finished_run_moves_in_whole_with_its_manifest(tmp_path):
    with staged_output(tmp_path / "out", "ogan-test") as out:
        assert out != tmp_path / "out" and not (tmp_path / "out" / "a.txt").exists()
        _write(out, {"a.txt": "1", "sub/b.txt": "2"})
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["tool"] == "ogan-test" and manifest["files"] == ["a.txt", "sub/b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging, no lock, no old copy left
    assert not (tmp_path / "out" / ".lock").exists()


@pytest.mark.parametrize("interruption", [RuntimeError("crash"), KeyboardInterrupt()])
def test_an_interrupted_run_leaves_the_previous_result(tmp_path, interruption):
    with staged_output(tmp_path / "out", "ogan-test") as out:
        _write(out, {"a.txt": "old"})
    with pytest.raises(type(interruption)), staged_output(tmp_path / "out", "ogan-test", overwrite=True) as out:
        _write(out, {"a.txt": "new", "b.txt": "new"})
        raise interruption
    assert (tmp_path / "out" / "a.txt").read_text() == "old" and not (tmp_path / "out" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with (
        pytest.raises(KeyboardInterrupt),
        staged_output(tmp_path / "new", "ogan-test") as out,
    ):  # a first run interrupted leaves nothing at all
        _write(out, {"a.txt": "x"})
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_an_earlier_result_whole_and_only_then(tmp_path):
    with staged_output(tmp_path / "out", "ogan-test") as out:
        _write(out, {"stale.txt": "first run"})
    with (
        pytest.raises(UserError, match="holds an earlier result; give a new folder, or overwrite=true"),
        staged_output(tmp_path / "out", "ogan-test"),
    ):
        pass
    with staged_output(tmp_path / "out", "ogan-test", overwrite=True) as out:
        _write(out, {"fresh.txt": "second run"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fresh.txt", MANIFEST]


def test_the_users_own_files_are_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    (tmp_path / "file").write_text("x")
    for path, message in ((tmp_path / "mine", "not written by an ogan_pl tool"), (tmp_path / "file", "is a file")):
        with pytest.raises(UserError, match=message), staged_output(path, "ogan-test", overwrite=True):
            pass
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from ogan_pl.run.outputs import staged_output\n"
                f"with staged_output({str(tmp_path / 'out')!r}, 'ogan-test') as out:\n"
                "    print('holding', flush=True); time.sleep(30)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with (
            pytest.raises(UserError, match=r"output .*out is in use by another run of ogan-test \(pid"),
            staged_output(tmp_path / "out", "ogan-test", overwrite=True),
        ):
            pass
        assert time.monotonic() - started < 5  # refused at once, not after waiting
    finally:
        holder.kill()
        holder.wait()
    with staged_output(tmp_path / "out", "ogan-test") as out:  # a killed holder leaves no lock behind
        _write(out, {"a.txt": "after"})
    assert (tmp_path / "out" / "a.txt").read_text() == "after"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nor its hidden folder, once a run came after


def test_a_stopped_resumable_run_keeps_its_finished_work_for_resume_true(tmp_path):
    settings = {"steps": 100}
    with (
        pytest.raises(KeyboardInterrupt) as stop,
        staged_output(tmp_path / "out", "ogan-test", resume=False, settings=settings) as out,
    ):
        _write(out, {"done/1.txt": "finished"})
        raise KeyboardInterrupt
    assert "run again with resume=true to finish" in stop.value.__notes__[0]
    assert not (tmp_path / "out").exists() and len(list(tmp_path.glob(".out.partial-*"))) == 1
    with (
        pytest.raises(
            UserError,
            match=r"an interrupted run left its finished images in \.out\.partial-\d+; "
            "resume=true finishes them, overwrite=true starts afresh",
        ),
        staged_output(tmp_path / "out", "ogan-test", resume=False, settings=settings),
    ):
        pass
    with (
        pytest.raises(UserError, match=r"made with other settings \(steps=100 there, 50 here\)"),
        staged_output(tmp_path / "out", "ogan-test", resume=True, settings={"steps": 50}),
    ):
        pass
    with staged_output(tmp_path / "out", "ogan-test", resume=True, settings=settings) as out:
        assert (out / "done" / "1.txt").read_text() == "finished"  # continued where it stopped
        _write(out, {"done/2.txt": "finished now"})
    assert sorted(p.name for p in (tmp_path / "out" / "done").iterdir()) == ["1.txt", "2.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_resume_continues_a_complete_result_and_overwrite_starts_afresh(tmp_path):
    with staged_output(tmp_path / "out", "ogan-test", resume=False, settings={}) as out:
        _write(out, {"a.txt": "first"})
    with (
        pytest.raises(UserError, match="overwrite=true to replace it whole, or resume=true to finish it"),
        staged_output(tmp_path / "out", "ogan-test", resume=False, settings={}),
    ):
        pass
    with (
        pytest.raises(UserError, match="overwrite=true and resume=true: choose one"),
        staged_output(tmp_path / "out", "ogan-test", overwrite=True, resume=True, settings={}),
    ):
        pass
    with (
        pytest.raises(KeyboardInterrupt),
        staged_output(tmp_path / "out", "ogan-test", resume=True, settings={}) as out,
    ):  # a resumed run stopped: the complete result stays as it was
        _write(out, {"a.txt": "changed", "b.txt": "second"})
        raise KeyboardInterrupt
    assert (tmp_path / "out" / "a.txt").read_text() == "first" and not (tmp_path / "out" / "b.txt").exists()
    with staged_output(tmp_path / "out", "ogan-test", resume=True, settings={}) as out:
        assert (out / "b.txt").read_text() == "second"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt", MANIFEST, "settings.json"]
    with staged_output(tmp_path / "out", "ogan-test", overwrite=True, resume=False, settings={}) as out:
        assert not (out / "a.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
