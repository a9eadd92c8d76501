"""Unstructured magnitude mask: keep the ``k`` largest ``|w|`` of a tensor.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_topk
>>> mask_topk(torch.tensor([[0.1, -2.0], [0.5, 2.0]]), 0.5).tolist()
[[False, True], [False, True]]
"""

from __future__ import annotations

import torch

from weightscope.kernels._common import (
    check_density,
    check_weight,
    keep_count,
    topk_flat,
)

__all__ = ["mask_topk"]


@torch.no_grad()
def mask_topk(w: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``k = max(1, round(density * w.numel()))`` largest magnitudes of ``w``.

    Parameters
    ----------
    w : torch.Tensor
        Weight of any shape; float16, bfloat16, float32 or float64. It is not modified.
    density : float
        Fraction of elements to keep, in (0, 1].

    Returns
    -------
    torch.Tensor
        Bool mask with ``w``'s shape and device and exactly ``k`` True entries.

    Notes
    -----
    Ranking is by ``|w|``. Ties: among equal ``|w|`` the lower flat (row-major) index wins.
    NaN ranks below every number (it is kept only when ``k`` exceeds the non-NaN count, lower
    indices first); ``inf`` ranks above every finite value. Cost: one selection on a sampled
    bracket plus a few comparison passes, no full sort.

    Examples
    --------
    >>> import torch
    >>> mask_topk(torch.tensor([3.0, 1.0, 3.0, -3.0]), 0.5).tolist()
    [True, False, True, False]
    """
    w = check_weight(w, "mask_topk")
    density = check_density(density, "mask_topk")
    k = keep_count(density, w.numel())
    if k == w.numel():
        return torch.ones(w.shape, dtype=torch.bool, device=w.device)
    return topk_flat(w.reshape(-1), k).view(w.shape)
