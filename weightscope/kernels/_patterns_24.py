"""The 90 transposable 2:4 patterns of a 4x4 block, enumerated the way mask_24_2d decides.

A pattern keeps exactly 2 entries in every row and every column. ``mask_24_2d`` splits the
search into 13 *candidates*, each a group of patterns sharing a structure, plus a *code* that
picks the pattern inside the group. Pairs of columns are numbered by :data:`PAIRS` so that the
complement of pair ``k`` is pair ``(k + 3) % 6``:

- candidates 0-5 (6 patterns): rows 0 and 1 keep pair ``k``, rows 2 and 3 keep its complement;
  code 0 only.
- candidates 6-11 (48 patterns, 8 each): one column of pair ``k`` is kept by rows 0 and 1, the
  other by rows 2 and 3, and the complement's two columns are split between rows 0/1 and
  between rows 2/3. Code bits: 1 = rows 0-1 double the second column of pair ``k`` (else the
  first), 2 = row 0 takes the complement's second column (else its first), 4 = the same for
  row 2.
- candidate 12 (36 patterns): every column is kept once by rows 0-1 and once by rows 2-3. Code
  ``top + 12 * bottom``; ``top = 4 * p + b1 + 2 * b2`` means row 0 takes one column of pair
  ``p`` (its first if ``b1 == 0``) and one of pair ``p + 3`` (its first if ``b2 == 0``), row 1
  the other two; ``bottom`` likewise for rows 2 and 3.

:func:`patterns_24_2d` lists the 90 distinct patterns in order of first appearance when
candidates and codes are walked in increasing order; this is the tie order of ``mask_24_2d``.

Examples
--------
>>> from weightscope.kernels import patterns_24_2d
>>> p = patterns_24_2d()
>>> tuple(p.shape), bool((p.sum(1) == 2).all() and (p.sum(2) == 2).all())
((90, 4, 4), True)
"""

from __future__ import annotations

import functools

import torch

__all__ = [
    "CODES",
    "N_CANDIDATES",
    "PAIRS",
    "pattern_lut",
    "pattern_row_lut",
    "patterns_24_2d",
]

#: Column pairs; pair ``(k + 3) % 6`` is the complement of pair ``k``.
PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (0, 2), (2, 3), (3, 0), (1, 3))
#: Number of candidate groups and the code range reserved per candidate.
N_CANDIDATES = 13
CODES = 144

Rows = tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]


def _split(pair_a: tuple[int, int], pair_b: tuple[int, int], code: int):
    """Rows (first, second) taking one column of each pair, oriented by the 2 code bits."""
    a0, a1 = pair_a if code & 1 == 0 else pair_a[::-1]
    b0, b1 = pair_b if code & 2 == 0 else pair_b[::-1]
    return (a0, b0), (a1, b1)


def pattern_rows(candidate: int, code: int) -> Rows | None:
    """Columns kept by rows 0-3 for ``(candidate, code)``; None for an unused code."""
    if candidate < 6:
        keep, rest = PAIRS[candidate], PAIRS[(candidate + 3) % 6]
        return (keep, keep, rest, rest) if code == 0 else None
    if candidate < 12:
        if code >= 8:
            return None
        doubled, single = PAIRS[candidate - 6], PAIRS[(candidate - 3) % 6]
        top, bottom = doubled if code & 1 == 0 else doubled[::-1]
        s0, s1 = single if code & 2 == 0 else single[::-1]
        t0, t1 = single if code & 4 == 0 else single[::-1]
        return (top, s0), (top, s1), (bottom, t0), (bottom, t1)
    top, bottom = code % 12, code // 12
    r0, r1 = _split(PAIRS[top // 4], PAIRS[top // 4 + 3], top % 4)
    r2, r3 = _split(PAIRS[bottom // 4], PAIRS[bottom // 4 + 3], bottom % 4)
    return r0, r1, r2, r3


def _bits(rows: Rows) -> tuple[bool, ...]:
    return tuple(c in row for row in rows for c in range(4))


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[tuple[tuple[bool, ...], ...], tuple[tuple[bool, ...], ...]]:
    """(lut rows for every candidate * CODES + code, distinct patterns in first-seen order)."""
    empty = (False,) * 16
    lut, order, seen = [], [], set()
    for candidate in range(N_CANDIDATES):
        for code in range(CODES):
            rows = pattern_rows(candidate, code)
            bits = empty if rows is None else _bits(rows)
            lut.append(bits)
            if rows is not None and bits not in seen:
                seen.add(bits)
                order.append(bits)
    return tuple(lut), tuple(order)


def patterns_24_2d() -> torch.Tensor:
    """The 90 transposable 2:4 patterns as a ``(90, 4, 4)`` bool tensor, in tie order.

    ``mask_24_2d`` keeps, in each 4x4 block, a pattern of maximal kept ``|w|`` sum; when the
    sums are computed exactly (e.g. integer-valued weights) it is the optimal pattern with the
    lowest index here.

    Examples
    --------
    >>> patterns_24_2d()[0].int().tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    """
    return torch.tensor(_tables()[1], dtype=torch.bool).view(90, 4, 4)


_LUT_CACHE: dict[torch.device, torch.Tensor] = {}


def pattern_lut(device: torch.device) -> torch.Tensor:
    """``(N_CANDIDATES * CODES, 16)`` uint8 table from ``candidate * CODES + code`` to bits."""
    if device not in _LUT_CACHE:
        lut = torch.tensor(_tables()[0], dtype=torch.uint8)
        _LUT_CACHE[device] = lut.to(device)
    return _LUT_CACHE[device]


_ROW_LUT_CACHE: dict[torch.device, tuple[torch.Tensor, ...]] = {}


def pattern_row_lut(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Row ``r`` of every :func:`pattern_lut` entry as one int32 (its 4 mask bytes), r = 0-3."""
    if device not in _ROW_LUT_CACHE:
        rows = pattern_lut(torch.device("cpu")).view(torch.int32)
        _ROW_LUT_CACHE[device] = tuple(rows[:, r].contiguous().to(device) for r in range(4))
    return _ROW_LUT_CACHE[device]
