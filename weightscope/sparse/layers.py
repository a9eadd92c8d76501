"""Masked linear-like layers made by swapping a module's class to a subclass of its own.

:func:`to_sparse` keeps the module object, its dense Parameter ``weight`` (the one the
optimizer updates) and every name; it adds a bool buffer ``weight_mask`` and swaps
``module.__class__`` to e.g. :class:`SparseLinear`, a subclass of :class:`torch.nn.Linear`
whose forward uses :func:`~weightscope.sparse.ste.masked_weight`. ``isinstance(module,
nn.Linear)`` therefore still holds and ``state_dict`` keys only gain ``<name>.weight_mask``.
:func:`to_dense` undoes it and leaves the plain layer holding ``m * w``.

Examples
--------
>>> import torch
>>> from torch import nn
>>> lin = nn.Linear(4, 2)
>>> to_sparse(lin, torch.ones(2, 4, dtype=torch.bool), grad_scale=1.0)
>>> type(lin).__name__, isinstance(lin, nn.Linear), sorted(lin.state_dict())
('SparseLinear', True, ['bias', 'weight', 'weight_mask'])
>>> to_dense(lin)
>>> type(lin).__name__, sorted(lin.state_dict())
('Linear', ['bias', 'weight'])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from weightscope.errors import SparseStateError, StructureError
from weightscope.kinds import HF_CONV1D
from weightscope.kinds.registry import registered_base

from .state import LayerState
from .ste import masked_weight

__all__ = [
    "SparseConv1d",
    "SparseConv2d",
    "SparseConv3d",
    "SparseLinear",
    "SparseMixin",
    "float_mask",
    "is_sparse",
    "sparse_class_for",
    "to_dense",
    "to_sparse",
]

_BASES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SparseMixin:
    """Masked layers: the bool buffer ``weight_mask`` and a
    :class:`~weightscope.sparse.state.LayerState` ``sparse_state`` (grad scale, stash, caches).
    """

    weight: nn.Parameter
    weight_mask: torch.Tensor
    sparse_state: LayerState

    def masked_weight(self) -> torch.Tensor:
        """Return the weight used by the forward pass, ``weight_mask * weight`` (STE)."""
        state = self.sparse_state
        mask, product = state.forward_inputs()
        return masked_weight(self.weight, mask, state.grad_scale, state.dense_grad,
                             precomputed=product)


class SparseLinear(SparseMixin, nn.Linear):
    """:class:`torch.nn.Linear` whose forward uses ``weight_mask * weight`` (STE backward)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.masked_weight(), self.bias)


class SparseConv1d(SparseMixin, nn.Conv1d):
    """:class:`torch.nn.Conv1d` whose forward uses ``weight_mask * weight`` (STE backward)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(input, self.masked_weight(), self.bias)


class SparseConv2d(SparseMixin, nn.Conv2d):
    """:class:`torch.nn.Conv2d` whose forward uses ``weight_mask * weight`` (STE backward)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(input, self.masked_weight(), self.bias)


