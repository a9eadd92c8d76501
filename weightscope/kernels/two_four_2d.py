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
stays in cache. A tournament picks the first best candidate and carries its pattern code.

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

import torch

from weightscope.errors import StructureError
from weightscope.kernels._common import check_weight, chunk_elements, chunks, split_out_in
from weightscope.kernels._patterns_24 import CODES, N_CANDIDATES, pattern_lut

__all__ = ["mask_24_2d"]


def check_out_in_divisible(w: torch.Tensor, kernel: str) -> None:
    """Raise :class:`StructureError` unless ``out`` and ``in`` are both divisible by 4."""
    if w.shape[0] % 4 or w.shape[1] % 4:
        raise StructureError(
            f"{kernel} needs out and in (dims 0 and 1) divisible by 4 for its 4x4 blocks; got "
            f"a layer of shape {tuple(w.shape)} (out={w.shape[0]}, in={w.shape[1]}). Exclude "
            "this layer or use the 1D structure (mask_24_1d), which only needs in % 4 == 0."
        )


class _Workspace:
    """Buffers for ``n`` blocks, reused by every chunk (plane ``[..., b]`` is block ``b``)."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device) -> None:
        f = {"dtype": dtype, "device": device}
        # halves 0/1: rows (0,1) and (2,3) of the block; half 2: their column sums (T, B).
        # Column 4 repeats column 0 so that pairs (c, c+1 mod 4) are plain slices.
        self.y = torch.empty(3, 2, 5, n, **f)
        self.s = torch.empty(2, 3, 6, n, **f)  # sums of the two orientations of each pair
        self.best = torch.empty(3, 6, n, **f)  # M: max over the two orientations
        self.flip = torch.empty(3, 6, n, **f)  # 1.0 where the second orientation wins
        self.cc = torch.empty(2, 6, n, **f)  # C[c] + C[d] per half and pair
        self.cand = torch.empty(N_CANDIDATES, n, **f)
        self.code = torch.empty(N_CANDIDATES, n, **f)
        self.tmp = torch.empty(4, 6, n, **f)
        self.idx = torch.empty(n, dtype=torch.int64, device=device)
        self.pat = torch.empty(n, 16, dtype=torch.uint8, device=device)
        offsets = torch.arange(N_CANDIDATES, **f) * CODES
        self.offset_a = offsets[:6, None]
        self.offset_c = offsets[6:12, None]
        self.offset_b = torch.tensor([0.0, 4.0, 8.0], **f)[:, None]


def _pair_sums(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """``out[:, k] = a[:, first_k] + b[:, second_k]`` for the 6 pairs of ``PAIRS``."""
    lead, m = a.shape[0], a.shape[-1]
    view = out.view(lead, 2, 3, m)
    torch.add(a[:, 0:4].view(lead, 2, 2, m), b[:, 1:5].view(lead, 2, 2, m), out=view[:, :, 0:2])
    torch.add(a[:, 0:2], b[:, 2:4], out=view[:, :, 2])


def _load(ws: _Workspace, src: torch.Tensor, m: int) -> None:
    """Copy ``|src|`` (blocks ``(nb, 4, in/4, 4, K)``) into the row planes, NaN as 0."""
    nb, _, groups, _, kpos = src.shape
    x = ws.y[0:2].view(4, 5, -1)[:, 0:4, :m].view(4, 4, nb, groups, kpos)
    blocks = src.permute(1, 3, 0, 2, 4)
    if blocks.dtype == x.dtype:
        torch.abs(blocks, out=x)
    else:
        x.copy_(blocks).abs_()
    x.nan_to_num_(nan=0.0, posinf=math.inf)
    ws.y[0:2, :, 4, :m].copy_(ws.y[0:2, :, 0, :m])


def _orientations(ws: _Workspace, m: int) -> None:
    """Column sums, then for each half and pair the best orientation and its flag."""
    y = ws.y[..., :m]
    torch.add(y[0:2, 0], y[0:2, 1], out=y[2])
    s1, s2 = ws.s[0, ..., :m], ws.s[1, ..., :m]
    _pair_sums(y[:, 0], y[:, 1], s1)
    _pair_sums(y[:, 1], y[:, 0], s2)
    torch.maximum(s1, s2, out=ws.best[..., :m])
    torch.gt(s2, s1, out=ws.flip[..., :m])
    _pair_sums(y[2], y[2], ws.cc[..., :m])


def _tournament(vals: torch.Tensor, codes: torch.Tensor, scratch: torch.Tensor) -> None:
    """Leave the first maximum of ``vals`` along dim 0 in ``vals[0]`` and its code in
    ``codes[0]``; codes must increase with the index along dim 0 (ties keep the lower one)."""
    size, step = vals.shape[0], 1
    while step < size:
        count = len(range(0, size - step, 2 * step))
        left = slice(0, 2 * step * count, 2 * step)
        right = slice(step, step + 2 * step * count, 2 * step)
        g = scratch[:count]
        torch.gt(vals[right], vals[left], out=g)
        torch.maximum(vals[left], vals[right], out=vals[left])
        g.mul_(codes[right])
        torch.maximum(codes[left], g, out=codes[left])
        step *= 2


def _candidates(ws: _Workspace, m: int) -> None:
    """Fill the 13 candidate scores and pattern codes (offset by ``candidate * CODES``)."""
    best, flip, cc = ws.best[..., :m], ws.flip[..., :m], ws.cc[..., :m]
    cand, code, tmp = ws.cand[:, :m], ws.code[:, :m], ws.tmp[..., :m]
    torch.add(cc[0, 0:3], cc[1, 3:6], out=cand[0:3])
    torch.add(cc[0, 3:6], cc[1, 0:3], out=cand[3:6])
    code[0:6].copy_(ws.offset_a.expand(6, m))
    pair_top_bottom, flips = tmp[0], tmp[1]
    torch.add(best[0], best[1], out=pair_top_bottom)
    torch.add(best[2, 0:3], pair_top_bottom[3:6], out=cand[6:9])
    torch.add(best[2, 3:6], pair_top_bottom[0:3], out=cand[9:12])
    torch.add(flip[0], flip[1], alpha=2, out=flips)
    torch.add(flip[2, 0:3], flips[3:6], alpha=2, out=code[6:9])
    torch.add(flip[2, 3:6], flips[0:3], alpha=2, out=code[9:12])
    code[6:12].add_(ws.offset_c)
    pairing = tmp[2].view(2, 3, m)
    pairing_code = tmp[3].view(2, 3, m)
    torch.add(best[0:2, 0:3], best[0:2, 3:6], out=pairing)
    torch.add(flip[0:2, 0:3], flip[0:2, 3:6], alpha=2, out=pairing_code)
    pairing_code.add_(ws.offset_b)
    scratch = ws.tmp[0, 0:2, :m].unsqueeze(0)
    _tournament(pairing.transpose(0, 1), pairing_code.transpose(0, 1), scratch)
    torch.add(pairing[0, 0], pairing[1, 0], out=cand[12])
    torch.add(pairing_code[0, 0], pairing_code[1, 0], alpha=12, out=code[12])
    code[12].add_(12 * CODES)


def _chunk_masks(ws: _Workspace, src: torch.Tensor, dst: torch.Tensor) -> None:
    """Best pattern of every block of ``src`` ``(nb, 4, in/4, 4, K)`` written to ``dst``."""
    nb, _, groups, _, kpos = src.shape
    m = nb * groups * kpos
    _load(ws, src, m)
    _orientations(ws, m)
    _candidates(ws, m)
    _tournament(ws.cand[:, :m], ws.code[:, :m], ws.tmp[1, :, :m])
    idx = ws.idx[:m]
    idx.copy_(ws.code[0, :m])
    pat = torch.index_select(pattern_lut(idx.device), 0, idx, out=ws.pat[:m])
    dst.permute(0, 2, 4, 1, 3).copy_(pat.view(nb, groups, kpos, 4, 4))


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
    per_row = (in_dim // 4) * kpos
    rows = max(1, chunk_elements(w.device) // (16 * per_row))
    acc = torch.float64 if w.dtype == torch.float64 else torch.float32
    ws = _Workspace(min(rows, grid[0]) * per_row, acc, w.device)
    for piece in chunks(grid[0], rows):
        _chunk_masks(ws, src[piece], dst[piece])
    return mask
