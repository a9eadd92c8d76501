"""Exact settling of the decay-time kernel: the lags its round-off bound leaves undecided are
evaluated with the two-pass float64 formula, which is what a float64 ``scipy.stats.pearsonr``
computes (its sign is the sign of the correlation).

Examples
--------
>>> import numpy as np
>>> x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0], [5.0, 0.0]])
>>> exact_cov(x, np.array([0, 1]), np.array([1, 1]))
array([ 5., -1.])
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_exact", "exact_cov", "pending"]

#: elements per batch of the exact (two-pass) evaluation
PAIR_BUDGET = 1 << 20


def pending(
    q: np.ndarray,
    bound: np.ndarray,
    u: np.ndarray,
    limit: np.ndarray,
    out: tuple[np.ndarray, np.ndarray],
    n_steps: int,
    budget: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the unsure columns ``u`` (``q``, ``bound``: theirs): write into ``out = (delta,
    censored)`` the outcome if no undecided lag crosses, and return the undecided ``(column,
    tau)`` pairs, or the column itself when their windows hold more than ``budget`` points."""
    d, c = out
    lag = q.shape[0]
    lim = limit[u]
    neg = q < -bound
    first_neg = neg.argmax(axis=0)
    has_neg = neg[first_neg, np.arange(u.size)] & (first_neg < lim)
    stop = np.where(has_neg, first_neg, lim)  # lags tau <= stop remain to decide
    d[u] = np.where(has_neg, first_neg + 1, lag)
    c[u] = ~has_neg
    undecided = ~(q > bound) & (np.arange(lag)[:, None] < stop)
    cost = (undecided * np.arange(n_steps - 1, n_steps - 1 - lag, -1)[:, None]).sum(axis=0)
    cheap = cost <= budget
    rows, cols = np.nonzero(undecided[:, cheap])
    return u[cheap][cols], rows + 1, u[~cheap]


def apply_exact(
    xb: np.ndarray, d: np.ndarray, c: np.ndarray, pair_col: np.ndarray, pair_tau: np.ndarray
) -> None:
    """Evaluate the pending pairs with the two-pass formula; the first crossing wins."""
    if not pair_col.size:
        return
    crossed = exact_cov(xb, pair_col, pair_tau) <= 0
    np.minimum.at(d, pair_col[crossed], pair_tau[crossed].astype(np.float64))
    c[pair_col[crossed]] = False


def exact_cov(x: np.ndarray, cols: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Two-pass float64 ``sum (a - mean a)(b - mean b)`` of column ``cols[k]`` at lag
    ``taus[k]``, for every pair ``k`` (batched by window length). Pairs that overflow are
    redone with each window scaled by an exact power of two: for them only the sign is right.
    """
    n_steps = x.shape[0]
    out = np.empty(taus.size)
    order = np.argsort(taus, kind="stable")
    j = 0
    while j < order.size:
        longest = n_steps - int(taus[order[j]])
        batch = order[j : j + max(1, PAIR_BUDGET // longest)]
        tau, col, m = taus[batch], cols[batch], n_steps - taus[batch]
        inside = (np.arange(longest)[:, None] < m).astype(np.float64)
        out[batch] = _two_pass(*_windows(x, col, tau, longest), inside, m)
        bad = ~np.isfinite(out[batch])
        if bad.any():  # huge values: scaling by 2^-k keeps the sign and avoids overflow
            a, b = (_scaled(v) for v in _windows(x, col[bad], tau[bad], longest))
            out[batch[bad]] = _two_pass(a, b, inside[:, bad], m[bad])
        j += batch.size
    return out


def _windows(
    x: np.ndarray, col: np.ndarray, tau: np.ndarray, longest: int
) -> tuple[np.ndarray, np.ndarray]:
    """``x[0:longest]`` and ``x[tau:tau+longest]`` of each pair's column, in float64 (rows
    past the end repeat the last value; they are masked out)."""
    i = np.arange(longest)[:, None]
    last = x.shape[0] - 1
    a = x[np.minimum(i, last), col].astype(np.float64)
    b = x[np.minimum(i + tau, last), col].astype(np.float64)
    return a, b


def _two_pass(a: np.ndarray, b: np.ndarray, inside: np.ndarray, m: np.ndarray) -> np.ndarray:
    a -= np.einsum("ij,ij->j", a, inside) / m
    b -= np.einsum("ij,ij->j", b, inside) / m
    return np.einsum("ij,ij,ij->j", a, b, inside)


def _scaled(a: np.ndarray) -> np.ndarray:
    """``a`` times an exact power of two per column, so that its sums cannot overflow."""
    _, exponent = np.frexp(np.abs(a).max(axis=0))
    return np.ldexp(a, -exponent)
