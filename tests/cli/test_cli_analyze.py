"""`weightscope analyze`: outputs, and every bad input exits 2 with one line, store untouched."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from runs import record_tiny
from typer.testing import CliRunner
from weightscope_cli.app import app

import weightscope as ws

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    full = record_tiny(root / "full.zarr", steps=120)
    short = record_tiny(root / "short.zarr", steps=6, every=3)  # 3 snapshots
    other = root / "other.zarr"
    model = torch.nn.Sequential(torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with ws.Recorder(other, model, every=2) as rec:
        rec.attach(opt)
        for _ in range(10):
            opt.zero_grad()
            model(torch.randn(4, 16)).sum().backward()
            opt.step()
    (root / "plain").mkdir()
    zarr.open_group(root / "group.zarr", mode="w")
    return {"full": full, "short": short, "other": other, "plain": root / "plain",
            "group": root / "group.zarr", "missing": root / "missing.zarr"}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in Path(path).rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_writes_figure_and_summary(runs, tmp_path):
    res = runner.invoke(app, ["analyze", str(runs["full"]), "--out", str(tmp_path / "o"),
                              "--bins", "8", "--format", "svg"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "figure1.svg").stat().st_size > 1000
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["active_sets"]["final_active"] == pytest.approx(0.25, abs=0.01)
    assert len(s["decay"]["median"]) == 8 and s["decay"]["param"] == "4.weight"
    assert "Figure 1 of full" in res.stdout and "Spearman" in res.stdout


BAD = [
    (["missing"], [], "does not exist"),
    (["plain"], [], "is not a weightscope run"),
    (["group"], [], "zarr group but not a weightscope run"),
    (["full"], ["--keep", "1.5"], r"keep .* must be in \(0, 1\); got 1.5"),
    (["full"], ["--keep", "0"], r"must be in \(0, 1\); got 0.0"),
    (["full"], ["--bins", "0"], "bins must be an integer >= 1; got 0"),
    (["full"], ["--param", "nope"], r"param must be one of the recorded parameters \['1.weight'"),
    (["full", "other"], [], "must share one architecture"),
]


@pytest.mark.parametrize(("names", "opts", "message"), BAD,
                         ids=[m.split()[0] + str(i) for i, (_, _, m) in enumerate(BAD)])
def test_bad_input_exits_2_with_one_line(runs, tmp_path, names, opts, message):
    paths = [runs[n] for n in names]
    before = {p: _digest(p) for p in paths if p.exists()}
    res = runner.invoke(app, ["analyze", *map(str, paths), "--out", str(tmp_path), *opts])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in res.output
    assert {p: _digest(p) for p in before} == before
    assert not (tmp_path / "summary.json").exists()


def test_short_run_gets_left_and_middle_panels_and_a_warning(runs, tmp_path):
    res = runner.invoke(app, ["analyze", str(runs["short"]), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == [
        "warning: no decay panel: run 'short' has 3 uniformly spaced snapshot(s); the decay "
        "time Δ needs at least 4. Train longer or record with a smaller every=."]
    assert (tmp_path / "o" / "figure1.png").stat().st_size > 1000
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["decay"]["param"] is None and "needs at least 4" in s["decay"]["missing"]
    assert "missing (run too short)" in res.stdout and "Spearman" not in res.stdout


def test_incomplete_run_is_analyzed_with_a_warning(tmp_path):
    path = tmp_path / "crashed.zarr"
    model = torch.nn.Linear(16, 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = ws.Recorder(path, model, every=1)
    rec.attach(opt)
    for _ in range(8):
        opt.zero_grad()
        model(torch.randn(4, 16)).pow(2).mean().backward()
        opt.step()
    rec.abort()
    res = runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "o"), "--bins", "4"])
    assert res.exit_code == 0, res.output
    assert "warning: run 'crashed' is incomplete" in res.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["incomplete"] == ["crashed"]


def test_nan_weights_are_excluded_and_counted(tmp_path):
    path = tmp_path / "nan.zarr"
    model = torch.nn.Linear(16, 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with ws.Recorder(path, model, every=1) as rec:
        for s in range(8):
            opt.zero_grad()
            model(torch.randn(4, 16)).pow(2).mean().backward()
            opt.step()
            if s == 7:  # only the last snapshot holds the NaN (no step spreads it)
                with torch.no_grad():
                    model.weight[0, :3] = float("nan")
            rec.step()
    res = runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "o"), "--bins", "4"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["active_sets"]["excluded_nan"] == 3
    assert s["decay"]["excluded_nan"] == 3
    assert np.isclose(sum(s["decay"]["count"]), 16 * 16 - 3)
    assert "weights excluded (NaN/Inf)" in res.stdout


def test_a_diverged_run_is_analyzed_up_to_its_last_finite_snapshot(tmp_path):
    path = tmp_path / "div.zarr"
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with ws.Recorder(path, model, every=2) as rec:
        rec.attach(opt)
        for s in range(30):
            opt.zero_grad()
            loss = model(torch.randn(4, 16)).pow(2).mean()
            (loss * float("nan") if s >= 20 else loss).backward()  # a NaN loss from step 21
            opt.step()
    assert np.isnan(ws.open_run(path).distance.values[20:]).all()
    res = runner.invoke(app, ["analyze", str(path), "--out", str(tmp_path / "o"), "--bins", "4"])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == [
        "warning: run 'div' diverged: 100% of the weights of its last snapshot (step 30) are NaN "
        "or Inf; analyzing its 11 snapshot(s) up to step 20, the last with finite weights "
        "only."]
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["diverged"] == ["div"] and s["active_sets"]["step"][-1] == 20
    assert s["distance"]["unknown_steps"] == 0 and "diverged" in res.stdout
