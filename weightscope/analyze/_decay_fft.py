"""The FFT passes of the decay-time kernel, shared by its numpy and torch backends.

:func:`prepare` finds each series' mean and largest usable lag (constant windows excluded, see
:mod:`._decay_kernel`); :func:`fft_pass` computes the lagged covariance sums ``q(tau)`` of a
block of columns by one batched FFT in float32 or float64 and decides the first crossing where
:func:`error_bound` allows; :func:`settle` redoes the hard columns in float64 and collects the
``(column, lag)`` pairs left for the exact two-pass formula (:mod:`._decay_exact`).

Examples
--------
>>> import numpy as np
>>> x = np.cos(2 * np.pi * np.arange(40.0) / 20)[:, None]
>>> mean, limit = prepare(x, 37)
>>> d, c, cols, taus, deep = fft_pass(x, mean, limit, 37, np.float64)
>>> d.tolist(), c.tolist()
([5.0], [False])
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
import scipy.fft as sfft

from ._decay_exact import pending

__all__ = ["energy", "error_bound", "fft_pass", "first_crossing", "prepare", "settle"]

#: elements of one FFT sub-block: its arrays stay in L2 and are recycled without page faults
_SUB_ELEMENTS = 1 << 14
#: safety factor on the FFT round-off allowance ``u log2(nfft) E`` (docs/performance.md,
#: Analysis, gives the measured ratio)
_FFT_SAFETY = 4.0
#: a series whose undecided lags hold more than this many window points times T is redone in
#: float64 before the exact evaluation (cheaper than the two-pass formula on long windows)
_EXACT_PER_STEP = 2


def settle(
    xb: np.ndarray,
    mean: np.ndarray,
    limit: np.ndarray,
    lag: int,
    deep: np.ndarray,
    pair_col: np.ndarray,
    pair_tau: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float64 pass on the columns ``deep``; returns their outcome and all pending pairs."""
    d, c, col64, tau64, _ = fft_pass(xb[:, deep], mean[deep], limit[deep], lag, np.float64)
    return d, c, np.concatenate([pair_col, deep[col64]]), np.concatenate([pair_tau, tau64])


