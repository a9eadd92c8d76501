"""Helpers of the decay-time tests: realistic weight trajectories and the pearsonr oracle (runs
in the store layout come from :mod:`weightscope.testing`)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.stats

#: |rho| below which a disagreement with the oracle counts as a tie at zero
TIE = 1e-9


def trajectories(n_steps: int, n: int, seed: int = 0) -> np.ndarray:
    """(T, n) float32 mix of random walks with drift, AR(1) (phi in 0..0.99) and sinusoids."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)[:, None]
    noise = rng.normal(0.0, 1e-3, (n_steps, n))
    walk = np.cumsum(noise + rng.normal(0.0, 3e-4, n), axis=0)
    phi = rng.uniform(0.0, 0.99, n)
    ar = np.empty((n_steps, n))
    ar[0] = noise[0]
    for k in range(1, n_steps):
        ar[k] = phi * ar[k - 1] + noise[k]
    wave = 1e-2 * np.sin(2 * np.pi * t / rng.uniform(2.0, n_steps, n) + rng.uniform(0, 6, n))
    wave += rng.normal(0.0, rng.uniform(0.0, 3e-3, n), (n_steps, n))
    kind = rng.integers(0, 3, n)
    x = np.choose(kind, [walk, ar, wave]) + rng.normal(0.0, 0.05, n)
    return x.astype(np.float32)


def oracle_rho(x: np.ndarray, max_lag: int) -> np.ndarray:
    """rho(tau) for tau = 1..max_lag (rows) by scipy.stats.pearsonr in float64; NaN where a
    window is constant (pearsonr's own rule)."""
    x = np.asarray(x, dtype=np.float64)
    n_steps = x.shape[0]
    rho = np.empty((max_lag, x.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tau in range(1, max_lag + 1):
            rho[tau - 1] = scipy.stats.pearsonr(x[: n_steps - tau], x[tau:], axis=0).statistic
    return rho


def oracle_delta(x: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(delta, censored, rho) by the definition, from :func:`oracle_rho`."""
    x64 = np.asarray(x, dtype=np.float64)
    rho = oracle_rho(x64, max_lag)
    crossed = rho <= 0  # NaN (constant window) never counts
    first = crossed.argmax(axis=0)
    any_cross = crossed.any(axis=0)
    delta = np.where(any_cross, first + 1, max_lag).astype(np.float64)
    censored = ~any_cross
    bad = ~np.isfinite(x64).all(axis=0) | (x64 == x64[0]).all(axis=0)
    delta[bad] = np.nan
    censored[bad] = False
    return delta, censored, rho


def assert_matches_oracle(
    x: np.ndarray, delta: np.ndarray, censored: np.ndarray, max_lag: int
) -> int:
    """Assert the kernel's output equals the oracle's, except ties at zero; return the ties."""
    want, want_c, rho = oracle_delta(x, max_lag)
    same = (want == delta) | (np.isnan(want) & np.isnan(delta))
    ties = 0
    for j in np.flatnonzero(~same | (want_c != censored)):
        assert np.isfinite(want[j]) and np.isfinite(delta[j]), (j, want[j], delta[j])
        lag = int(min(want[j], delta[j]))
        assert abs(rho[lag - 1, j]) < TIE, (j, want[j], delta[j], rho[lag - 1, j])
        ties += 1
    return ties

