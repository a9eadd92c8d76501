"""numba kernels of the exact per-step distance (CPU, float32/float64, flat contiguous arrays).

Each kernel makes one pass: it adds ``|cur - prev|`` in float64 (the difference of two float32
values is exact in float64) and stores ``cur`` into ``prev`` for the next step. The torch path
it replaces makes four memory-bound passes (difference, absolute value, sum, copy).
Importing this module compiles nothing; each kernel is compiled on its first call for the
dtypes it meets and cached on disk (``cache=True``). Importing it raises ``ImportError``
without numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# reassociation lets the float64 sum run in vector lanes (a fixed order for a given build and
# length: the same input gives the same bits); NaN and Inf propagate as in IEEE arithmetic
_FAST = {"reassoc", "contract"}


@njit(nogil=True, cache=True, fastmath=_FAST)
def absdiff_swap(cur: np.ndarray, prev: np.ndarray) -> float:
    """Return ``sum |cur - prev|`` in float64 and copy ``cur`` into ``prev``."""
    total = 0.0
    for i in range(cur.shape[0]):
        x = cur[i]
        total += abs(np.float64(x) - np.float64(prev[i]))
        prev[i] = x
    return total


@njit(nogil=True, cache=True, fastmath=_FAST)
def masked_absdiff_swap(w: np.ndarray, m: np.ndarray, prev: np.ndarray) -> float:
    """The same for the effective weights ``cur = m * w`` (``m``: uint8 0 / 1)."""
    total = 0.0
    for i in range(w.shape[0]):
        x = w[i] * w.dtype.type(m[i])
        total += abs(np.float64(x) - np.float64(prev[i]))
        prev[i] = x
    return total
