"""`weightscope analyze` on sparse runs: exploration.png and the numbers in summary.json; dense
runs get neither, and no error."""

from __future__ import annotations

import json

import pytest
import torch
from runs import record_tiny
from testutil import batch, tiny_model
from typer.testing import CliRunner
from weightscope_cli.app import app
from weightscope_cli.exploration import write_exploration

import weightscope as ws
from weightscope.sparse import ExcludedLayerWarning

runner = CliRunner()


def _sparse(path, method, steps=12):
    model = tiny_model()
    with pytest.warns(ExcludedLayerWarning):  # the small first conv stays dense: NaN counts
        sp = ws.sparse.sparsify(model, density=0.25, method=method)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sp.attach(opt)
    with ws.Recorder(path, model, every=3) as rec:
        rec.attach(opt)
        for s in range(1, steps + 1):
            x, y = batch(s)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    return {"search": _sparse(root / "search.zarr", ws.sparse.Search(rewire_every=1)),
            "static": _sparse(root / "static.zarr", ws.sparse.Static(), steps=6),
            "dense": record_tiny(root / "dense.zarr", steps=6)}


def test_sparse_runs_get_exploration(runs, tmp_path):
    out = tmp_path / "o"
    res = runner.invoke(app, ["analyze", str(runs["search"]), str(runs["static"]),
                              str(runs["dense"]), "--out", str(out), "--bins", "2"])
    assert res.exit_code == 0, res.output
    assert (out / "exploration.png").stat().st_size > 1000
    numbers = json.loads((out / "summary.json").read_text())["exploration"]
    assert list(numbers) == ["search", "static"]  # the dense run is left out
    search, static = numbers["search"], numbers["static"]
    assert search["mask_distance"]["initial"] > 0 and static["mask_distance"]["initial"] == 0
    if search["counts_recorded"]:  # runs recorded with flips/explored (issue 16)
        assert static["mean_flip_rate"] == 0 and static["final_explored_fraction"] == \
            pytest.approx(0.25, abs=0.02)
        assert search["final_explored_fraction"] > static["final_explored_fraction"]
    assert "Exploration of the sparse runs" in res.stdout and "exploration.png" in res.stdout


def test_dense_runs_get_no_exploration(runs, tmp_path):
    res = runner.invoke(app, ["analyze", str(runs["dense"]), "--out", str(tmp_path),
                              "--bins", "2"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "exploration.png").exists()
    assert "exploration" not in json.loads((tmp_path / "summary.json").read_text())


def test_write_exploration_leaves_no_temporary(runs, tmp_path):
    paths, numbers = write_exploration({"s": ws.open_run(runs["static"])}, tmp_path, "svg")
    assert paths == [tmp_path / "exploration.svg"] and list(numbers["exploration"]) == ["s"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exploration.svg"]


def test_sweep_exploration_outputs(tmp_path):
    import numpy as np
    import xarray as xr
    from weightscope_cli.exploration import write_sweep_exploration

    from weightscope.analyze.sweeps import sweep_table

    explored = [0.3, 0.5, 0.7, np.nan]
    runs = xr.Dataset(
        {"point": ("run", [0, 1, 2, 3]), "series": ("run", ["LOTTERY", "SET", "SEARCH", "REGULAR"]),
         "x": ("run", [0.1, 0.1, 0.1, 1.0]), "seed": ("run", [0] * 4),
         "test_error": ("run", [0.3, 0.2, 0.1, 0.05]), "explored_fraction": ("run", explored),
         "flip_rate": ("run", [0.0, 0.01, 0.1, np.nan])}, attrs={"sweep": "methods"})
    written = write_sweep_exploration(tmp_path, "methods", sweep_table(runs))
    assert [p.name for p in written] == ["methods-explored.png", "methods-explored.pdf",
                                         "methods-explored.json"]
    trend = json.loads(written[-1].read_text())
    assert trend["spearman_within_x"] == {"0.1": -1.0} and trend["points"] == 3
    assert write_sweep_exploration(tmp_path, "old", sweep_table(runs.drop_vars(
        ["explored_fraction", "flip_rate"]))) == []


def _sweep_store(out, explored: bool):
    from weightscope.store.sweep_results import SweepStore

    store = SweepStore.create_or_open(out, "methods", {"steps": 10})
    grid = [("SEARCH", 0.1, 0.2, 0.3), ("SET", 0.1, 0.3, 0.2), ("LOTTERY", 0.1, 0.4, 0.1),
            ("REGULAR", 1.0, 0.1, float("nan"))]
    for point, (series, x, err, frac) in enumerate(grid):
        row = {"key": f"k{point}", "point": point, "series": series, "x": x, "seed": 0,
               "test_error": err, "train_loss": 0.1, "n_weights": 10, "steps": 10,
               "wall_s": 1.0, "cpu_s": 1.0, "config": "{}"}
        if explored:
            row |= {"explored_fraction": frac, "flip_rate": frac / 10}
        store.append(row)


@pytest.mark.parametrize("explored", [True, False])
def test_plot_sweep_draws_error_vs_explored(tmp_path, explored):
    _sweep_store(tmp_path, explored)
    res = runner.invoke(app, ["plot-sweep", str(tmp_path)])
    assert res.exit_code == 0, res.output
    header = (tmp_path / "methods.csv").read_text().splitlines()[0]
    rows = json.loads((tmp_path / "methods.json").read_text())["rows"]
    if explored:
        assert header == "series,x,mean,std,n,explored_fraction,flip_rate"
        assert rows[-1]["explored_fraction"] is None  # REGULAR: dense
        trend = json.loads((tmp_path / "methods-explored.json").read_text())
        assert trend["spearman_within_x"] == {"0.1": -1.0}
        assert (tmp_path / "methods-explored.png").stat().st_size > 1000
    else:  # results from before issue 16: unchanged outputs
        assert header == "series,x,mean,std,n"
        assert not list(tmp_path.glob("methods-explored.*"))
