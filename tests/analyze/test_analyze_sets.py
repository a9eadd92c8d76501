"""active_sets against a numpy suffix-all loop on real recorded trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from runs import record_tiny

import weightscope as ws
from weightscope.analyze.sets import active_sets, thresholds
from weightscope.errors import ConfigError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return ws.open_run(record_tiny(tmp_path_factory.mktemp("sets") / "run.zarr", steps=200))


def _oracle(w, pid, keep, scope):
    """Slow and obvious: thresholds by sorting, then a loop over snapshots and weights."""
    final = np.abs(w[-1].astype(np.float64))
    groups = [np.arange(w.shape[1])] if scope == "global" else [
        np.flatnonzero(pid == p) for p in np.unique(pid)]
    thr = np.empty(w.shape[1])
    for g in groups:
        k = math.ceil(keep * len(g))
        thr[g] = np.sort(final[g])[::-1][k - 1]
    mag = np.abs(w.astype(np.float64))
    n_steps, n = w.shape
    active, inactive = np.zeros(n_steps), np.zeros(n_steps)
    for t in range(n_steps):
        for i in range(n):
            active[t] += all(mag[u, i] >= thr[i] for u in range(t, n_steps))
            inactive[t] += all(mag[u, i] < thr[i] for u in range(t, n_steps))
    return active / n, inactive / n


@pytest.mark.parametrize(("keep", "scope"), [(0.25, "param"), (0.5, "global"), (0.1, "param")])
def test_matches_suffix_all_loop(run, keep, scope):
    # every 4th snapshot and the first 300 weights keep the loop quick
    sub = run.isel(step=slice(None, None, 4), weight=slice(0, 300))
    w, pid = sub.w.values, sub.param_id.values
    got = active_sets(sub, keep=keep, scope=scope)
    active, inactive = _oracle(w, pid, keep, scope)
    np.testing.assert_allclose(got.active.values, active)
    np.testing.assert_allclose(got.inactive.values, inactive)
    assert got.active.attrs["long_name"] == "active set"
    assert got.attrs["keep"] == keep and got.attrs["scope"] == scope


def test_final_fractions_and_dask_equals_numpy(run):
    sets = active_sets(run, keep=0.25)
    # final snapshot: exactly ceil(keep n) per parameter above, the rest below (no ties here)
    counts = np.bincount(run.param_id.values)
    expected = sum(math.ceil(0.25 * c) for c in counts) / counts.sum()
    assert sets.active.values[-1] == pytest.approx(expected)
    assert sets.inactive.values[-1] == pytest.approx(1 - expected)
    assert np.all(np.diff(sets.active.values) >= 0) and np.all(np.diff(sets.inactive.values) >= 0)
    eager = active_sets(run.load(), keep=0.25)
    np.testing.assert_array_equal(sets.active.values, eager.active.values)
    assert sets.progress.values[-1] == 1.0


def test_nan_weights_are_excluded_and_counted(run):
    sub = run.isel(weight=slice(0, 50)).load()
    w = sub.w.values.copy()
    w[3, 7] = np.nan
    sub["w"] = (("step", "weight"), w)
    sets = active_sets(sub, keep=0.25)
    assert sets.attrs["excluded_nan"] == 1 and sets.attrs["n_weights"] == 49


def test_thresholds_rule():
    final = np.array([0.1, -0.4, 0.3, 0.2, 0.9, np.nan])
    pid = np.array([0, 0, 0, 0, 1, 1])
    thr = thresholds(final, pid, 2, keep=0.5)
    assert thr.tolist() == [0.3, 0.9]  # k = ceil(0.5 * 4) = 2 -> 2nd largest of |w|
    # global: k = ceil(0.4 * 5 finite values) = 2 -> 2nd largest over both parameters
    assert thresholds(final, pid, 2, 0.4, "global").tolist() == [0.4, 0.4]


@pytest.mark.parametrize("keep", [0, 1, 1.5, -0.1, True])
def test_keep_out_of_range(run, keep):
    with pytest.raises(ConfigError, match=r"keep .* must be in \(0, 1\); got"):
        active_sets(run, keep=keep)


def test_unknown_scope(run):
    with pytest.raises(ConfigError, match="scope must be one of"):
        active_sets(run, scope="layer")
