"""Private kernel of the decay-time analysis: first zero crossing of the lagged Pearson
correlation of many weight series at once (DESIGN.md section 4, paper section 2.3).

For one series ``x_0 .. x_{T-1}`` and a lag ``tau``, ``rho(tau)`` is the Pearson correlation of
the windows ``a = x[0:T-tau]`` and ``b = x[tau:T]``, each with its own mean and variance. Its sign
is the sign of the covariance sum ``q(tau) = sum (a - mean a)(b - mean b) = S_ab - S_a S_b / m``
(``m = T - tau``), so no division is needed. All lagged cross sums ``S_ab`` come from one batched
FFT of the centered series ``y`` (``irfft(|rfft(y)|^2)``), the window sums from prefix sums.

Precision. The fast pass runs in float32 with a round-off bound ``B`` per series (the FFT,
centering, casts and products all scale with ``E = sum y^2``; the FFT part is measured at under a
quarter of the ``u log2(nfft) E`` allowance). A lag is *surely* positive when ``q > B`` and
*surely* crossed when ``q < -B``. Where the first lag that is not surely positive is in between,
the undecided lags are evaluated directly with the two-pass float64 formula (what a float64
``scipy.stats.pearsonr`` computes; :mod:`._decay_exact`); a series with many of them is first
redone in float64. The result equals that oracle except for correlations within float64
round-off of exactly zero.

Constant windows. ``x[0:m]`` is constant iff ``m`` is at most the length of the run of equal
values that opens the series, and ``x[tau:T]`` iff ``m`` is at most the closing run. Both windows
have ``m`` points, so the lags with a constant window are exactly ``tau >= T - max(open, close)``:
one cut-off per series, equivalent to comparing running maxima and minima, without their passes.

Performance. Columns go in blocks (prefix and window sums vectorized over columns, per-thread
work arrays reused so that large temporaries cost no page faults) and each block in FFT
sub-blocks small enough to stay in L2. ``workers`` threads share the blocks.

Examples
--------
>>> import numpy as np
>>> t = np.arange(40.0)
>>> x = np.stack([np.cos(2 * np.pi * t / 20), t, np.full(40, 3.0)], axis=1)
>>> delta, censored = decay_kernel(x)
>>> delta.tolist(), censored.tolist()
([5.0, 37.0, nan], [False, True, False])
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..errors import AnalysisError, ConfigError
from ._decay_exact import apply_exact, pending

__all__ = ["check_max_lag", "decay_kernel"]

#: elements (T * columns) of one block: prefix and window sums run vectorized over its columns
_BLOCK_ELEMENTS = 1 << 19
#: elements of one FFT sub-block: its arrays stay in L2 and are recycled without page faults
_SUB_ELEMENTS = 1 << 14
#: safety factor on the FFT round-off allowance ``u log2(nfft) E`` (measured ratio < 1.3)
_FFT_SAFETY = 4.0
#: a series whose undecided lags hold more than this many window points times T is redone in
#: float64 before the exact evaluation (cheaper than the two-pass formula on long windows)
_EXACT_PER_STEP = 2
_BACKENDS = ("auto", "numpy", "torch")


def check_max_lag(n_steps: int, max_lag: int | None) -> int:
    """Validate ``max_lag`` for ``n_steps`` snapshots and return it (default ``T - 3``).

    Examples
    --------
    >>> check_max_lag(10, None), check_max_lag(10, 8)
    (7, 8)
    """
    if n_steps < 4:
        raise AnalysisError(
            "the decay time needs at least 4 uniformly spaced snapshots (so that windows of "
            f">= 2 points exist); got {n_steps}. Record more steps or use a smaller `every`."
        )
    if max_lag is None:
        return n_steps - 3
    if isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or not (
        1 <= max_lag <= n_steps - 2
    ):
        raise ConfigError(
            f"max_lag must be an integer in 1..T-2 = 1..{n_steps - 2} (T = {n_steps} "
            f"snapshots, so each window keeps >= 2 points); got {max_lag!r}. Pass "
            f"max_lag=None for the default T-3 = {n_steps - 3}."
        )
    return int(max_lag)


def decay_kernel(
    x: Any, max_lag: int | None = None, *, workers: int = 1, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Decay lag ``Delta`` (in snapshots) and the censored flag of every column of ``x``.

    Parameters
    ----------
    x : array_like, shape (T, n)
        ``n`` series of ``T`` values, time first (float32 or float64; others become float64).
    max_lag : int, optional
        Largest lag tried, in ``1..T-2``; default ``T - 3`` (windows of >= 3 points).
    workers : int
        Threads sharing the blocks of columns (1 inside dask tasks; ``-1``: all cores).
    backend : {"auto", "numpy", "torch"}
        ``"auto"`` sends large inputs to a CUDA GPU through torch when one is available (torch
        is imported lazily, on the first large input, and only if torch is already imported
        or, on Linux, a GPU driver is present); ``"torch"`` forces torch (GPU if available,
        else CPU); ``"numpy"`` never imports torch.

    Returns
    -------
    delta : numpy.ndarray of float64, shape (n,)
        Smallest ``tau`` in ``1..max_lag`` with ``rho(tau) <= 0`` (lags with a constant window
        never count); ``max_lag`` if none (censored); NaN for constant or non-finite series.
    censored : numpy.ndarray of bool, shape (n,)
        True where no lag crossed.

    Examples
    --------
    >>> import numpy as np
    >>> decay_kernel(np.array([[0.0], [1.0], [0.0], [1.0], [0.0], [1.0]]))
    (array([1.]), array([False]))
    """
    x = _as_series(x)
    n_steps, n = x.shape
    lag = check_max_lag(n_steps, max_lag)
    if backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {_BACKENDS}; got {backend!r}. Pass 'auto'.")
    delta = np.full(n, np.nan)
    censored = np.zeros(n, dtype=bool)
    from . import _decay_torch

    torch = _decay_torch.torch_for(backend, x.size)
    if torch is not None:
        job = functools.partial(_decay_torch.torch_block, torch, x, lag, delta, censored)
        _run_blocks(job, n, 1, max(64, _decay_torch.TORCH_BLOCK_ELEMENTS // n_steps))
    else:
        job = functools.partial(_numpy_block, x, lag, delta, censored)
        _run_blocks(job, n, workers, max(64, _BLOCK_ELEMENTS // n_steps))
    return delta, censored


def _as_series(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ConfigError(
            f"the series must be a 2-D array (time, weights); got shape {arr.shape}. "
            "Reshape it, e.g. x.reshape(len(x), -1)."
        )
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _run_blocks(job: Callable[[slice], None], n: int, workers: int, block: int) -> None:
    cuts = [slice(j, min(j + block, n)) for j in range(0, n, block)]
    threads = min(len(cuts), _cpu_count() if workers < 1 else workers)
    if threads <= 1:
        for cut in cuts:
            job(cut)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(job, cuts))


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover


def _numpy_block(
    x: np.ndarray, lag: int, delta: np.ndarray, censored: np.ndarray, cut: slice
) -> None:
    """One block of columns: float32 pass, float64 pass on hard columns, exact pairs last."""
    xb = x[:, cut]
    with np.errstate(over="ignore", invalid="ignore"):  # overflow makes a lag undecided
        mean, limit = prepare(xb, lag)
        d, c, cols, taus, deep = fft_pass(xb, mean, limit, lag, np.float32)
        if deep.size:
            d[deep], c[deep], cols, taus = settle(xb, mean, limit, lag, deep, cols, taus)
        apply_exact(xb, d, c, cols, taus)
    d[limit < 0] = np.nan
    c[limit < 0] = False
    delta[cut], censored[cut] = d, c


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

    The prefix sums run as a loop over time rows, each vectorized over the columns (numpy's
    cumsum along time is several times slower).
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
