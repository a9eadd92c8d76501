"""Exact transposable 2:4 mask: the best of the 90 patterns in every 4x4 block.

Search structure (instead of scoring all 90 patterns, 16 x 90 multiply-adds per block). Write
``x[r, c]`` for the block's magnitudes, ``T`` for rows 0-1 and ``B`` for rows 2-3. For a pair of
rows and a column pair ``{c, d}`` let ``M[{c, d}] = max(x[i, c] + x[j, d], x[i, d] + x[j, c])``
(rows ``i, j`` split the pair) and let ``C[c]`` be the column sums of the half. Every pattern
falls into one of three families (see :mod:`weightscope.kernels._patterns_24`), and the best
pattern of each family is a sum of those few quantities:

- both rows of ``T`` keep pair ``P`` and both rows of ``B`` its complement ``Q``:
  ``C_T[P] + C_B[Q]`` (6 candidates);
- one column of ``P`` doubled in ``T`` and the other in ``B``, ``Q`` split in both halves:
  ``max(C_T[p0] + C_B[p1], C_T[p1] + C_B[p0]) + M_T[Q] + M_B[Q]`` (6 candidates);
- every column kept once per half: ``max_pairings(M_T[P] + M_T[Q]) +
  max_pairings(M_B[P] + M_B[Q])`` over the 3 pairings ``{P, Q}`` (1 candidate).

That is about 120 adds/max per block on 13 candidates, done as whole-plane tensor operations on
a structure-of-arrays copy of the magnitudes, chunk by chunk with buffers reused so the work
stays in cache. Each candidate carries a pattern code that grows with its index; the smallest
code among the maxima (two reductions) names the first best pattern, looked up in a table.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_24_2d
>>> w = torch.arange(16.0).view(4, 4)
>>> m = mask_24_2d(w)
>>> m.sum(0).tolist(), m.sum(1).tolist()
([2, 2, 2, 2], [2, 2, 2, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch

from weightscope.errors import StructureError
from weightscope.kernels._common import check_weight, chunk_elements, chunks, split_out_in
from weightscope.kernels._patterns_24 import CODES, pattern_lut, pattern_row_lut

__all__ = ["mask_24_2d"]


def check_out_in_divisible(w: torch.Tensor, kernel: str) -> None:
    """Raise :class:`StructureError` unless ``out`` and ``in`` are both divisible by 4."""
    if w.shape[0] % 4 or w.shape[1] % 4:
        raise StructureError(
            f"{kernel} needs out and in (dims 0 and 1) divisible by 4 for its 4x4 blocks; got "
            f"a layer of shape {tuple(w.shape)} (out={w.shape[0]}, in={w.shape[1]}). Exclude "
            "this layer or use the 1D structure (mask_24_1d), which only needs in % 4 == 0."
        )


Op = Callable[[], object]


def _pair_sums(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> list[Op]:
    """Ops writing ``out[:, k] = a[:, first_k] + b[:, second_k]`` for the pairs ``PAIRS``.

    ``a``/``b`` hold 5 columns, the last repeating column 0, so pairs ``(c, c+1 mod 4)`` are
    slices: ``PAIRS = (0,1) (1,2) (0,2) | (2,3) (3,0) (1,3)``, read as ``(2, 3)`` per half.
    """
    lead, n = a.shape[0], a.shape[-1]
    view = out.view(lead, 2, 3, n)
    near = (a[:, 0:4].view(lead, 2, 2, n), b[:, 1:5].view(lead, 2, 2, n))
    return [
        partial(torch.add, *near, out=view[:, :, 0:2]),
        partial(torch.add, a[:, 0:2], b[:, 2:4], out=view[:, :, 2]),
    ]


#: Larger than every pattern code: ``code - _BIG * is_max`` puts the maxima's codes first.
_BIG = 4096.0


def _first_max(
    vals: torch.Tensor, codes: torch.Tensor, dim: int, out: tuple[torch.Tensor, torch.Tensor],
    scratch: tuple[torch.Tensor, torch.Tensor],
) -> list[Op]:
    """Ops writing the maximum of ``vals`` along ``dim`` to ``out[0]`` and the smallest code
    among the maxima, minus ``_BIG``, to ``out[1]`` (both keepdim). Codes grow with the index
    along ``dim``, so that is the code of the first maximum. The two scratch buffers (shaped
    like ``vals``) may be the same tensor but must not overlap ``out``."""
    is_max, key = scratch
    return [
        partial(torch.amax, vals, dim, keepdim=True, out=out[0]),
        partial(torch.ge, vals, out[0], out=is_max),
        partial(torch.sub, codes, is_max, alpha=_BIG, out=key),
        partial(torch.amin, key, dim, keepdim=True, out=out[1]),
    ]


class _Program:
    """Buffers for one chunk shape and the pre-bound operations that fill them.

    Plane ``[..., i]`` of every buffer is block ``i`` of the chunk (structure of arrays). The
    operations are bound once, so a chunk costs a loop over ``ops`` and no tensor slicing.
    """

    def __init__(self, shape: tuple[int, int, int], dtype: torch.dtype, device: torch.device):
        nb, groups, kpos = shape
        n, f = nb * groups * kpos, {"dtype": dtype, "device": device}
        self.shape = shape
        # halves 0/1 = rows (0,1) and (2,3); half 2 = their column sums (T, B); col 4 = col 0
        y = torch.empty(3, 2, 5, n, **f)
        self.x = y[0:2].view(4, 5, n)[:, 0:4].view(4, 4, nb, groups, kpos)
        s = torch.empty(2, 3, 6, n, **f)  # both orientations of each pair, per half
        best = torch.empty(3, 6, n, **f)  # M: the better orientation
        flip = torch.empty(3, 6, n, **f)  # 1.0 where the second orientation is strictly better
        cc = torch.empty(2, 6, n, **f)  # C[c] + C[d] per half and pair
        self.ops: list[Op] = [
            partial(self.x.nan_to_num_, nan=0.0, posinf=math.inf),
            partial(y[0:2, :, 4].copy_, y[0:2, :, 0]),
            partial(torch.add, y[0:2, 0], y[0:2, 1], out=y[2]),
            *_pair_sums(y[:, 0], y[:, 1], s[0]),
            *_pair_sums(y[:, 1], y[:, 0], s[1]),
            partial(torch.maximum, s[0], s[1], out=best),
            partial(torch.gt, s[1], s[0], out=flip),
            *_pair_sums(y[2], y[2], cc),
        ]
        cand, code = torch.empty(13, n, **f), torch.empty(13, n, **f)
        code[0:6] = (torch.arange(6, **f) * CODES)[:, None]
        tmp = s.view(36, n)  # s is dead once best/flip exist: reuse it as scratch
        self.ops += self._candidates(best, flip, cc, tmp[0:23], cand, code)
        top = (tmp[13:14], tmp[14:15])
        self.ops += _first_max(cand, code, 0, top, (tmp[0:13], tmp[0:13]))
        self.idx = torch.empty(n, dtype=torch.int64, device=device)
        self.ops += [partial(top[1].add_, _BIG), partial(self.idx.copy_, top[1][0])]
        if kpos == 1:  # per block row, 4 mask bytes as one int32
            self.bits = torch.empty(4, n, dtype=torch.int32, device=device)
        else:
            self.bits = torch.empty(n, 16, dtype=torch.uint8, device=device)

    @staticmethod
    def _candidates(best, flip, cc, tmp, cand, code) -> list[Op]:
        """Ops scoring the 13 candidates into ``cand`` and their pattern codes (offset by
        ``candidate * CODES``) into ``code[6:13]`` (``code[0:6]`` is constant)."""
        n, f = tmp.shape[-1], {"dtype": tmp.dtype, "device": tmp.device}
        both, flips = tmp[0:6], tmp[6:12]
        pairing, pairing_code = tmp[12:18].view(2, 3, n), tmp[0:6].view(2, 3, n)
        ops: list[Op] = [
            partial(torch.add, cc[0, 0:3], cc[1, 3:6], out=cand[0:3]),
            partial(torch.add, cc[0, 3:6], cc[1, 0:3], out=cand[3:6]),
            partial(torch.add, best[0], best[1], out=both),
            partial(torch.add, best[2, 0:3], both[3:6], out=cand[6:9]),
            partial(torch.add, best[2, 3:6], both[0:3], out=cand[9:12]),
            partial(torch.add, flip[0], flip[1], alpha=2, out=flips),
            partial(torch.add, flip[2, 0:3], flips[3:6], alpha=2, out=code[6:9]),
            partial(torch.add, flip[2, 3:6], flips[0:3], alpha=2, out=code[9:12]),
            partial(code[6:12].add_, (torch.arange(6, 12, **f) * CODES)[:, None]),
            partial(torch.add, best[0:2, 0:3], best[0:2, 3:6], out=pairing),
            partial(torch.add, flip[0:2, 0:3], flip[0:2, 3:6], alpha=2, out=pairing_code),
            partial(pairing_code.add_, torch.tensor([0.0, 4.0, 8.0], **f)[:, None]),
        ]
        top = (tmp[18:20].view(2, 1, n), tmp[20:22].view(2, 1, n))
        scratch = (tmp[6:12].view(2, 3, n), tmp[6:12].view(2, 3, n))
        ops += _first_max(pairing, pairing_code, 1, top, scratch)
        return [
            *ops,
            partial(torch.add, top[0][0, 0], top[0][1, 0], out=cand[12]),
            partial(torch.add, top[1][0, 0], top[1][1, 0], alpha=12, out=code[12]),
            partial(code[12].add_, 13 * _BIG + 12 * CODES),
        ]

    def run(self, src: torch.Tensor, dst: torch.Tensor) -> None:
        """Write the best pattern of every block of ``src`` ``(nb, 4, in/4, 4, K)`` to ``dst``
        (the uint8 view of the mask, same shape)."""
        nb, groups, kpos = self.shape
        blocks = src.permute(1, 3, 0, 2, 4)
        if blocks.dtype == self.x.dtype:
            torch.abs(blocks, out=self.x)
        else:
            self.x.copy_(blocks).abs_()
        for op in self.ops:
            op()
        if kpos == 1:  # each row of a block is 4 contiguous bytes: move them as int32
            for r, table in enumerate(pattern_row_lut(src.device)):
                torch.index_select(table, 0, self.idx, out=self.bits[r])
            rows = self.bits.view(4, nb, groups).permute(1, 0, 2)
            dst.view(nb, 4, groups, 4).view(torch.int32).squeeze(-1).copy_(rows)
        else:
            torch.index_select(pattern_lut(src.device), 0, self.idx, out=self.bits)
            pat = self.bits.view(nb, groups, kpos, 4, 4)
            dst.permute(0, 2, 4, 1, 3).copy_(pat)


@torch.no_grad()
def mask_24_2d(w: torch.Tensor) -> torch.Tensor:
    """Exact transposable 2:4 mask: in every 4x4 block the pattern keeping 2 per row and 2 per
    column with the largest kept ``|w|`` sum.

    Parameters
    ----------
    w : torch.Tensor
        Weight ``(out, in)`` or ``(out, c, *kernel)`` with ``out`` and ``in``/``c`` divisible
        by 4; float16, bfloat16, float32 or float64. It is not modified.

    Returns
    -------
    torch.Tensor
        Bool mask with ``w``'s shape and device. Blocks tile ``(out, in)``; for a conv weight
        every kernel position is tiled separately.

    Raises
    ------
    StructureError
        If ``w`` has fewer than 2 dimensions or ``out``/``in`` is not divisible by 4.

    Notes
    -----
    Exact search over all 90 patterns (:func:`patterns_24_2d`), not greedy. Sums are
    accumulated in float32 (float64 for float64 weights). Ties: the decision is taken
    candidate first, then each orientation, the lower index winning every tie; when the sums are
    exact (e.g. integer-valued weights) this selects the optimal pattern with the lowest index
    in :func:`patterns_24_2d`. Patterns whose sums differ only by rounding may be chosen either
    way. NaN counts as magnitude 0; ``inf`` as infinite (patterns keeping it tie).

    Examples
    --------
    >>> import torch
    >>> mask_24_2d(torch.ones(4, 4)).int().tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    """
    w = check_weight(w, "mask_24_2d", min_dim=2)
    check_out_in_divisible(w, "mask_24_2d")
    out_dim, in_dim, kpos = split_out_in(w)
    grid = (out_dim // 4, 4, in_dim // 4, 4, kpos)
    src = w.contiguous().view(grid)
    mask = torch.empty(w.shape, dtype=torch.bool, device=w.device)
    dst = mask.view(torch.uint8).view(grid)
    rows = max(1, chunk_elements(w.device, "search") // (16 * grid[2] * kpos))
    acc = torch.float64 if w.dtype == torch.float64 else torch.float32
    programs: dict[int, _Program] = {}
    for piece in chunks(grid[0], rows):
        nb = piece.stop - piece.start
        if nb not in programs:
            programs[nb] = _Program((nb, grid[2], kpos), acc, w.device)
        programs[nb].run(src[piece], dst[piece])
    return mask
