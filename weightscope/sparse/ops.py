"""In-place operations on one masked layer, usable on their own (the Sparsifier uses them).

Examples
--------
>>> import torch
>>> from torch import nn
>>> from weightscope.sparse.layers import to_sparse
>>> lin = nn.Linear(4, 1, bias=False)
>>> to_sparse(lin, torch.tensor([[True, False, True, False]]), grad_scale=1.0)
>>> zero_nonparticipating(lin)
>>> bool((lin.weight[~lin.weight_mask] == 0).all())
True
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import float_mask
from .structures import Structure

__all__ = [
    "drop_and_grow",
    "regularize_nonparticipating",
    "rewire_by_magnitude",
    "zero_nonparticipating",
]


def rewire_by_magnitude(module: nn.Module, structure: Structure) -> None:
    """Set ``module.weight_mask`` in place to the structure's mask of ``|weight|``.

    Unstructured layers are rewired by their incremental exact top-k
    (:mod:`weightscope.sparse.topk`) when they have one: the kernel's mask at a fraction of its
    cost when rewiring every step.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightscope.sparse.layers import to_sparse
    >>> lin = nn.Linear(4, 1, bias=False)
    >>> to_sparse(lin, torch.ones(1, 4, dtype=torch.bool), grad_scale=1.0)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.1, -3.0, 0.2, 2.0]]))
    >>> rewire_by_magnitude(lin, Structure("unstructured", 0.5))
    >>> lin.weight_mask
    tensor([[False,  True, False,  True]])
    """
    with torch.no_grad():
        module.sparse_state.rewire(structure)


def zero_nonparticipating(module: nn.Module) -> None:
    """Set the non-participating weights (mask False) of ``module`` to zero.

    Implemented as ``w *= m`` with the float mask: finite weights become exactly ``±0``; a
    non-finite one would become NaN.
    """
    with torch.no_grad():
        module.weight.mul_(float_mask(module))


def regularize_nonparticipating(module: nn.Module, beta: float) -> None:
    """REGULARIZE: ``n <- n - beta * n`` on non-participating weights; ``p`` is untouched."""
    with torch.no_grad():
        w = module.weight
        minus_n = (w * float_mask(module)).sub_(w)  # 0 on p, -n on n (exact)
        w.add_(minus_n, alpha=beta)


def drop_and_grow(module: nn.Module, count: int, grow_scores: torch.Tensor) -> torch.Tensor:
    """Swap ``count`` weights of ``module``: drop the weakest participating ones by ``|w|``
    and grow those with the largest ``grow_scores`` among the non-participating ones.

    Dropped and grown weights are set to zero (new weights start at 0); ``count`` is capped by
    the number of non-participating weights. Returns the bool tensor of changed positions.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightscope.sparse.layers import to_sparse
    >>> lin = nn.Linear(4, 1, bias=False)
    >>> to_sparse(lin, torch.tensor([[True, True, False, False]]), grad_scale=0.0)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.5, 2.0, 0.0, 0.0]]))
    >>> changed = drop_and_grow(lin, 1, torch.tensor([[0.0, 0.0, 0.1, 0.9]]))
    >>> lin.weight_mask, lin.weight.detach()
    (tensor([[False,  True, False,  True]]), tensor([[0., 2., 0., 0.]]))
    """
    mask = module.weight_mask
    flat = mask.reshape(-1)
    count = min(count, flat.numel() - int(flat.sum()))
    changed = torch.zeros_like(flat)
    if count <= 0:
        return changed.view_as(mask)
    with torch.no_grad():
        weak = module.weight.detach().abs().reshape(-1).masked_fill(~flat, float("inf"))
        drop = torch.topk(weak, count, largest=False).indices
        strong = grow_scores.detach().reshape(-1).float().masked_fill(flat, -float("inf"))
        grow = torch.topk(strong, count).indices
        changed[drop] = True
        changed[grow] = True
        changed = changed.view_as(mask)
        mask.logical_xor_(changed)
        module.sparse_state.mask_changed()
        module.weight.masked_fill_(changed, 0.0)
    return changed
