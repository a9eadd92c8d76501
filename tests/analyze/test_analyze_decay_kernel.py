"""The decay-time kernel against a float64 scipy.stats.pearsonr oracle, and its edge rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from decay_helpers import assert_matches_oracle, oracle_delta, trajectories
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscope.analyze import _decay_exact, _decay_fft, _decay_torch
from weightscope.analyze import _decay_kernel as dk
from weightscope.analyze._decay_exact import exact_cov
from weightscope.analyze._decay_kernel import check_max_lag, decay_kernel
from weightscope.errors import AnalysisError, ConfigError

# ----------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("n_steps", [64, 203])
def test_matches_pearsonr_on_realistic_trajectories(n_steps: int) -> None:
    x = trajectories(n_steps, 300, seed=n_steps)
    delta, censored = decay_kernel(x)
    ties = assert_matches_oracle(x, delta, censored, n_steps - 3)
    assert ties <= 1
    assert 0 < np.mean(censored) < 0.5  # the mix has censored and crossing weights
    assert np.isfinite(delta).all()


@pytest.mark.parametrize("n_steps", range(4, 11))
def test_matches_pearsonr_on_short_series(n_steps: int) -> None:
    x = trajectories(n_steps, 200, seed=n_steps)
    for max_lag in range(1, n_steps - 1):
        delta, censored = decay_kernel(x, max_lag)
        assert_matches_oracle(x, delta, censored, max_lag)


def test_float32_and_float64_inputs_agree() -> None:
    x = trajectories(50, 200, seed=3)
    d32, c32 = decay_kernel(x)
    d64, c64 = decay_kernel(x.astype(np.float64))
    np.testing.assert_array_equal(d32, d64)
    np.testing.assert_array_equal(c32, c64)


def test_trend_dominated_series_take_the_exact_path_and_still_match() -> None:
    # strong drift: the float32 bound cannot decide short windows, the exact pairs do
    rng = np.random.default_rng(7)
    t = np.arange(120)[:, None]
    x = (t * rng.uniform(-1, 1, 300) * 1e-3 + np.cumsum(rng.normal(0, 1e-3, (120, 300)), 0))
    x = (x + 0.3).astype(np.float32)
    delta, censored = decay_kernel(x)
    assert_matches_oracle(x, delta, censored, 117)
    assert censored.any() and (~censored).any()


def test_exact_path_alone_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bound so loose that no lag is decided by the FFT: everything goes through the
    float64 pass (``_EXACT_PER_STEP = 0``) and then the two-pass pairs."""
    x = trajectories(40, 200, seed=11)
    want = decay_kernel(x)
    monkeypatch.setattr(_decay_fft, "_FFT_SAFETY", 1e12)
    monkeypatch.setattr(_decay_fft, "_EXACT_PER_STEP", 0)
    got = decay_kernel(x)
    monkeypatch.setattr(_decay_fft, "_EXACT_PER_STEP", 10**9)  # pairs straight from float32
    got_pairs = decay_kernel(x)
    for g in (got, got_pairs):
        np.testing.assert_array_equal(g[0], want[0])
        np.testing.assert_array_equal(g[1], want[1])


def test_fft_round_off_stays_well_inside_the_bound() -> None:
    """The bound's FFT allowance ``K u log2(nfft) E`` is at least twice the measured error
    (compared with a long-double two-pass reference) on adversarial series."""
    rng = np.random.default_rng(5)
    for n_steps in (4, 9, 64, 300):
        t = np.arange(n_steps)[:, None]
        x = np.concatenate([
            trajectories(n_steps, 40, seed=1),
            (t + rng.normal(0, 0.01, (n_steps, 40))).astype(np.float32),  # pure trend
            (0.5 + 1e-4 * np.cumsum(rng.normal(size=(n_steps, 40)), 0)).astype(np.float32),
            (rng.normal(size=(n_steps, 40)) * (rng.random((n_steps, 40)) < 0.05) * 1e3),
        ], axis=1)
        lag = n_steps - 2
        for dtype in (np.float32, np.float64):
            mean, limit = _decay_fft.prepare(x, lag)
            y, prefix = _decay_fft._centered(x, mean, limit < 0, dtype)
            nfft = _decay_fft.sfft.next_fast_len(n_steps + lag, real=True)
            q = _decay_fft._lagged_cov(y, prefix, lag, nfft)
            energy = _decay_fft.energy(y)
            assert (np.square(y.astype(float)).sum(0) <= energy * (1 + 1e-12)).all()
            ref = _long_double_cov(x, lag)
            allowance = _decay_fft._FFT_SAFETY * math.log2(nfft) + 16
            ok = limit >= 0
            err = np.abs(q - ref).max(axis=0)[ok] / (np.finfo(dtype).eps / 2 * energy[ok])
            assert float(err.max()) < allowance / 2, (n_steps, dtype)


