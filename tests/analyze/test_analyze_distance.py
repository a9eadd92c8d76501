"""search_distance against the cumulative sum; distance_vs_weights across a family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from runs import record_tiny

import weightscope as ws
from weightscope.analyze.distance import distance_vs_weights, search_distance
from weightscope.errors import AnalysisError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ws.open_run(record_tiny(tmp_path_factory.mktemp("dist") / "run.zarr", steps=60))


def test_cumulative_sum(run):
    d = run.distance.values
    got = search_distance(run)
    np.testing.assert_allclose(got.values, np.cumsum(d.sum(axis=1)), rtol=1e-12)
    per = search_distance(run, per_param=True)
    np.testing.assert_allclose(per.values, np.cumsum(d, axis=0), rtol=1e-12)
    assert got.name == "search_distance" and got.attrs["units"]
    assert got.progress.values[-1] == 1.0


def test_missing_distance(tmp_path):
    ds = ws.open_run(record_tiny(tmp_path / "r.zarr", steps=5, track_distance=False))
    with pytest.raises(AnalysisError, match="track_distance=False"):
        search_distance(ds)


def _mlp_run(path, width, steps=30):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, width), torch.nn.ReLU(),
                                torch.nn.Linear(width, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(1)
    with ws.Recorder(path, model, every=5) as rec:
        rec.attach(opt)
        for _ in range(steps):
            x = torch.randn(16, 10, generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), (x[:, 0] > 0).long()).backward()
            opt.step()
    return ws.open_run(path)


def test_distance_vs_weights_table(tmp_path):
    runs = [_mlp_run(tmp_path / f"w{w}.zarr", w) for w in (32, 8, 16)]
    table = distance_vs_weights(runs, labels=["w32", "w8", "w16"])
    assert table.run.values.tolist() == ["w8", "w16", "w32"]
    assert table.weights.values.tolist() == [8 * 12, 16 * 12, 32 * 12]
    assert table.added.values.tolist() == [0, 8 * 12, 24 * 12]
    totals = [float(search_distance(r)[-1]) for r in (runs[1], runs[2], runs[0])]
    np.testing.assert_allclose(table.total_distance.values, totals)
    np.testing.assert_allclose(table.normalized_distance.values, np.array(totals) / max(totals))


def test_distance_vs_weights_needs_one_architecture(tmp_path):
    a = _mlp_run(tmp_path / "a.zarr", 8)
    b = ws.open_run(record_tiny(tmp_path / "b.zarr", steps=5))
    with pytest.raises(AnalysisError, match="must share one architecture"):
        distance_vs_weights([a, b], labels=["mlp", "tiny"])
