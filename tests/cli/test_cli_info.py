"""`weightscope info`: what a run holds; bad input exits 2 with one line."""

from __future__ import annotations

import torch
from typer.testing import CliRunner
from weightscope_cli.app import app

import weightscope as ws

runner = CliRunner()


def _run(tmp_path, close=True):
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    rec = ws.Recorder(tmp_path / "run.zarr", model, every=2, sample=5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec.attach(opt)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 16)).sum().backward()
        opt.step()
    if close:
        rec.close()
    else:
        rec.abort()
    return tmp_path / "run.zarr"


def test_info_complete_run(tmp_path):
    res = runner.invoke(app, ["info", str(_run(tmp_path))])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "complete" in out and "yes" in out
    assert "3 (every 2 steps; 0 .. 3)" in out
    assert "0.weight" in out and "(8, 16)" in out and "128" in out
    assert "10 of 144" in out  # 5 sampled elements of each of the two weights
    assert "torch" in out


def test_info_incomplete_run(tmp_path):
    res = runner.invoke(app, ["info", str(_run(tmp_path, close=False))])
    assert res.exit_code == 0
    assert "no (still recording, or crashed)" in res.output


def test_info_bad_input(tmp_path):
    (tmp_path / "plain").mkdir()
    for path, msg in [(tmp_path / "missing.zarr", "does not exist"),
                      (tmp_path / "plain", "is not a weightscope run")]:
        res = runner.invoke(app, ["info", str(path)])
        assert res.exit_code == 2
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and msg in lines[0] and lines[0].startswith("error: ")
        assert "Traceback" not in res.output
