"""exploration(): explored fraction, flip rate and mask distance against Python loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscope.analyze import exploration, exploration_summary
from weightscope.analyze._mask_kernel import mask_counts, run_mask_counts
from weightscope.errors import AnalysisError, ConfigError
from weightscope.testing import synthetic_run

PARAMS = {"a.weight": 6, "b.weight": 4, "head.weight": 3}  # head: dense (no mask)
SPARSE = {"a.weight": 3, "b.weight": 1}  # participating elements per sparse layer


def _per_step_masks(n_steps: int, seed: int = 0) -> np.ndarray:
    """Masks at the end of steps 0..n_steps, each sparse layer swapping random elements."""
    rng = np.random.default_rng(seed)
    masks = np.ones((n_steps + 1, sum(PARAMS.values())), dtype=bool)
    lo = 0
    for name, n in PARAMS.items():
        if name in SPARSE:
            cur = np.zeros(n, dtype=bool)
            cur[rng.choice(n, SPARSE[name], replace=False)] = True
            for s in range(n_steps + 1):
                if s and rng.random() < 0.6:  # rewire: one element out, one in
                    out, into = rng.choice(np.flatnonzero(cur)), rng.choice(np.flatnonzero(~cur))
                    cur[out], cur[into] = False, True
                masks[s, lo:lo + n] = cur
        lo += n
    return masks


def _oracle_counts(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """flips and explored per step and parameter, by a loop over steps and elements."""
    n_steps = len(masks) - 1
    flips = np.full((n_steps, len(PARAMS)), np.nan)
    explored = np.full((n_steps, len(PARAMS)), np.nan)
    lo = 0
    for p, (name, n) in enumerate(PARAMS.items()):
        if name in SPARSE:
            ever = set(i for i in range(n) if masks[0, lo + i])
            for s in range(1, n_steps + 1):
                flips[s - 1, p] = sum(masks[s, lo + i] != masks[s - 1, lo + i] for i in range(n))
                ever |= {i for i in range(n) if masks[s, lo + i]}
                explored[s - 1, p] = len(ever)
        lo += n
    return flips, explored


def _run(n_steps: int = 12, every: int = 3, chunks: tuple[int, int] | None = None,
         counts: bool = True, seed: int = 0):
    masks = _per_step_masks(n_steps, seed)
    flips, explored = _oracle_counts(masks)
    snap = np.arange(0, n_steps + 1, every)
    kw = {"flips": flips, "explored": explored} if counts else {}
    ds = synthetic_run(np.ones((len(snap), masks.shape[1]), np.float32), params=PARAMS,
                       steps=snap, every=every, chunks=chunks, mask=masks[snap], **kw)
    return ds, masks, flips, explored, snap


def _oracle_distance(masks: np.ndarray, cols: list[int]) -> list[float]:
    final = masks[-1]
    return [sum(m[c] != final[c] for c in cols) / len(cols) for m in masks]


def test_against_loops():
    ds, masks, flips, explored, snap = _run()
    ex = exploration(ds)
    numel = sum(PARAMS[n] for n in SPARSE)
    participating = sum(SPARSE.values())
    for s in range(1, len(masks)):
        assert ex.explored_fraction.values[s - 1] == np.nansum(explored[s - 1]) / numel
        assert ex.flip_rate.values[s - 1] == np.nansum(flips[s - 1]) / participating
    sparse_cols = list(range(PARAMS["a.weight"] + PARAMS["b.weight"]))
    np.testing.assert_array_equal(ex.mask_distance.values,
                                  _oracle_distance(masks[snap], sparse_cols))
    assert ex.attrs["sparse_params"] == list(SPARSE) and ex.attrs["participating"] == "exact"
    assert ex.iteration_progress.values[-1] == 1.0 and ex.step_progress.values[-1] == 1.0
    assert {v: ex[v].attrs["units"] for v in ex.data_vars}


def test_per_param_and_dask_agree():
    ds, masks, flips, explored, snap = _run(chunks=(2, 5))
    ex = exploration(ds, scope="param")
    assert ex.param.values.tolist() == list(SPARSE)
    np.testing.assert_array_equal(ex.explored_fraction.sel(param="b.weight").values,
                                  explored[:, 1] / PARAMS["b.weight"])
    np.testing.assert_array_equal(ex.flip_rate.sel(param="a.weight").values,
                                  flips[:, 0] / SPARSE["a.weight"])
    cols = list(range(PARAMS["a.weight"], PARAMS["a.weight"] + PARAMS["b.weight"]))
    np.testing.assert_array_equal(ex.mask_distance.sel(param="b.weight").values,
                                  _oracle_distance(masks[snap], cols))
    eager = exploration(_run()[0], scope="param")
    np.testing.assert_array_equal(ex.mask_distance.values, eager.mask_distance.values)


def test_static_run_explores_its_density():
    mask = np.zeros((3, 4), bool)
    mask[:, :1] = True
    ds = synthetic_run(np.ones((3, 4)), mask=mask, flips=np.zeros((2, 1)),
                       explored=np.ones((2, 1)))
    ex = exploration(ds)
    assert ex.explored_fraction.values.tolist() == [0.25, 0.25]
    assert ex.flip_rate.values.tolist() == [0.0, 0.0]
    assert ex.mask_distance.values.tolist() == [0.0, 0.0, 0.0]


def test_dense_run_raises():
    with pytest.raises(AnalysisError, match=r"needs a sparse run.*no sparse layer"):
        exploration(synthetic_run(np.ones((3, 4))))
    full = synthetic_run(np.ones((3, 4)), mask=np.ones((3, 4), bool))  # masks never 0
    with pytest.raises(AnalysisError, match="no sparse layer"):
        exploration(full, require_counts=False)


def test_old_run_without_counts():
    ds = _run(counts=False)[0]
    with pytest.raises(AnalysisError, match=r"without them.*require_counts=False"):
        exploration(ds)
    ex = exploration(ds, require_counts=False)
    assert list(ex.data_vars) == ["mask_distance"] and not ex.attrs["counts_recorded"]
    assert ex.attrs["sparse_params"] == list(SPARSE)  # found from the masks
    summary = exploration_summary(ex)
    assert summary["final_explored_fraction"] is None and summary["mean_flip_rate"] is None


def test_bad_scope_and_no_snapshot():
    ds = _run()[0]
    with pytest.raises(ConfigError, match=r"scope must be one of.*got 'global'"):
        exploration(ds, scope="global")
    with pytest.raises(AnalysisError, match="no snapshot yet"):
        exploration(ds.isel(step=slice(0, 0)))
    with pytest.raises(ConfigError, match="scope='all'"):
        exploration_summary(exploration(ds, scope="param"))


def test_sampled_run_scales_participating():
    mask = np.array([[1, 0], [0, 1], [0, 1]], bool)
    ds = synthetic_run(np.ones((3, 2)), mask=mask, flips=[[2], [0]], explored=[[3], [3]])
    ds["numel"] = ("param", np.array([4]))  # 2 of 4 elements recorded
    ex = exploration(ds)
    assert ex.flip_rate.values.tolist() == [1.0, 0.0]  # 2 flips / (1 of 2 scaled to 2)
    assert ex.explored_fraction.values.tolist() == [0.75, 0.75]
    assert "sample" in ex.attrs["participating"]


def test_summary_settles_when_the_mask_stops_changing():
    ds = _run(n_steps=12, every=1)[0]
    s = exploration_summary(exploration(ds))
    d = exploration(ds).mask_distance.values
    last_moving = max(i for i in range(len(d)) if d[i] > 0.01)
    assert s["mask_distance"]["settled_at_progress"] == (last_moving + 1) / 12
    assert s["mask_distance"]["initial"] == d[0] and 0 < s["mean_flip_rate"] <= 2


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_mask_counts_kernel(n_snap, sizes, data):
    n = sum(sizes)
    bits = data.draw(st.lists(st.booleans(), min_size=n_snap * n, max_size=n_snap * n))
    mask = np.array(bits, bool).reshape(n_snap, n)
    pid = np.repeat(np.arange(len(sizes)), sizes)
    got = mask_counts(mask, mask[-1], pid, len(sizes))
    for t in range(n_snap):
        for p in range(len(sizes)):
            cols = [i for i in range(n) if pid[i] == p]
            assert got[t, 0, p] == sum(mask[t, i] != mask[-1, i] for i in cols)
            assert got[t, 1, p] == sum(bool(mask[t, i]) for i in cols)
    import dask.array as da

    chunked = run_mask_counts(da.from_array(mask, chunks=(2, 3)), n_snap - 1, pid, len(sizes))
    np.testing.assert_array_equal(chunked, got)


def test_recorded_search_run_against_its_stored_masks(tmp_path):
    """A SEARCH run rewiring every step, snapshots every step: the analyzer's numbers equal a
    loop over the stored masks (the Recorder's counts and the masks agree)."""
    import torch
    from testutil import batch, tiny_model

    import weightscope as ws

    model = tiny_model()
    sp = ws.sparse.sparsify(model, density=0.25, method=ws.sparse.Search(rewire_every=1),
                            exclude=lambda name, module: False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sp.attach(opt)
    with ws.Recorder(tmp_path / "r.zarr", model, every=1) as rec:
        rec.attach(opt)
        for s in range(1, 9):
            x, y = batch(s)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    ds = ws.open_run(tmp_path / "r.zarr")
    if "flips" not in ds:
        pytest.skip("this Recorder does not record flips/explored yet")
    masks, pid = ds.mask.values, ds.param_id.values
    ex = exploration(ds)
    ever = masks[0].copy()
    for s in range(1, len(masks)):
        ever |= masks[s]
        flips = int((masks[s] != masks[s - 1]).sum())
        assert ex.explored_fraction.values[s - 1] == ever.sum() / pid.size
        assert ex.flip_rate.values[s - 1] == flips / masks[s - 1].sum()
    assert ex.attrs["participating"] == "exact" and ex.flip_rate.values.max() > 0


@pytest.mark.parametrize("scope", ["all", "param"])
def test_counts_stay_lazy_on_dask(scope):
    import xarray as xr

    ds = _run()[0]
    lazy = exploration(ds.chunk({"iteration": 5, "step": 2}), scope=scope)
    assert lazy.flip_rate.chunks is not None and lazy.explored_fraction.chunks is not None
    xr.testing.assert_identical(lazy.compute(), exploration(ds, scope=scope))
