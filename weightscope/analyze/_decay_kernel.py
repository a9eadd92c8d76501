"""Private kernel of the decay-time analysis: first zero crossing of the lagged Pearson
correlation of many weight series at once (DESIGN.md section 4, paper section 2.3).

For one series ``x_0 .. x_{T-1}`` and a lag ``tau``, ``rho(tau)`` is the Pearson correlation of
the windows ``a = x[0:T-tau]`` and ``b = x[tau:T]``, each with its own mean and variance. Its sign
is the sign of the covariance sum ``q(tau) = sum (a - mean a)(b - mean b) = S_ab - S_a S_b / m``
(``m = T - tau``), so no division is needed. All lagged cross sums ``S_ab`` come from one batched
FFT of the centered series ``y`` (``irfft(|rfft(y)|^2)``), the window sums from prefix sums.

Precision. The fast pass runs in float32 with a round-off bound ``B`` per series (the FFT,
centering, casts and products all scale with ``E = sum y^2``; the FFT part with a safety factor
on the ``u log2(nfft) E`` allowance, see docs/performance.md). A lag is *surely* positive when
``q > B`` and
*surely* crossed when ``q < -B``. Where the first lag that is not surely positive is in between,
the undecided lags are evaluated directly with the two-pass float64 formula (what a float64
``scipy.stats.pearsonr`` computes; :mod:`._decay_exact`); a series with many of them is first
redone in float64. The result equals that oracle except for correlations within float64
round-off of exactly zero.

Constant windows. ``x[0:m]`` is constant iff ``m`` is at most the length of the run of equal
values that opens the series, and ``x[tau:T]`` iff ``m`` is at most the closing run. Both windows
have ``m`` points, so the lags with a constant window are exactly ``tau >= T - max(open, close)``:
one cut-off per series, equivalent to comparing running maxima and minima, without their passes.

Layout. Columns go in blocks (prefix and window sums vectorized over columns, per-thread work
arrays reused so that large temporaries cost no page faults) and each block in FFT sub-blocks
small enough to stay in L2 (:mod:`._decay_fft`). ``workers`` threads share the blocks.

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
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import schema
from .._validate import is_int
from ..errors import AnalysisError, ConfigError
from . import _decay_torch
from ._decay_exact import apply_exact
from ._decay_fft import fft_pass, prepare, settle

__all__ = ["check_max_lag", "decay_kernel"]

#: elements (T * columns) of one block: prefix and window sums run vectorized over its columns
_BLOCK_ELEMENTS = 1 << 19
_BACKENDS = ("auto", "numpy", "torch")


def check_max_lag(n_steps: int, max_lag: int | None) -> int:
    """Validate ``max_lag`` for ``n_steps`` snapshots and return it (default ``T - 3``).

    Examples
    --------
    >>> check_max_lag(10, None), check_max_lag(10, 8)
    (7, 8)
    """
    if n_steps < schema.MIN_SNAPSHOTS:
        raise AnalysisError(
            f"the decay time needs at least {schema.MIN_SNAPSHOTS} uniformly spaced snapshots "
            f"(so that windows of >= 2 points exist); got {n_steps}. Record more steps or use "
            "a smaller `every`."
        )
    if max_lag is None:
        return n_steps - 3
    if not is_int(max_lag) or not 1 <= max_lag <= n_steps - 2:  # type: ignore[operator]
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