def _long_double_cov(x: np.ndarray, lag: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.longdouble)
    n_steps = x.shape[0]
    out = np.empty((lag, x.shape[1]), dtype=np.longdouble)
    for tau in range(1, lag + 1):
        a, b = x[: n_steps - tau], x[tau:]
        out[tau - 1] = ((a - a.mean(0)) * (b - b.mean(0))).sum(0)
    return out


@pytest.mark.parametrize("budget", [1, 60, 1 << 20])  # pairs per batch: 1, 2, all
def test_exact_cov_is_the_two_pass_formula(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    monkeypatch.setattr(_decay_exact, "PAIR_BUDGET", budget)
    x = trajectories(30, 5, seed=2).astype(np.float64)
    x[:, 3] *= 1e300  # overflows unless scaled
    cols = np.array([0, 4, 2, 2, 1, 3, 3, 0, 4])
    taus = np.array([1, 27, 5, 6, 13, 2, 20, 26, 3])
    got = exact_cov(x, cols, taus)
    for k, (c, tau) in enumerate(zip(cols, taus, strict=True)):
        a, b = x[: 30 - tau, c].astype(float), x[tau:, c].astype(float)
        scale = 2.0**-1000 if c == 3 else 1.0
        want = ((a - a.mean()) * scale * (b - b.mean())).sum()
        ratio = np.log2(want / got[k])  # scaled by an exact power of two (no overflow)
        assert ratio == pytest.approx(round(ratio), abs=1e-9)


# ----------------------------------------------------------------------------- rules


def test_alternating_series_crosses_at_lag_one() -> None:
    delta, censored = decay_kernel(np.tile([[0.0], [1.0]], (5, 3)))
    assert delta.tolist() == [1.0, 1.0, 1.0]
    assert not censored.any()


def test_monotone_series_is_censored_at_max_lag() -> None:
    x = np.linspace(0, 1, 30)[:, None] ** np.array([1.0, 2.0, 0.5])
    for max_lag in (None, 5, 28):
        delta, censored = decay_kernel(x, max_lag)
        assert censored.all()
        assert (delta == (27 if max_lag is None else max_lag)).all()


def test_constant_and_non_finite_series_are_nan() -> None:
    x = trajectories(20, 6, seed=1).astype(np.float64)
    x[:, 0] = 0.25
    x[3, 1] = np.nan
    x[0, 2] = np.inf
    x[19, 3] = -np.inf
    delta, censored = decay_kernel(x)
    assert np.isnan(delta[:4]).all() and not censored[:4].any()
    assert np.isfinite(delta[4:]).all()


def test_huge_finite_values_are_not_mistaken_for_non_finite() -> None:
    x = np.tile([[0.0], [1.0]], (6, 1)) * 1e300 - 3e299
    delta, _ = decay_kernel(x)
    assert delta.tolist() == [1.0]


@pytest.mark.parametrize("scale", [1e-40, 1e-22, 1e18, 1e30, 1e200])
def test_extreme_scales_match_the_oracle(scale: float) -> None:
    # float32 under- and overflow (subnormal products, power spectrum beyond 3e38)
    x = trajectories(28, 200, seed=8).astype(np.float64) * scale
    delta, censored = decay_kernel(x)
    assert_matches_oracle(x, delta, censored, 25)


def test_lags_with_a_constant_window_never_count() -> None:
    # windows x[0:m] are constant for m <= 6: only lags tau <= T - 7 = 3 are usable; at the
    # others the covariance is exactly 0 (<= 0), which must not count as a crossing
    x = np.array([2, 2, 2, 2, 2, 2, 0, 2, 1, 0], dtype=np.float64)[:, None]
    rho = oracle_delta(x, 8)[2][:, 0]
    assert np.isnan(rho[3:]).all() and (rho[:3] > 0).all()  # the premise
    delta, censored = decay_kernel(x, 8)
    assert delta.tolist() == [8.0] and censored.tolist() == [True]
    # the same with the constant run at the end (suffix windows)
    delta, censored = decay_kernel(x[::-1].copy(), 8)
    assert delta.tolist() == [8.0] and censored.tolist() == [True]


def test_half_constant_series_match_the_oracle() -> None:
    x = trajectories(40, 200, seed=4).astype(np.float64)
    x[:20, :100] = x[0, :100]  # constant first half
    x[25:, 100:] = x[-1, 100:]  # constant last 15
    delta, censored = decay_kernel(x)
    assert_matches_oracle(x, delta, censored, 37)


def test_blocks_and_threads_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    x = trajectories(32, 700, seed=9)
    want = decay_kernel(x)
    monkeypatch.setattr(dk, "_BLOCK_ELEMENTS", 32 * 100)
    monkeypatch.setattr(_decay_fft, "_SUB_ELEMENTS", 32 * 9)
    for workers in (1, 2, -1):
        got = decay_kernel(x, workers=workers)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_empty_and_integer_inputs() -> None:
    delta, censored = decay_kernel(np.zeros((10, 0), np.float32))
    assert delta.shape == censored.shape == (0,)
    delta, _ = decay_kernel(np.array([[0], [3], [0], [3], [1]]))
    assert delta.tolist() == [1.0]


def test_max_lag_and_length_are_validated() -> None:
    assert check_max_lag(4, None) == 1
    for bad in (0, 9, 2.5, True, -1):
        with pytest.raises(ConfigError, match=r"max_lag must be an integer in 1\.\.T-2 = 1\.\.8"):
            check_max_lag(10, bad)
    with pytest.raises(AnalysisError, match=r"at least 4 uniformly spaced snapshots .*; got 3\."):
        decay_kernel(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="2-D array"):
        decay_kernel(np.zeros(10))
    with pytest.raises(ConfigError, match="backend must be one of"):
        decay_kernel(np.zeros((10, 2)), backend="jax")


# ----------------------------------------------------------------------------- torch


def test_torch_backend_on_cpu_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setattr(_decay_torch, "TORCH_BLOCK_ELEMENTS", 48 * 100)  # several blocks
    x = trajectories(48, 300, seed=12)
    x[:, 0] = 1.0
    x[5, 1] = np.nan
    x[:, 2:20] *= 1e30  # the float32 power spectrum overflows: settled in float64
    want = decay_kernel(x, backend="numpy")
    got = decay_kernel(x, backend="torch")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.cuda
def test_auto_backend_on_cuda_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    x = trajectories(256, 20000, seed=13)  # above TORCH_MIN_ELEMENTS: "auto" takes the GPU
    want = decay_kernel(x, backend="numpy")
    got = decay_kernel(x, backend="auto")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# ----------------------------------------------------------------------------- properties


_short = st.integers(4, 12).flatmap(
    lambda t: st.lists(st.lists(st.integers(-3, 3), min_size=t, max_size=t),
                       min_size=1, max_size=6)
)


@settings(max_examples=150, deadline=None)
@given(_short)
def test_property_short_integer_series_match_the_oracle(cols: list[list[int]]) -> None:
    # small integers: many ties, constant windows and constant series
    x = np.array(cols, dtype=np.float64).T
    for max_lag in {1, x.shape[0] - 3 or 1, x.shape[0] - 2}:
        delta, censored = decay_kernel(x, max_lag)
        assert_matches_oracle(x, delta, censored, max_lag)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 40), st.integers(0, 10**6), st.integers(0, 8), st.integers(0, 8))
