"""Sparse training: SEARCH (paper Algorithm 1) and the baselines it is compared against.

``sparsify(model, density, structure, method)`` masks the linear-like weights of a model
(:mod:`weightscope.kinds`) in place (names and ``state_dict`` keys unchanged, plus a bool
``weight_mask`` buffer per layer) and returns a :class:`Sparsifier`; call ``sp.step()`` after
every ``optimizer.step()`` or ``sp.attach(optimizer)``. ``plan(model, ...)`` shows what it
would mask and why each other layer stays dense (the paper's defaults: docs/models.md).

Methods: :class:`Search` (rewire from ``|w|``, updates of non-participating weights, FIX /
RESET / REGULARIZE), :class:`Static`, :class:`Lottery`, :class:`SET`, :class:`RigL`, and
:func:`reduce_width` for the REDUCE baseline. Structures: ``"unstructured"``,
``"block:<b>"``, ``"2:4"`` and ``"2:4-2d"``.

Examples
--------
>>> import torch
>>> from torch import nn
>>> import weightscope as ws
>>> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> sp = ws.sparse.sparsify(model, density=0.25, method=ws.sparse.Search(reset_every=100))
>>> for _ in range(3):
...     opt.zero_grad()
...     model(torch.randn(8, 16)).pow(2).mean().backward()
...     opt.step()
...     sp.step()
>>> sp.step_count, sp.config["method"]
(3, 'Search')
>>> sp.remove()  # plain layers holding m * w
"""

from __future__ import annotations

from .baselines import SET, Lottery, RigL, Static
from .layers import (
    SparseConv1d,
    SparseConv2d,
    SparseConv3d,
    SparseLinear,
    SparseMixin,
    is_sparse,
)
from .methods import Method, Search
from .ops import (
    drop_and_grow,
    regularize_nonparticipating,
    rewire_by_magnitude,
    zero_nonparticipating,
)
from .reduce import count_sparsifiable, reduce_width
from .selection import default_exclude, select_layers
from .sparsifier import Sparsifier, get_sparsifier
from .sparsify import ExcludedLayerWarning, plan, sparsify
from .ste import MaskedWeight, masked_weight
from .structures import STRUCTURES, Structure, parse_structure

__all__ = [
    "SET",
    "STRUCTURES",
    "ExcludedLayerWarning",
    "Lottery",
    "MaskedWeight",
    "Method",
    "RigL",
    "Search",
    "SparseConv1d",
    "SparseConv2d",
    "SparseConv3d",
    "SparseLinear",
    "SparseMixin",
    "Sparsifier",
    "Static",
    "Structure",
    "count_sparsifiable",
    "default_exclude",
    "drop_and_grow",
    "get_sparsifier",
    "is_sparse",
    "masked_weight",
    "parse_structure",
    "plan",
    "reduce_width",
    "regularize_nonparticipating",
    "rewire_by_magnitude",
    "select_layers",
    "sparsify",
    "zero_nonparticipating",
]
