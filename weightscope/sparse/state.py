"""The state of one masked layer, kept in one object instead of loose module attributes.

:func:`~weightscope.sparse.layers.to_sparse` gives each masked layer a :class:`LayerState`
(``module.sparse_state``). It holds the gradient scale and the dense-gradient stash of the
straight-through backward, the float mirror of ``weight_mask`` that the forward multiplies by,
the incremental top-k tracker of an unstructured layer and the product ``mask * w`` that the
tracker computed on the way.

Code that rewrites the mask or swaps the tensors says so (:meth:`LayerState.mask_changed`,
:meth:`LayerState.invalidate`). Edits made behind the state's back (a user's
``weight_mask.fill_``, ``model.double()``, an optimizer step before a forward) are caught by
one check of the tensors' identity, storage and version counters, here and nowhere else.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from weightscope.sparse.layers import to_sparse
>>> lin = nn.Linear(2, 1)
>>> to_sparse(lin, torch.tensor([[True, False]]), grad_scale=1.0)
>>> lin.sparse_state.float_mask()
tensor([[1., 0.]])
>>> _ = lin.weight_mask.fill_(True)  # an edit behind the state's back is seen
>>> lin.sparse_state.float_mask()
tensor([[1., 1.]])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from weightscope.errors import SparseStateError

from .structures import Structure
from .topk import IncrementalTopk, make_topk

__all__ = ["LayerState"]


class LayerState:
    """Mask state of one masked layer (see the module).

    Attributes
    ----------
    module : nn.Module
        The masked layer (``weight`` and the bool buffer ``weight_mask``).
    base : type
        The layer's class before it was made sparse.
    grad_scale : float
        Gradient scale ``s`` of non-participating weights in the STE backward.
    dense_grad : Tensor or None
        Where the next backward adds the dense gradient (RigL), or None.
    topk_density : float or None
        Density of an unstructured layer, rewired by an incremental top-k; None otherwise.
    """

    def __init__(self, module: nn.Module, base: type, grad_scale: float) -> None:
        self.module = module
        self.base = base
        self.grad_scale = float(grad_scale)
        self.dense_grad: torch.Tensor | None = None
        self.topk_density: float | None = None
        self.invalidate()

    def invalidate(self) -> None:
        """Forget every derived tensor and the tracker (the weight or mask was swapped)."""
        self._mask_f: torch.Tensor | None = None
        self._product: torch.Tensor | None = None
        self._product_version = -1
        self._tracker: IncrementalTopk | None = None
        self._asked = False  # whether make_topk was asked since the last invalidate()
        self._mask: torch.Tensor | None = None
        self._binding: tuple[Any, ...] | None = None
        self._mask_version = -1

    def mask_changed(self) -> None:
        """``weight_mask`` was rewritten in place: drop its mirror, the product and the
        tracker's knowledge of it."""
        self._mask_f = self._product = None
        if self._tracker is not None:
            self._tracker.invalidate()
        self._mask_version = self.module.weight_mask._version

    def float_mask(self) -> torch.Tensor:
        """``weight_mask`` as 1.0 / 0.0 in the weight's dtype and device (kept in sync)."""
        self._sync()
        if self._mask_f is None:
            w = self.module.weight
            self._mask_f = self.module.weight_mask.to(device=w.device, dtype=w.dtype)
        return self._mask_f

    def forward_inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The float mask and, when a rewire computed it and nothing changed since, ``m * w``."""
        mask_f = self.float_mask()
        return mask_f, self._product

    def tracker(self) -> IncrementalTopk | None:
        """The layer's incremental top-k (made by :func:`~weightscope.sparse.topk.make_topk`
        on first use), or None: rewire with the structure's kernel."""
        mask_f = self.float_mask()
        if not self._asked and self.topk_density is not None:
            module = self.module
            self._tracker = make_topk(module.weight.detach(), module.weight_mask, mask_f,
                                      self.topk_density)
            self._asked = True
        return self._tracker

    def rewire(self, structure: Structure) -> None:
        """Set ``weight_mask`` in place to the structure's mask of ``|weight|``."""
        module, tracker = self.module, self.tracker()
        if tracker is None:
            module.weight_mask.copy_(structure.layer_mask(module.weight.detach(), module))
            self.mask_changed()
            return
        product = tracker.update(module.weight, module.weight_mask, self.float_mask())
        self._mask_version = module.weight_mask._version  # the tracker wrote both masks
        self._product, self._product_version = product, module.weight._version

    def require_dense_grad(self) -> torch.Tensor:
        """The dense gradient stashed by the last backward (RigL's growth scores)."""
        if self.dense_grad is None:
            raise SparseStateError(
                "no dense gradient was stashed for this layer. RigL needs a backward pass "
                "between sparsify()/sp.step() and the next optimizer.step()."
            )
        return self.dense_grad

    def _sync(self) -> None:
        """The one check of changes made behind the state's back (see the module)."""
        mask, w = self.module.weight_mask, self.module.weight
        binding = (w.data_ptr(), w.dtype, w.device)
        if self._mask is not mask or self._binding != binding:
            self.invalidate()
            self._mask, self._binding = mask, binding
        if self._mask_version != mask._version:
            self.mask_changed()
        if self._product is not None and w._version != self._product_version:
            self._product = None  # the weight moved (an optimizer step, an edit)