class SparseConv3d(SparseMixin, nn.Conv3d):
    """:class:`torch.nn.Conv3d` whose forward uses ``weight_mask * weight`` (STE backward)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(input, self.masked_weight(), self.bias)


_SPARSE: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: SparseLinear,
    nn.Conv1d: SparseConv1d,
    nn.Conv2d: SparseConv2d,
    nn.Conv3d: SparseConv3d,
}
_DYNAMIC: dict[type[nn.Module], type[nn.Module]] = {}


def float_mask(module: nn.Module) -> torch.Tensor:
    """Return ``weight_mask`` as a tensor of the weight's dtype and device (1.0 / 0.0).

    The forward multiplies by this copy, which the layer's state keeps in sync with
    ``weight_mask`` (see :class:`~weightscope.sparse.state.LayerState`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> lin = nn.Linear(2, 1).double()
    >>> to_sparse(lin, torch.tensor([[True, False]]), grad_scale=1.0)
    >>> float_mask(lin)
    tensor([[1., 0.]], dtype=torch.float64)
    """
    return module.sparse_state.float_mask()


def is_sparse(module: nn.Module) -> bool:
    """Return True when ``module`` is a masked layer made by :func:`to_sparse`."""
    return isinstance(module, SparseMixin)


def sparse_class_for(cls: type[nn.Module]) -> type[nn.Module]:
    """Return the masked subclass of ``cls``, a linear-like layer class (:mod:`weightscope.kinds`).

    A subclass of Linear/Conv1d/2d/3d gets a cached ``Sparse<Name>`` class deriving from both
    the matching ``Sparse*`` class and ``cls``; it is refused when it overrides ``forward``
    (its own forward would be bypassed). Hugging Face ``Conv1D`` gets its own masked forward;
    another registered type runs its own forward with ``weight`` swapped for the masked one.

    Examples
    --------
    >>> from torch import nn
    >>> sparse_class_for(nn.Conv2d).__name__
    'SparseConv2d'
    """
    if cls in _SPARSE:
        return _SPARSE[cls]
    if issubclass(cls, SparseMixin):  # already a masked class
        return cls
    if cls in _DYNAMIC:
        return _DYNAMIC[cls]
    base = next((b for b in _BASES if issubclass(cls, b)), None)
    if base is not None:
        if cls.forward is not base.forward:
            raise StructureError(
                f"{cls.__name__} overrides forward(), so a masked forward would bypass it. "
                f"Exclude this layer or use a plain {base.__name__}."
            )
        new_cls = type(f"Sparse{cls.__name__}", (_SPARSE[base], cls), {})
    else:
        new_cls = _registered_class(cls)
    _DYNAMIC[cls] = new_cls
    return new_cls


def _registered_class(cls: type[nn.Module]) -> type[nn.Module]:
    """The masked subclass of a registered (non-torch) layer kind."""
    found = registered_base(cls)
    if found is None:
        raise StructureError(
            f"only linear-like layers (nn.Linear, nn.Conv1d/2d/3d, Hugging Face Conv1D or a "
            f"type given to weightscope.kinds.register_layer) can be sparsified; got "
            f"{cls.__name__}. Select such layers (or exclude this one)."
        )
    base, kind = found
    if kind.weight != "weight":
        raise StructureError(
            f"{cls.__name__} keeps its weight in {kind.weight!r}, and sparse training masks a "
            "parameter named 'weight'. Exclude this layer (the Recorder still records it)."
        )
    hf = (base.__module__, base.__name__) == HF_CONV1D and cls.forward is base.forward
    forward = _conv1d_forward if hf else _swapped_forward
    return type(f"Sparse{cls.__name__}", (SparseMixin, cls), {"forward": forward})


def _conv1d_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """Hugging Face ``Conv1D.forward`` with the masked weight (``x @ (m * w) + b``)."""
    size_out = (*x.size()[:-1], self.nf)
    x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.masked_weight())
    return x.view(size_out)


def _swapped_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
    """The layer's own forward, reading the masked weight where it reads ``self.weight``."""
    params = self._parameters
    weight = params["weight"]
    params["weight"] = self.masked_weight()
    try:
        return self.sparse_state.base.forward(self, *args, **kwargs)
    finally:
        params["weight"] = weight


def to_sparse(module: nn.Module, mask: torch.Tensor, grad_scale: float) -> None:
    """Turn ``module`` into its masked subclass in place, with ``weight_mask = mask``.

    Parameters
    ----------
    module : nn.Module
        A Linear or Conv1d/2d/3d layer (not already sparse).
    mask : Tensor
        Bool mask of ``module.weight``'s shape.
    grad_scale : float
        Gradient scale ``s`` of non-participating weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> conv = nn.Conv2d(16, 4, 3)
    >>> to_sparse(conv, torch.zeros(4, 16, 3, 3, dtype=torch.bool), grad_scale=0.0)
    >>> out = conv(torch.randn(1, 16, 5, 5))  # every weight masked: only the bias is left
    >>> bool((out == conv.bias.view(1, 4, 1, 1)).all())
    True
    """
    if is_sparse(module):
        raise SparseStateError(
            f"{type(module).__name__} is already sparse. Call sp.remove() before sparsifying "
            "it again."
        )
    new_cls = sparse_class_for(type(module))
    if mask.shape != module.weight.shape or mask.dtype != torch.bool:
        raise StructureError(
            f"mask must be a bool tensor of shape {tuple(module.weight.shape)}; got "
            f"{mask.dtype} {tuple(mask.shape)}. Build it with a weightscope.kernels function."
        )
    module.register_buffer("weight_mask", mask.to(module.weight.device), persistent=True)
    module.sparse_state = LayerState(module, type(module), grad_scale)
    module.__class__ = new_cls


def to_dense(module: nn.Module) -> None:
    """Undo :func:`to_sparse`: weight becomes ``m * w``, the mask buffer is dropped.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> lin = nn.Linear(2, 1, bias=False)
    >>> to_sparse(lin, torch.tensor([[True, False]]), grad_scale=1.0)
    >>> to_dense(lin)
    >>> bool(lin.weight[0, 1] == 0), hasattr(lin, "weight_mask")
    (True, False)
    """
    if not is_sparse(module):
        raise SparseStateError(
            f"{type(module).__name__} is not a sparse layer; nothing to remove."
        )
    with torch.no_grad():
        module.weight.masked_fill_(module.weight_mask.logical_not(), 0.0)
    state = module.__dict__.pop("sparse_state")
    state.invalidate()
    del module._buffers["weight_mask"]
    module.__class__ = state.base
