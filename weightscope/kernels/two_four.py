"""2:4 1D mask: keep 2 of every 4 consecutive weights along the input dimension.

Groups run along dim 1 (Linear ``in_features``; Conv input channels ``c``, separately at every
``(out, kernel position)``). Inside a group the 2 largest ``|w|`` are kept. The selection is
branch-free: with ``a_i`` the group's magnitudes, element ``i`` *beats* ``j`` when
``a_i > a_j``, or ``a_i == a_j`` and ``i < j``; an element is kept iff it beats at least 2 of
the other 3. Six comparisons per group, no sort.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_24_1d
>>> mask_24_1d(torch.tensor([[0.1, -3.0, 2.0, 0.5]])).tolist()
[[False, True, True, False]]
"""

from __future__ import annotations

import torch

from weightscope.errors import StructureError
from weightscope.kernels._common import (
    check_weight,
    chunk_elements,
    chunks,
    ranking_magnitude,
    split_out_in,
)

__all__ = ["mask_24_1d"]


def check_in_divisible(w: torch.Tensor, kernel: str) -> None:
    """Raise :class:`StructureError` unless ``w.shape[1]`` is divisible by 4."""
    if w.shape[1] % 4:
        raise StructureError(
            f"{kernel} needs the input dimension (dim 1) divisible by 4; got a layer of shape "
            f"{tuple(w.shape)} (in={w.shape[1]}). Exclude this layer (the default exclusions "
            "skip inputs not divisible by 16) or pad its input dimension to a multiple of 4."
        )


class _Scratch:
    """Reusable per-call buffers: magnitudes, six comparison planes and a small counter."""

    def __init__(self, rows: int, groups: int, kpos: int, like: torch.Tensor) -> None:
        self.mag = like.new_empty(rows, groups, 4, kpos)
        self.beats = torch.empty(6, rows, groups, kpos, dtype=torch.bool, device=like.device)
        self.count = torch.empty(rows, groups, kpos, dtype=torch.uint8, device=like.device)


def _group_masks(mag: torch.Tensor, s: _Scratch, rows: int, out: torch.Tensor) -> None:
    """Write the keep flags of ``mag`` (rows, groups, 4, K) into ``out`` (same shape, uint8)."""
    a0, a1, a2, a3 = mag.unbind(2)
    pairs = ((a0, a1), (a0, a2), (a0, a3), (a1, a2), (a1, a3), (a2, a3))
    for i, (x, y) in enumerate(pairs):  # beats[i]: lower index beats higher index (ties too)
        torch.ge(x, y, out=s.beats[i, :rows])
    b = s.beats[:, :rows].view(torch.uint8)
    c = s.count[:rows]
    # element j kept iff wins >= 2, wins counted from the six lower-beats-higher flags
    torch.add(b[0], b[1], out=c).add_(b[2])
    torch.ge(c, 2, out=out[:, :, 0])
    torch.add(b[3], b[4], out=c).add_(1).sub_(b[0])
    torch.ge(c, 2, out=out[:, :, 1])
    torch.add(b[5], 2, out=c).sub_(b[1]).sub_(b[3])
    torch.ge(c, 2, out=out[:, :, 2])
    torch.add(b[2], b[4], out=c).add_(b[5])
    torch.le(c, 1, out=out[:, :, 3])


@torch.no_grad()
def mask_24_1d(w: torch.Tensor) -> torch.Tensor:
    """2:4 mask along the input dimension: the 2 largest ``|w|`` of every 4 consecutive.

    Parameters
    ----------
    w : torch.Tensor
        Weight ``(out, in)`` or ``(out, c, *kernel)`` with ``in``/``c`` divisible by 4;
        float16, bfloat16, float32 or float64. It is not modified.

    Returns
    -------
    torch.Tensor
        Bool mask with ``w``'s shape and device, exactly 2 True in every group of 4.

    Raises
    ------
    StructureError
        If ``w`` has fewer than 2 dimensions or its input dimension is not divisible by 4.

    Notes
    -----
    Ties: among equal ``|w|`` the element earlier in the group (lower input index) wins.
    NaN ranks below every number; ``inf`` above every finite value. Work is done in
    cache-sized chunks of output rows with buffers reused across chunks.

    Examples
    --------
    >>> import torch
    >>> mask_24_1d(torch.ones(1, 8)).int().tolist()
    [[1, 1, 0, 0, 1, 1, 0, 0]]
    """
    w = check_weight(w, "mask_24_1d", min_dim=2)
    check_in_divisible(w, "mask_24_1d")
    out_dim, in_dim, kpos = split_out_in(w)
    grid = (out_dim, in_dim // 4, 4, kpos)
    src = w.contiguous().view(grid)
    mask = torch.empty(w.shape, dtype=torch.bool, device=w.device)
    dst = mask.view(torch.uint8).view(grid)
    rows = max(1, chunk_elements(w.device) // (in_dim * kpos))
    scratch = _Scratch(min(rows, out_dim), in_dim // 4, kpos, w)
    for piece in chunks(out_dim, rows):
        n = piece.stop - piece.start
        mag = ranking_magnitude(src[piece], out=scratch.mag[:n])
        _group_masks(mag, scratch, n, dst[piece])
    return mask
