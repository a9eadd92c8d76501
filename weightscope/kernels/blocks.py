"""Block mask: keep the ``b x b`` blocks of a layer with the largest ``max |w|``.

Blocks tile the 2-D ``(out, in)`` view of the weight: a Linear weight ``(out, in)`` directly,
a Conv weight ``(out, c, *kernel)`` at each kernel position separately.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_blocks
>>> w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
>>> mask_blocks(w, 2, 0.5).int().tolist()
[[0, 0, 1, 1], [0, 0, 1, 1]]
"""

from __future__ import annotations

import torch

from weightscope._validate import check_int
from weightscope.errors import StructureError
from weightscope.kernels._common import (
    check_density,
    check_weight,
    keep_count,
    ranking_magnitude,
    split_out_in,
    topk_flat,
)

__all__ = ["mask_blocks"]


def _check_block_size(b: object, shape: tuple[int, ...]) -> int:
    b = check_int(b, "mask_blocks: block size b must be an integer >= 1",
                  fix="Pass a block size such as b=4.")
    if shape[0] % b or shape[1] % b:
        raise StructureError(
            f"mask_blocks needs out and in divisible by the block size b={b}; got a layer of "
            f"shape {shape} (out={shape[0]}, in={shape[1]}). Use a block size that divides "
            "both, or exclude this layer."
        )
    return b


@torch.no_grad()
def mask_blocks(w: torch.Tensor, b: int, density: float) -> torch.Tensor:
    """Keep the ``max(1, round(density * n_blocks))`` blocks of ``w`` with the largest max ``|w|``.

    Parameters
    ----------
    w : torch.Tensor
        Weight of shape ``(out, in)`` or ``(out, c, *kernel)``; float16/bfloat16/float32/float64.
        It is not modified.
    b : int
        Block side; ``out`` and ``in`` must be divisible by ``b``.
    density : float
        Fraction of blocks to keep, in (0, 1].

    Returns
    -------
    torch.Tensor
        Bool mask with ``w``'s shape and device; kept blocks are all True.

    Raises
    ------
    StructureError
        If ``w`` has fewer than 2 dimensions or ``out``/``in`` is not divisible by ``b``.

    Notes
    -----
    Blocks are numbered row-major over ``(out block, in block, kernel position)``; among
    blocks with equal scores the lower number wins. A block's score is its largest ``|w|``,
    NaN counting below every number. ``b = 1`` gives the same mask as :func:`mask_topk`.

    Examples
    --------
    >>> import torch
    >>> mask_blocks(torch.ones(2, 4, 3, 3), 2, 0.5).sum().item()
    36
    """
    w = check_weight(w, "mask_blocks", min_dim=2)
    b = _check_block_size(b, tuple(w.shape))
    density = check_density(density, "mask_blocks")
    out_dim, in_dim, kpos = split_out_in(w)
    grid = (out_dim // b, b, in_dim // b, b, kpos)
    score = ranking_magnitude(w).view(grid).amax(dim=(1, 3))
    keep = topk_flat(score.reshape(-1), keep_count(density, score.numel()), magnitude=False)
    keep = keep.view(grid[0], 1, grid[2], 1, kpos).expand(grid)
    return keep.reshape(w.shape)
