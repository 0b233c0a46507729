"""ogan-plot-curves: a PNG of the scores of runs' metrics.jsonl; bad input is one line and exit 2."""

import json

import pytest
from PIL import Image


def fake_run(path, values):
    (path / "checkpoints").mkdir(parents=True)
    lines = [
        json.dumps({"g_iter": 500 * (i + 1), "metrics": {"health/recon_ratio": v, "health/rho": 1 - v}})
        for i, v in enumerate(values)
    ]
    (path / "checkpoints/metrics.jsonl").write_text("\n".join([*lines, "{not json", ""]))
    return path


def test_curves_of_two_runs(run_script, tmp_path):
    a, b = fake_run(tmp_path / "a", [0.8, 0.6, 0.5]), fake_run(tmp_path / "b", [0.9, 0.7])
    proc = run_script(
        "-m", "ogan_pl.tools.plot_curves", str(a), str(b), "--labels", "one,two", "--out", str(tmp_path / "c.png")
    )
    assert "panels health/rho, health/recon_ratio" in proc.stdout
    assert "metrics.jsonl:4 is not a results line" in proc.stderr
    with Image.open(tmp_path / "c.png") as image:
        assert image.format == "PNG" and image.size[0] > 400


@pytest.mark.parametrize(
    "args, says",
    [
        (["missing", "--out", "c.png"], "missing is not a directory"),
        (["a", "--out", "c.jpg"], "give a path ending in .png"),
        (["a", "--out", "nowhere/c.png"], "cannot write there"),
        (["a", "--labels", "x,y", "--out", "c.png"], "--labels names 2 runs"),
        (["empty", "--out", "c.png"], "has no checkpoints/metrics.jsonl"),
    ],
)
def test_bad_input_is_one_line(run_script, tmp_path, args, says):
    fake_run(tmp_path / "a", [0.5])
    (tmp_path / "empty").mkdir()
    proc = run_script("-m", "ogan_pl.tools.plot_curves", *args, check=False)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_without_matplotlib_one_line(monkeypatch, capsys, tmp_path):
    import builtins

    from ogan_pl.tools.plot_curves import plot

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(SystemExit) as stop:
        plot({"a": {"health/rho": [(1, 0.5)]}}, tmp_path / "c.png")
    assert stop.value.code == 2 and "needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
