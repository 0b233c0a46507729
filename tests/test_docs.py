"""The README and the docs pages cannot drift from the code: every block marked `<!-- runnable -->`
runs as written (with tiny settings appended), every command they name exists, and the README
stays a front page."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import ROOT, script_env

MARKER = "<!-- runnable -->"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: appended to every training command: a tiny model for a few steps (conf/debug/fast.yaml), no logger
TINY_TRAIN = ["debug=fast", "train.steps=2"]


def runnable_blocks() -> list[tuple[str, list[str]]]:
    """(page:line, the block's command lines) of every fenced block right after the marker."""
    blocks = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != MARKER:
                continue
            assert lines[i + 1].startswith("```"), f"{page.name}:{i + 1}: {MARKER} must precede a fenced block"
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            commands = [c.strip() for c in lines[i + 2 : end] if c.strip() and not c.strip().startswith("#")]
            blocks.append((f"{page.relative_to(ROOT)}:{i + 1}", commands))
    return blocks


def as_run(command: str) -> list[str]:
    """The command as the test runs it: `python X.py` from the repository, console scripts from this
    environment, tiny settings appended to training commands."""
    argv = shlex.split(command)
    if argv[0] == "python":
        program = argv[1] if argv[1] != "-m" else argv[2]
        argv = [sys.executable, str(ROOT / argv[1]) if argv[1].endswith(".py") else argv[1], *argv[2:]]
    else:
        program = argv[0]
        argv = [str(Path(sys.executable).parent / argv[0]), *argv[1:]]
    if program in ("train.py", "ogan-train", "ogan_pl.run.train"):
        given = {a.split("=", 1)[0] for a in argv if "=" in a}
        argv += [a for a in TINY_TRAIN if a.split("=", 1)[0] not in given]
    return argv


def test_the_pages_have_runnable_blocks():
    blocks = runnable_blocks()
    assert len(blocks) >= 5
    assert any(where.startswith("README.md") for where, _ in blocks)
    assert all(commands for _, commands in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("where,commands", runnable_blocks(), ids=lambda v: v if isinstance(v, str) else "")
def test_runnable_blocks_run(where, commands, tmp_path):
    env = script_env(tmp_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for command in commands:
        proc = subprocess.run(
            as_run(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, (
            f"{where}: `{command}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


def test_every_command_the_pages_name_exists():
    """`ogan-*` console scripts are in pyproject.toml; `python -m MODULE` modules import."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    text = "\n".join(page.read_text() for page in PAGES)
    named = set(re.findall(r"(?<![\w/.-])(ogan-[a-z-]+[a-z])", text))
    assert named and named <= set(scripts), named - set(scripts)
    modules = sorted(set(re.findall(r"python -m (ogan_pl[\w.]*)", text)))
    check = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if not u.find_spec(m)])"
    proc = subprocess.run([sys.executable, "-c", check, *modules], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", f"no such modules: {proc.stdout}{proc.stderr[-2000:]}"


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for image in ("samples", "reconstructions", "interpolations"):
        assert f"docs/images/{image}.png" in readme
        assert (ROOT / "docs" / "images" / f"{image}.png").stat().st_size > 1000
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b.*(earlier|before the)", readme, re.IGNORECASE)
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links and all((ROOT / link).exists() for link in links), [
        link for link in links if not (ROOT / link).exists()
    ]
