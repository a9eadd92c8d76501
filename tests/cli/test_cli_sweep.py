"""`weightscope sweep` and `plot-sweep`: every sweep end to end at a tiny size; bad input."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner
from weightscope_cli.app import app

from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sweeps import SWEEPS, get_sweep
from weightscope.store.sweep_results import SweepStore

runner = CliRunner()
TINY = {"num_samples": 200, "batch_size": 16, "width": 16}
TINY_ARGS = ["--steps", "2", "--seeds", "1", "--workers", "1"] + [
    arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_end_to_end(name: str, tmp_path) -> None:
    out = tmp_path / name
    res = runner.invoke(app, ["sweep", name, "--out", str(out), *TINY_ARGS])
    assert res.exit_code == 0, res.output
    points = get_sweep(name, steps=2, **TINY).points
    assert f"{len(points)} runs executed, 0 already done" in res.output

    ds = SweepStore.open(out).to_dataset()  # the store round-trips the sweep's configs
    assert ds.attrs["sweep"] == name and ds.sizes["run"] == len(points)
    stored = {RunConfig.from_json(c) for c in ds["config"].values}
    assert stored == {p.config.replace(seed=0) for p in points}
    assert set(zip(ds["series"].values, ds["x"].values)) == {(p.series, p.x) for p in points}

    again = runner.invoke(app, ["sweep", name, "--out", str(out), *TINY_ARGS])
    assert again.exit_code == 0 and "0 runs executed" in again.output

    res = runner.invoke(app, ["plot-sweep", str(out)])
    assert res.exit_code == 0, res.output
    for ext in ("png", "pdf", "csv", "json"):
        assert (out / f"{name}.{ext}").stat().st_size > 0
    rows = list(csv.DictReader((out / f"{name}.csv").open()))
    extra = 2 * 4 if name == "capacity" else 0  # f and gap per density
    assert len(rows) == len(points) + extra
    assert list(rows[0])[:5] == ["series", "x", "mean", "std", "n"]  # + exploration means
    assert (out / f"{name}-explored.png").exists() == ("explored_fraction" in rows[0])
    summary = json.loads((out / f"{name}.json").read_text())
    assert summary["sweep"] == name and summary["runs"] == len(points)
    assert summary["spec"] == {"steps": 2, "overrides": dict(sorted(TINY.items()))}


def test_bad_input_exits_2_with_one_line(tmp_path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "file").write_text("")
    ok = runner.invoke(app, ["sweep", "blocks", "--out", str(tmp_path / "b"), *TINY_ARGS])
    assert ok.exit_code == 0
    cases = [
        (["sweep", "nope", "--out", str(tmp_path / "x")], "unknown sweep 'nope'"),
        (["sweep", "rewire", "--out", str(tmp_path / "x"), "--seeds", "0"],
         "seeds must be an int >= 1; got 0"),
        (["sweep", "rewire", "--out", str(tmp_path / "x"), "--workers", "0"],
         "workers must be an int >= 1; got 0"),
        (["sweep", "rewire", "--out", str(tmp_path / "x"), "--steps", "0"],
         "steps must be an int >= 1; got 0"),
        (["sweep", "rewire", "--out", str(tmp_path / "x"), "--set", "seed=1"],
         "sweep overrides may only set"),
        (["sweep", "reset", "--out", str(tmp_path / "b"), *TINY_ARGS],
         "holds the sweep 'blocks'; got 'reset'"),
        (["sweep", "blocks", "--out", str(tmp_path / "b"), *TINY_ARGS[:-8]],
         "Resume with the same settings"),
        (["sweep", "blocks", "--out", str(tmp_path / "file")], "--out must be a directory"),
        (["plot-sweep", str(tmp_path / "missing")], "no sweep at"),
        (["plot-sweep", str(tmp_path / "plain")], "is not a weightscope sweep"),
    ]
    for args, message in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.output.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "x").exists()
    assert len(SweepStore.open(tmp_path / "b")) == len(get_sweep("blocks").points)