def prepare(xb: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Column means and the largest usable lag (-1: constant or non-finite series)."""
    n_steps = xb.shape[0]
    mean = xb.sum(axis=0, dtype=np.float64) / n_steps
    bad = ~np.isfinite(mean)
    if bad.any():  # a sum of huge finite values may overflow: recheck those columns
        cols = np.flatnonzero(bad)
        finite = np.isfinite(xb[:, cols]).all(axis=0)
        mean[cols[finite]] = (xb[:, cols[finite]] / n_steps).sum(axis=0)
        bad[cols[finite]] = False
    run = np.maximum(_opening_run(xb), _opening_run(xb[::-1]))
    limit = np.minimum(lag, n_steps - 1 - run)
    limit[bad | (run >= n_steps)] = -1
    mean[bad] = 0.0
    return mean, limit


def _opening_run(xb: np.ndarray) -> np.ndarray:
    """Length of the run of values equal to the first one, per column (exact comparison)."""
    run = np.ones(xb.shape[1], dtype=np.int64)
    cols = np.flatnonzero(xb[1] == xb[0])
    if cols.size:
        differs = xb[:, cols] != xb[0, cols]
        first = differs.argmax(axis=0)
        run[cols] = np.where(differs[first, np.arange(cols.size)], first, xb.shape[0])
    return run


def fft_pass(
    xb: np.ndarray, mean: np.ndarray, limit: np.ndarray, lag: int, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FFT pass in ``dtype``: Delta and censored where the bound decides (defaults elsewhere),
    the undecided ``(column, lag)`` pairs, and the columns left for a float64 pass."""
    n_steps, n = xb.shape
    y, prefix = _centered(xb, mean, limit < 0, dtype)
    nfft = sfft.next_fast_len(n_steps + lag, real=True)
    bound_all = error_bound(energy(y), n_steps, nfft, dtype)
    d, c = np.empty(n), np.empty(n, dtype=bool)
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    step = max(8, _SUB_ELEMENTS // n_steps)
    for j in range(0, n, step):
        sub = slice(j, min(j + step, n))
        q, bound = _lagged_cov(y[:, sub], prefix[:, sub], lag, nfft), bound_all[sub]
        d[sub], c[sub], unsure = first_crossing(q, bound, limit[sub])
        if unsure.any():
            u = np.flatnonzero(unsure)
            held.append((u + j, q[:, u], bound[u]))
    if not held:
        none = np.empty(0, dtype=np.int64)
        return d, c, none, none, none
    u, q, bound = (np.concatenate(parts, axis=-1) for parts in zip(*held, strict=True))
    budget = _EXACT_PER_STEP * n_steps if dtype == np.float32 else math.inf
    return d, c, *pending(q, bound, u, limit, (d, c), n_steps, budget)


def _centered(
    xb: np.ndarray, mean: np.ndarray, skip: np.ndarray, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray]:
    """Centered series ``y`` (T, n) in ``dtype`` and its float64 prefix sums (T, n).

    The prefix sums run as a loop over time rows, each vectorized over the columns (quicker
    than numpy's cumsum along time; docs/performance.md, Analysis).
    """
    y = _buffer("y", xb.shape, dtype)
    np.subtract(xb, mean.astype(xb.dtype) if xb.dtype == dtype else mean, out=y)
    if skip.any():  # constant or non-finite columns: their results are overwritten with NaN
        y[:, skip] = 0
    prefix = _buffer("prefix", xb.shape, np.float64)  # prefix[k] = sum y[0:k+1]
    np.copyto(prefix, y)
    for k in range(1, xb.shape[0]):
        np.add(prefix[k - 1], prefix[k], out=prefix[k])
    return y, prefix


def energy(y: np.ndarray) -> np.ndarray:
    """An upper estimate of ``E = sum y^2`` per column, as float64 (accumulated in ``y``'s
    dtype, then raised by that accumulation's round-off allowance)."""
    e = np.einsum("ij,ij->j", y, y).astype(np.float64)
    return e * (1.0 + 2.0 * y.shape[0] * float(np.finfo(y.dtype).eps))


def _lagged_cov(y: np.ndarray, prefix: np.ndarray, lag: int, nfft: int) -> np.ndarray:
    """``q(tau) = S_ab(tau) - S_a S_b / m`` (lag, n) in float64, ``S_ab`` by one FFT."""
    n_steps = y.shape[0]
    spec = sfft.rfft(y, nfft, axis=0)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    r = sfft.irfft(power, nfft, axis=0, overwrite_x=True)
    q = np.subtract(prefix[n_steps - 1], prefix[:lag])  # S_b(tau) = sum y[tau:T]
    q *= prefix[n_steps - 2 : n_steps - 2 - lag : -1]  # S_a(tau) = sum y[0:T-tau]; lag <= T-2
    q *= _inverse_m(n_steps, lag)
    np.subtract(r[1 : lag + 1], q, out=q)
    return q


@functools.lru_cache(maxsize=64)
def _inverse_m(n_steps: int, lag: int) -> np.ndarray:
    """``1 / m`` for ``tau = 1..lag`` as a column."""
    return (1.0 / np.arange(n_steps - 1, n_steps - 1 - lag, -1, dtype=np.float64))[:, None]


_local = threading.local()


def _buffer(name: str, shape: tuple[int, ...], dtype: type[np.floating]) -> np.ndarray:
    """A per-thread work array, reused across calls (fresh large arrays cost page faults)."""
    store = _local.__dict__.setdefault("buffers", {})
    size = math.prod(shape)
    buf = store.get((name, dtype))
    if buf is None or buf.size < size:
        buf = store[(name, dtype)] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def error_bound(
    energy: np.ndarray, n_steps: int, nfft: int, dtype: type[np.floating]
) -> np.ndarray:
    """Round-off bound on ``q``: FFT ``K u log2(nfft) E`` + centering, casts and products
    ``16 u E`` + float64 prefix sums ``2 T u64 E`` + an absolute term for subnormals;
    infinite where the power spectrum (at most ``nfft E``) could overflow ``dtype``."""
    info = np.finfo(dtype)
    rel = float(info.eps) / 2 * (_FFT_SAFETY * math.log2(nfft) + 16.0)
    rel += 2.0 * n_steps * float(np.finfo(np.float64).eps)
    floor = 4.0 * n_steps * nfft * float(info.smallest_subnormal) / float(info.eps)
    bound = np.abs(energy) * rel + floor
    bound[~np.isfinite(bound) | ~(energy * nfft < float(info.max) / 8)] = np.inf
    return bound


def first_crossing(
    q: np.ndarray, bound: np.ndarray, limit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Delta and censored where the bound decides, and the columns it leaves ``unsure``."""
    lag, n = q.shape
    cols = np.arange(n)
    sure_pos = q > bound  # NaN (overflow) is never sure
    first = sure_pos.argmin(axis=0)  # first lag that is not surely positive
    hit = ~sure_pos[first, cols] & (first < limit)
    unsure = hit & ~(q[first, cols] < -bound)  # an infinite bound leaves it unsure
    delta = np.where(hit, first + 1, lag).astype(np.float64)
    return delta, ~hit, unsure