def test_property_constant_runs_match_the_oracle(n: int, seed: int, head: int, tail: int) -> None:
    x = trajectories(n, 8, seed=seed).astype(np.float64)
    x[: min(head, n)] = x[0]
    x[max(0, n - tail) :] = x[-1]
    delta, censored = decay_kernel(x)
    assert_matches_oracle(x, delta, censored, n - 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 40), st.integers(0, 10**6), st.data())
def test_property_nan_injection_gives_nan(n: int, seed: int, data: st.DataObject) -> None:
    x = trajectories(n, 6, seed=seed)
    row = data.draw(st.integers(0, n - 1))
    col = data.draw(st.integers(0, 5))
    want = decay_kernel(x)
    x[row, col] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    delta, censored = decay_kernel(x)
    assert np.isnan(delta[col]) and not censored[col]
    others = np.arange(6) != col
    np.testing.assert_array_equal(delta[others], want[0][others])


@settings(max_examples=80, deadline=None)
@given(
    st.integers(4, 30),
    st.integers(0, 10**6),
    st.integers(1, 64).map(lambda k: k / 8),
    st.integers(-400, 400).map(lambda k: k / 4),
)
def test_property_invariant_to_positive_affine_maps(n: int, seed: int, a: float, b: float) -> None:
    # integer-valued series and dyadic a, b: a*x + b is exact in float64
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.integers(-3, 4, (n, 10)), axis=0).astype(np.float64)
    d1, _ = decay_kernel(x)
    d2, _ = decay_kernel(a * x + b)
    rho = oracle_delta(x, n - 3)[2]
    for j in np.flatnonzero((d1 != d2) & ~(np.isnan(d1) & np.isnan(d2))):
        lag = int(min(d1[j], d2[j]))
        assert abs(rho[lag - 1, j]) < 1e-9  # only ties at exactly zero may flip
    np.testing.assert_array_equal(np.isnan(d1), np.isnan(d2))
