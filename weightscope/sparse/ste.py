"""Straight-through masking of weights (paper appendix C and D).

The forward pass uses the participating weights ``m * w``; the backward pass gives the dense
weight ``w`` the gradient ``g * m + s * g * (1 - m)``, where ``g`` is the gradient of the loss
with respect to the masked weight and ``s`` is the gradient scale of the non-participating
weights (``s = 1`` is the straight-through estimator of Algorithm 1, ``s = 0`` the exact
gradient of ``m * w``, which updates only participating weights).

This is a custom :class:`torch.autograd.Function` on purpose: ``torch.ao``'s ``FakeSparsity``
masks the gradient, which would forbid the updates of non-participating weights that the paper
recommends (section 3.2).

Examples
--------
>>> import torch
>>> w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> m = torch.tensor([True, False, True])
>>> y = masked_weight(w, m, grad_scale=0.5)
>>> y.detach()
tensor([1., 0., 3.])
>>> y.sum().backward()
>>> w.grad
tensor([1.0000, 0.5000, 1.0000])
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

__all__ = ["MaskedWeight", "masked_weight"]


class MaskedWeight(torch.autograd.Function):
    """``forward(w, m, s, stash) = m * w``; ``backward`` gives ``w`` ``g*m + s*g*(1-m)``.

    Parameters of :meth:`forward`
    -----------------------------
    w : Tensor
        The dense weight (a leaf Parameter in practice).
    m : Tensor
        Mask of ``w``'s shape, bool (True = participating) or of ``w``'s dtype (1.0 / 0.0;
        faster on CPU). Not differentiated.
    grad_scale : float
        ``s``, the factor applied to the gradient of non-participating weights.
    stash : Tensor or None
        When a float tensor of ``w``'s shape is given, the backward pass *adds* the dense
        gradient ``g`` to it (used by RigL to regrow by ``|dense gradient|`` even though
        non-participating weights receive no update).
    precomputed : tuple, optional
        ``()`` or ``(p,)`` where ``p`` already holds ``m * w`` (returned instead of computing
        it; a tuple so that autograd does not take ``p`` for an input).

    Examples
    --------
    >>> import torch
    >>> w = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    >>> m = torch.tensor([[True, False], [False, True]])
    >>> MaskedWeight.apply(w, m, 0.0, None).sum().backward()
    >>> w.grad
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
    """

    @staticmethod
    def forward(
        ctx: Any, w: torch.Tensor, m: torch.Tensor, grad_scale: float, stash: torch.Tensor | None,
        precomputed: tuple[torch.Tensor, ...] = (),
    ) -> torch.Tensor:
        ctx.grad_scale = float(grad_scale)
        ctx.stash = stash
        ctx.save_for_backward(m)
        return precomputed[0].detach() if precomputed else w * m

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:
        (m,) = ctx.saved_tensors
        if ctx.stash is not None:
            ctx.stash.add_(g)
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        s = ctx.grad_scale
        if s == 1.0:
            grad = g
        elif s == 0.0:
            grad = g * m
        elif m.dtype == torch.bool:
            grad = torch.where(m, g, g * s)
        else:  # float mask: g*m + (s*g)*(1-m), exact on both sets
            grad = torch.addcmul(g * m, g * s, 1.0 - m)
        return grad, None, None, None, None


def masked_weight(
    w: torch.Tensor,
    m: torch.Tensor,
    grad_scale: float = 1.0,
    stash: torch.Tensor | None = None,
    precomputed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return ``m * w`` whose backward gives ``w`` the gradient ``g*m + s*g*(1-m)``.

    Parameters
    ----------
    w : Tensor
        Dense weight.
    m : Tensor
        Mask of the same shape: bool (True = participating weight) or 1.0 / 0.0 floats.
    grad_scale : float, default 1.0
        Scale ``s`` of the gradient of non-participating weights.
    stash : Tensor, optional
        Float tensor of ``w``'s shape into which the dense gradient is accumulated.
    precomputed : Tensor, optional
        ``m * w`` if the caller already has it (it is returned, detached, not recomputed).

    Returns
    -------
    Tensor
        The masked weight, to be used in place of ``w`` in the layer's computation.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([2.0, 5.0], requires_grad=True)
    >>> (masked_weight(w, torch.tensor([False, True]), grad_scale=0.0) * 3).sum().backward()
    >>> w.grad
    tensor([0., 3.])
    """
    given = () if precomputed is None else (precomputed,)
    return MaskedWeight.apply(w, m, grad_scale, stash, given)
