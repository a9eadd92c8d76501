"""numba kernels of :class:`~weightscope.sparse.topk.NumbaTopk` (CPU, float32/float64).

Importing this module compiles nothing; each kernel is compiled on its first call for the
dtypes it meets and cached on disk (``cache=True``). Importing it raises ``ImportError``
without numba. Masks are passed as uint8 views (0 / 1) of the bool mask, ``mf`` is the float
copy of the mask that the forward pass multiplies by.

For one flat layer ``w`` with edges ``lo <= hi``, a step is:

* :func:`classify` - one vectorized pass that reads ``w`` and ``m``: the new mask is 1 where
  ``|w| > hi``, 0 where ``|w| < lo`` and undecided in between (the candidates); ``flags``
  marks the candidates, the weights whose mask changes, and NaNs. It also writes
  ``product = mask * w`` for the next forward pass while ``w`` is being read anyway (that
  product otherwise costs the training step a separate memory-bound pass).
* :func:`collect` - visits only the blocks of 64 weights holding a flag: writes the changes
  to ``m`` and ``mf`` and lists the candidates.
* :func:`count_ones` - the number of ones in ``m`` (when it was changed from outside).
* :func:`select` - the top ``need`` candidates (ties: lower index first) into the mask.
* :func:`sweep` - the three above in one call (one dispatch from Python per layer and step).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SUB = 64  # weights per block visited by `collect` (8 uint64 words of flags)


@njit(nogil=True, cache=True)
def classify(
    w: np.ndarray, m: np.ndarray, flags: np.ndarray, product: np.ndarray, lo: float, hi: float
) -> None:
    """Flag the weights whose mask is to change or be decided, and write ``product``.

    The new mask is 1 where ``|w| > hi``, 0 where ``|w| < lo`` and, for now, unchanged on the
    candidates in between; ``flags`` marks the candidates, the changes and NaNs (``m`` itself
    is only read). ``product = new mask * w``, the forward pass's weight (the candidates'
    entries are final once :func:`select` has run).
    """
    lo_, hi_ = w.dtype.type(lo), w.dtype.type(hi)
    one, zero = w.dtype.type(1), w.dtype.type(0)
    for i in range(w.shape[0]):  # bool logic: vectorizes better than uint8 arithmetic
        x = w[i]
        a = abs(x)
        up = a > hi_
        cand = (a >= lo_) & (a <= hi_)
        old = m[i] != 0
        new = up | (cand & old)
        product[i] = x * (one if new else zero)  # x * 0.0: -0.0 for negative x, as m * w
        flags[i] = cand | (new != old) | (a != a)


@njit(nogil=True, cache=True)
def collect(
    w: np.ndarray, m: np.ndarray, mf: np.ndarray, flags: np.ndarray, lo: float, hi: float,
    out: np.ndarray,
) -> tuple[int, int, int, bool]:
    """Apply the flagged changes to ``m`` and ``mf`` and list the candidates.

    Returns ``(candidates, ones among them, change in the number of ones of m, NaN seen)``;
    only the first ``len(out)`` candidate indices are written (in increasing order).
    """
    lo_, hi_ = w.dtype.type(lo), w.dtype.type(hi)
    n = w.shape[0]
    words = flags[: n - n % 8].view(np.uint64)
    acc = (0, 0, 0, False)
    for s in range(0, words.shape[0] - words.shape[0] % 8, 8):
        hit = words[s] | words[s + 1] | words[s + 2] | words[s + 3]
        hit |= words[s + 4] | words[s + 5] | words[s + 6] | words[s + 7]
        if hit:
            acc = _visit(w, m, mf, flags, lo_, hi_, s * 8, s * 8 + _SUB, out, acc)
    return _visit(w, m, mf, flags, lo_, hi_, n - n % _SUB, n, out, acc)


@njit(nogil=True, cache=True)
def _visit(w, m, mf, flags, lo, hi, start, stop, out, acc):  # type: ignore[no-untyped-def]
    count, ones, delta, nan = acc
    for i in range(start, stop):
        if flags[i]:
            a = abs(w[i])
            if a > hi or a < lo or a != a:
                new = np.uint8(a > hi)
                delta += np.int64(new) - np.int64(m[i])
                m[i] = new
                mf[i] = new
                nan |= a != a
            else:
                if count < out.shape[0]:
                    out[count] = i
                count += 1
                ones += m[i]
    return count, ones, delta, nan


@njit(nogil=True, cache=True)
def count_ones(m: np.ndarray) -> int:
    """Number of ones in the uint8 array ``m``."""
    total = 0
    for i in range(m.shape[0]):
        total += m[i]
    return total


@njit(nogil=True, cache=True)
def select(
    w: np.ndarray, m: np.ndarray, mf: np.ndarray, product: np.ndarray, idx: np.ndarray, need: int
) -> np.ndarray:
    """Keep the ``need`` largest ``|w[idx]|`` (ties: lower index) and drop the others.

    ``idx`` must be increasing. Returns the candidates' magnitudes, largest first.
    """
    vals = np.abs(w[idx])
    order = np.argsort(-vals, kind="mergesort")  # stable: equal values keep index order
    for r in range(idx.shape[0]):
        j = idx[order[r]]
        keep = np.uint8(r < need)
        m[j] = keep
        mf[j] = keep
        product[j] = w[j] * keep
    return vals[order]


@njit(nogil=True, cache=True)
def sweep(
    w: np.ndarray, m: np.ndarray, mf: np.ndarray, flags: np.ndarray, product: np.ndarray,
    lo: float, hi: float, out: np.ndarray, k: int, ones: int,
) -> tuple[int, int, int, np.ndarray]:
    """:func:`classify`, :func:`collect` and, when the band holds the threshold, :func:`select`.

    ``ones`` is the number of ones in ``m`` before the call and ``k`` the number to keep.
    Returns ``(status, ones, need, ranked)``: status 0 = done (``m`` holds the top ``k``,
    ``ranked`` the candidates' magnitudes, largest first, of which the first ``need`` were
    kept); 1 = the threshold left the band (or more candidates than ``out`` holds): ``m`` holds
    ``ones`` ones, retry with other edges; 2 = a NaN magnitude was met.
    """
    classify(w, m, flags, product, lo, hi)
    count, cand_ones, delta, nan = collect(w, m, mf, flags, lo, hi, out)
    ones += delta
    need = k - (ones - cand_ones)  # k minus the weights above `hi`
    if nan:
        return 2, ones, need, np.empty(0, dtype=w.dtype)
    if 0 <= need <= count <= out.shape[0]:
        return 0, k, need, select(w, m, mf, product, out[:count], need)
    return 1, ones, need, np.empty(0, dtype=w.dtype)
