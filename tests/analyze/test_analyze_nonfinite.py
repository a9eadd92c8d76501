"""Non-finite weights: the Recorder flags the steps (NaN, per parameter), search distance
shows the gaps and counts them, a diverged run is analyzed up to its last all-finite snapshot.
Oracles: float64 numpy loops."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import weightscope as ws
from weightscope import schema
from weightscope.analyze import figure1_data, summary
from weightscope.analyze._common import finite_prefix
from weightscope.analyze.distance import distance_vs_weights, search_distance, unknown_steps
from weightscope.errors import AnalysisError, DivergedRunWarning
from weightscope.testing import synthetic_run

NAN, INF = float("nan"), float("inf")


def _history(steps: int, shapes: dict[str, tuple[int, ...]], seed: int = 0
             ) -> dict[str, np.ndarray]:
    """A float32 random walk per parameter: (steps + 1, numel)."""
    rng = np.random.default_rng(seed)
    return {name: np.cumsum(rng.normal(0, 0.01, (steps + 1, int(np.prod(shape)))), axis=0)
            .astype(np.float32) for name, shape in shapes.items()}


def _record(path, model: nn.Module, hist: dict[str, np.ndarray]) -> None:
    """Record ``hist`` step by step (rec.step() after setting the weights: no optimizer)."""
    params = dict(model.named_parameters())

    def load(s: int) -> None:
        with torch.no_grad():
            for name, values in hist.items():
                params[name].copy_(torch.from_numpy(values[s]).view_as(params[name]))

    load(0)
    with ws.Recorder(path, model, every=1) as rec:
        for s in range(1, len(next(iter(hist.values())))):
            load(s)
            rec.step()


def _oracle(hist: dict[str, np.ndarray]) -> np.ndarray:
    """Per-step distance per parameter, a float64 loop; NaN where it is not finite."""
    names = list(hist)
    steps = len(hist[names[0]]) - 1
    out = np.empty((steps, len(names)))
    for s in range(1, steps + 1):
        for p, name in enumerate(names):
            total = 0.0
            for a, b in zip(hist[name][s].astype(np.float64), hist[name][s - 1]):
                total += abs(a - float(b))
            out[s - 1, p] = total if np.isfinite(total) else NAN
    return out


def test_recorder_flags_non_finite_steps_per_parameter(tmp_path):
    model = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    hist = _history(9, {"0.weight": (5, 6), "1.weight": (3, 5)})
    hist["0.weight"][3, 4] = INF  # steps 3 and 4 touch it
    hist["0.weight"][6:8, 0] = NAN  # steps 6, 7, 8
    _record(tmp_path / "run.zarr", model, hist)
    ds = ws.open_run(tmp_path / "run.zarr")
    got, oracle = ds.distance.values, _oracle(hist)
    assert np.isnan(got[:, 0]).tolist() == [i in (2, 3, 5, 6, 7) for i in range(9)]
    assert not np.isnan(got[:, 1]).any()  # the other parameter keeps every step
    np.testing.assert_array_equal(np.isnan(got), np.isnan(oracle))
    np.testing.assert_allclose(got, oracle, rtol=2e-7)  # float32 differences: docs say so


def test_search_distance_gaps_match_a_float64_loop():
    rng = np.random.default_rng(1)
    d = rng.uniform(0, 1, (12, 3))
    d[2, 0], d[5, 1], d[5, 2], d[9, 2] = NAN, INF, NAN, NAN
    ds = synthetic_run(np.zeros((2, 3), np.float32), params={"a": 1, "b": 1, "c": 1},
                       distance=d)
    total, per = search_distance(ds), search_distance(ds, per_param=True)
    run_total, run_per = 0.0, np.zeros(3)
    for i in range(12):
        known = np.isfinite(d[i])
        run_total += float(d[i][known].sum())
        assert np.isnan(total.values[i]) == (not known.all())
        if known.all():
            assert total.values[i] == pytest.approx(run_total, rel=1e-12)
        for p in range(3):
            run_per[p] += d[i, p] if known[p] else 0.0
            assert np.isnan(per.values[i, p]) == (not known[p])
            if known[p]:
                assert per.values[i, p] == pytest.approx(run_per[p], rel=1e-12)
    assert unknown_steps(total) == 3 and unknown_steps(per) == 4


def test_family_totals_count_known_steps_and_the_gaps():
    d = np.ones((4, 1))
    clean = synthetic_run(np.zeros((2, 4), np.float32), distance=d)
    gappy = synthetic_run(np.zeros((2, 2), np.float32), distance=np.array([[1.0], [NAN],
                                                                            [1.0], [NAN]]))
    fam = distance_vs_weights([clean, gappy], ["clean", "gappy"])
    assert fam.run.values.tolist() == ["gappy", "clean"]
    assert fam.total_distance.values.tolist() == [2.0, 4.0]
    assert fam.unknown_steps.values.tolist() == [2, 0]


def _walk(steps: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.1, (steps, n)), axis=0).astype(np.float32)


def test_a_diverged_run_is_cut_at_its_last_finite_snapshot_with_a_warning():
    w = _walk(12, 8)
    w[9:, :] = NAN  # a NaN loss: every parameter from snapshot 9 on
    d = np.abs(np.diff(w, axis=0, prepend=w[:1])).reshape(12, 2, 4).sum(axis=2)[1:]
    ds = synthetic_run(w, params={"a": 4, "b": 4}, every=2, distance=np.repeat(d, 2, axis=0))
    with pytest.warns(DivergedRunWarning, match=r"run 'x' diverged.*9 snapshot\(s\) up to "
                                                r"step 16"):
        cut = finite_prefix(ds, "x")
    assert cut[schema.STEP].values.tolist() == list(range(0, 18, 2))
    assert cut[schema.ITERATION].values.max() == 16
    assert not np.isnan(cut[schema.DISTANCE].values).any()


def test_figure1_of_a_diverged_run_uses_its_finite_prefix_and_counts_the_gaps():
    w = _walk(12, 8)
    w[9:, :] = NAN
    d = np.abs(np.diff(w, axis=0)).reshape(11, 2, 4).sum(axis=2)
    d[3, 1] = NAN  # a gap inside the finite prefix: counted, not cut
    ds = synthetic_run(w, params={"a": 4, "b": 4}, distance=d)
    with pytest.warns(DivergedRunWarning):
        data = figure1_data([ds], bins=2, labels=["x"])
    s = summary(data)
    assert s["diverged"] == ["x"] and len(s["active_sets"]["step"]) == 9
    assert s["active_sets"]["excluded_nan"] == 0
    assert s["distance"]["unknown_steps"] == 1
    normalized = s["distance"]["normalized"]
    assert normalized[3] is None and max(v for v in normalized if v is not None) == 1.0


def test_isolated_non_finite_weights_do_not_cut_the_run():
    w = _walk(6, 8)
    w[5, :3] = NAN  # 3 of 8 weights: excluded by the analyzers, no cut
    ds = synthetic_run(w, params={"a": 4, "b": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert finite_prefix(ds) is ds


def test_a_run_diverged_from_its_first_snapshot_is_refused():
    w = _walk(4, 4)
    w[:, 1:3] = INF
    with pytest.raises(AnalysisError, match="no snapshot with finite weights only"):
        finite_prefix(synthetic_run(w), "x")


def test_a_run_recorded_finite_is_not_read():
    ds = synthetic_run(_walk(4, 4))
    ds.attrs[schema.NONFINITE] = 0
    ds = ds.drop_vars(schema.W)  # nothing to read: the attribute says all finite
    assert finite_prefix(ds) is ds
