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
    with pytest.raises(type(interruption)):
        with staged_output(tmp_path / "out", "ogan-test", overwrite=True) as out:
            _write(out, {"a.txt": "new", "b.txt": "new"})
            raise interruption
    assert (tmp_path / "out" / "a.txt").read_text() == "old" and not (tmp_path / "out" / "b.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(KeyboardInterrupt):  # a first run interrupted leaves nothing at all
        with staged_output(tmp_path / "new", "ogan-test") as out:
            _write(out, {"a.txt": "x"})
            raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_an_earlier_result_whole_and_only_then(tmp_path):
    with staged_output(tmp_path / "out", "ogan-test") as out:
        _write(out, {"stale.txt": "first run"})
    with pytest.raises(UserError, match="holds an earlier result; give a new folder, or overwrite=true"):
        with staged_output(tmp_path / "out", "ogan-test"):
            pass
    with staged_output(tmp_path / "out", "ogan-test", overwrite=True) as out:
        _write(out, {"fresh.txt": "second run"})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fresh.txt", MANIFEST]


def test_the_users_own_files_are_never_replaced(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    (tmp_path / "file").write_text("x")
    for path, message in ((tmp_path / "mine", "not written by an ogan_pl tool"), (tmp_path / "file", "is a file")):
        with pytest.raises(UserError, match=message):
            with staged_output(path, "ogan-test", overwrite=True):
                pass
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from ogan_pl.run.outputs import staged_output\n"
        f"with staged_output({str(tmp_path / 'out')!r}, 'ogan-test') as out:\n"
        "    print('holding', flush=True); time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(UserError, match=r"output .*out is in use by another run of ogan-test \(pid"):
            with staged_output(tmp_path / "out", "ogan-test", overwrite=True):
                pass
        assert time.monotonic() - started < 5  # refused at once, not after waiting
    finally:
        holder.kill()
        holder.wait()
    with staged_output(tmp_path / "out", "ogan-test") as out:  # a killed holder leaves no lock behind
        _write(out, {"a.txt": "after"})
    assert (tmp_path / "out" / "a.txt").read_text() == "after"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nor its hidden folder, once a run came after
