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


def test_info_lists_aliases_of_tied_parameters(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(8, 4)
            self.fc = torch.nn.Linear(4, 4)
            self.head = torch.nn.Linear(4, 8, bias=False)
            self.head.weight = self.emb.weight

    model = Tied()
    with ws.Recorder(tmp_path / "tied.zarr", model, every=1,
                     params=["emb.weight", "fc.weight"]) as rec:
        rec.step()
    res = runner.invoke(app, ["info", str(tmp_path / "tied.zarr")])
    assert res.exit_code == 0, res.output
    assert "emb.weight (= head.weight)" in res.stdout
    assert "fc.weight " in res.stdout and "fc.weight (=" not in res.stdout


def test_info_shows_names_inert(tmp_path):
    from weightscope.testing import random_walks, write_run

    name = "fc\x1b[31m[bold]x"
    path = write_run(tmp_path / "odd.zarr", random_walks(4, 8), params={name: 8})
    res = runner.invoke(app, ["info", str(path)], color=True)
    assert res.exit_code == 0, res.output
    assert "\x1b[31m" not in res.stdout  # the name's escape code is not sent to the terminal
    assert "fc\\x1b[31m[bold]x" in res.stdout  # shown as written, markup not interpreted
