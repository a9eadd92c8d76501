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

import itertools

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
    ``taus[k]``, for every pair ``k``. Pairs go in batches of similar window lengths (at most
    a factor 2 apart). Pairs that overflow are redone with each window scaled by an exact
    power of two: for them only the sign is right.
    """
    n_steps = x.shape[0]
    used, which = np.unique(cols, return_inverse=True)
    series = np.zeros((used.size, 2 * n_steps))  # zero tail: every window fits
    series[:, :n_steps] = x[:, used].T
    m = n_steps - taus
    order = np.lexsort((m, np.log2(m).astype(np.int64)))  # by octave of m, then m
    octave = np.log2(m[order]).astype(np.int64)
    out = np.empty(taus.size)
    for start, stop in _runs(octave, PAIR_BUDGET // n_steps):
        batch = order[start:stop]
        out[batch] = _batch_cov(series, which[batch], taus[batch], m[batch])
    return out


def _runs(key: np.ndarray, most: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of equal ``key`` values, at most ``most`` long each."""
    bounds = [0, *(np.flatnonzero(np.diff(key)) + 1).tolist(), key.size]
    most = max(1, most)
    return [(s, min(s + most, e)) for lo, e in itertools.pairwise(bounds)
            for s in range(lo, e, most)]


def _batch_cov(series: np.ndarray, row: np.ndarray, tau: np.ndarray, m: np.ndarray) -> np.ndarray:
    longest = int(m.max())
    view = np.lib.stride_tricks.sliding_window_view(series, longest, axis=1)
    inside = (np.arange(longest) < m[:, None]).astype(np.float64)
    a, b = view[row, 0], view[row, tau]  # copies, one contiguous run per pair
    with np.errstate(over="ignore", invalid="ignore"):
        out = _two_pass(a, b, inside, m)
    bad = ~np.isfinite(out)
    if bad.any():  # huge values: scaling by 2^-k keeps the sign and avoids overflow
        out[bad] = _two_pass(_scaled(view[row[bad], 0]), _scaled(view[row[bad], tau[bad]]),
                             inside[bad], m[bad])
    return out


def _two_pass(a: np.ndarray, b: np.ndarray, inside: np.ndarray, m: np.ndarray) -> np.ndarray:
    a -= (np.einsum("ij,ij->i", a, inside) / m)[:, None]
    b -= (np.einsum("ij,ij->i", b, inside) / m)[:, None]
    return np.einsum("ij,ij,ij->i", a, b, inside)


def _scaled(a: np.ndarray) -> np.ndarray:
    """``a`` times an exact power of two per pair (row), so that its sums cannot overflow."""
    _, exponent = np.frexp(np.abs(a).max(axis=1))
    return np.ldexp(a, -exponent[:, None])
