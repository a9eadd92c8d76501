"""decay_time and decay_by_magnitude on synthetic run Datasets (numpy- and dask-backed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from decay_helpers import trajectories

from weightscope import schema
from weightscope.analyze._decay_kernel import decay_kernel
from weightscope.analyze.decay import decay_by_magnitude, decay_time
from weightscope.errors import AnalysisError, ConfigError
from weightscope.testing import synthetic_run

EVERY = 10
COUNTS = {"conv.weight": 40, "fc.weight": 90, "head.weight": 30}


def _run(chunks: tuple[int, int] | None = None, off_grid: bool = True, seed: int = 0):
    """41 grid snapshots (steps 0..400) plus an off-grid final snapshot at 405."""
    grid = trajectories(41, sum(COUNTS.values()), seed=seed)
    final = grid[-1] * -3.0 + np.linspace(0, 1, grid.shape[1], dtype=np.float32)
    w = np.vstack([grid, final[None]]) if off_grid else grid
    steps = np.arange(w.shape[0]) * EVERY
    if off_grid:
        steps[-1] = 405
    return synthetic_run(w, steps=steps, every=EVERY, params=COUNTS, chunks=chunks), grid


def test_values_are_fractions_of_the_uniform_grid() -> None:
    ds, grid = _run()
    out = decay_time(ds)
    delta, censored = decay_kernel(grid)  # the off-grid final snapshot is not in the series
    np.testing.assert_allclose(out.values, delta * EVERY / 400)
    np.testing.assert_array_equal(out["censored"].values, censored)
    assert out.name == "decay_time" and out.dims == (schema.WEIGHT,)
    assert out.attrs["units"] == "fraction of training"
    assert out.attrs["max_lag"] == 38 and out.attrs[schema.EVERY] == EVERY
    assert out.attrs["last_grid_step"] == 400
    np.testing.assert_array_equal(out[schema.PARAM_ID].values, ds[schema.PARAM_ID].values)
    np.testing.assert_array_equal(out[schema.INDEX].values, ds[schema.INDEX].values)


def test_censored_weights_report_max_lag() -> None:
    ds, _ = _run(off_grid=False)
    out = decay_time(ds, max_lag=5)
    cens = out["censored"].values
    assert cens.any()
    np.testing.assert_allclose(out.values[cens], 5 * EVERY / 400)
    assert (out.values[~cens] < 5 * EVERY / 400 + 1e-12).all()


def test_grid_not_starting_at_zero_and_gaps() -> None:
    w = trajectories(12, 4, seed=1)
    ds = synthetic_run(w, steps=100 + np.arange(12) * 5, every=5, params={"a": 4})
    np.testing.assert_allclose(decay_time(ds).values, decay_kernel(w)[0] * 5 / 155)
    ds = synthetic_run(w, steps=np.r_[np.arange(6) * 5, 40 + np.arange(6) * 5], every=5,
                       params={"a": 4})
    with pytest.raises(AnalysisError, match="step every 5; got 25 then 40"):
        decay_time(ds)


def test_too_few_grid_snapshots_and_bad_max_lag() -> None:
    w = trajectories(5, 3, seed=2)
    ds = synthetic_run(w, steps=[0, 10, 20, 25, 27], every=EVERY, params={"a": 3})  # 3 on grid
    with pytest.raises(AnalysisError, match="at least 4 uniformly spaced snapshots"):
        decay_time(ds)
    ds, _ = _run()
    with pytest.raises(ConfigError, match=r"max_lag must be an integer in 1\.\.T-2 = 1\.\.39"):
        decay_time(ds, max_lag=40)


def test_param_selects_its_weights() -> None:
    ds, _ = _run()
    full = decay_time(ds)
    fc = decay_time(ds, param="fc.weight")
    np.testing.assert_array_equal(fc.values, full.values[40:130])
    np.testing.assert_array_equal(fc["censored"].values, full["censored"].values[40:130])
    assert (fc[schema.PARAM_ID].values == 1).all()
    np.testing.assert_array_equal(fc[schema.INDEX].values, np.arange(90))
    assert fc.attrs["param"] == "fc.weight"
    with pytest.raises(ConfigError, match=r"one of the recorded parameters \['conv.weight', "):
        decay_time(ds, param="nope")


def test_interleaved_param_weights_are_selected_by_position() -> None:
    ds, _ = _run()
    ds = ds.isel({schema.WEIGHT: np.r_[0:20, 130:140, 20:40]})  # conv, head, conv
    out = decay_time(ds, param="conv.weight")
    np.testing.assert_array_equal(out[schema.INDEX].values, np.r_[0:20, 20:40])


def test_dask_input_is_lazy_and_gives_identical_results() -> None:
    ds_np, _ = _run()
    ds_dk, _ = _run(chunks=(8, 48))
    want = decay_time(ds_np)
    lazy = decay_time(ds_dk)
    assert lazy.chunks is not None  # nothing computed yet
    got = lazy.compute()
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(got["censored"].values, want["censored"].values)
    got_fc = decay_time(ds_dk, param="fc.weight").compute()
    np.testing.assert_array_equal(got_fc.values, want.values[40:130])


def test_nan_and_constant_weights_are_nan() -> None:
    ds, _ = _run(off_grid=False)
    w = ds[schema.W].values.copy()
    w[:, 3] = 0.5
    w[7, 4] = np.nan
    ds[schema.W] = ((schema.STEP, schema.WEIGHT), w)
    out = decay_time(ds)
    assert np.isnan(out.values[[3, 4]]).all()
    assert not out["censored"].values[[3, 4]].any()
    assert np.isfinite(np.delete(out.values, [3, 4])).all()


# ----------------------------------------------------------------------------- by magnitude


def test_bins_are_equal_count_ranks_of_the_final_off_grid_snapshot() -> None:
    ds, _ = _run()
    out = decay_by_magnitude(ds, bins=7)  # default: fc.weight, the largest
    assert out.attrs["param"] == "fc.weight" and out.attrs["excluded_nan"] == 0
    assert out.name == "decay_time_median" and out.dims == ("bin",)
    counts = out["count"].values
    assert counts.sum() == 90 and counts.max() - counts.min() <= 1
    final = np.abs(ds[schema.W].values[-1, 40:130].astype(np.float64))  # step 405
    delta = decay_time(ds, param="fc.weight").values
    order = np.argsort(final, kind="stable")
    for b, members in enumerate(np.array_split(order, np.cumsum(out["count"].values)[:-1])):
        vals = delta[members]
        assert out.values[b] == pytest.approx(np.median(vals))
        assert out["q25"].values[b] == pytest.approx(np.quantile(vals, 0.25))
        assert out["q75"].values[b] == pytest.approx(np.quantile(vals, 0.75))
        assert out["magnitude_lo"].values[b] == final[members].min()
        assert out["magnitude_hi"].values[b] == final[members].max()
        assert out["magnitude"].values[b] == pytest.approx(np.median(final[members]))
    assert np.all(out["magnitude_hi"].values[:-1] <= out["magnitude_lo"].values[1:])


def test_nan_weights_are_excluded_and_counted() -> None:
    ds, _ = _run(chunks=(16, 64))
    w = ds[schema.W].values.copy()
    w[:-1, 50] = 1.0  # constant on the grid: NaN decay time
    w[-1, 51] = np.nan  # NaN final magnitude
    w[3, 52] = np.inf  # non-finite series
    ds[schema.W] = ((schema.STEP, schema.WEIGHT), w)
    out = decay_by_magnitude(ds, bins=4)
    assert out.attrs["excluded_nan"] == 3 and out.attrs["n_weights"] == 87
    assert int(out["count"].sum()) == 87


def test_bins_param_and_errors() -> None:
    ds, _ = _run()
    one = decay_by_magnitude(ds, param="head.weight", bins=1)
    assert one["count"].values.tolist() == [30]
    assert one.values[0] == pytest.approx(np.median(decay_time(ds, param="head.weight")))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="bins must be an integer >= 1"):
            decay_by_magnitude(ds, bins=bad)
    with pytest.raises(AnalysisError, match="bins=31 needs at least 31 weights"):
        decay_by_magnitude(ds, param="head.weight", bins=31)
    with pytest.raises(ConfigError, match="one of the recorded parameters"):
        decay_by_magnitude(ds, param="nope")


def test_analyze_modules_do_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "import weightscope.analyze, weightscope.analyze.decay as d\n"
        "from weightscope.analyze import _decay_kernel\n"
        "assert 'torch' not in sys.modules, 'import'\n"
        "d.decay_kernel(np.random.rand(50, 100), backend='auto')\n"
        "assert 'torch' not in sys.modules, 'small auto call'\n"
        "from weightscope.analyze import _decay_torch as t\n"
        "d.decay_kernel(np.random.rand(64, t.TORCH_MIN_ELEMENTS // 64), backend='auto')\n"
        "assert 'torch' not in sys.modules or t._gpu_possible(), 'large call, no GPU'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
