"""``sparsify(model, ...)``: mask a model's Linear/Conv weights for sparse training.

Examples
--------
>>> import torch
>>> from torch import nn
>>> from weightscope.sparse import Search, sparsify
>>> model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
>>> sp = sparsify(model, density=0.25, method=Search(reset_every=1000))
>>> sp.layers, round(sp.density(), 3)
(['0', '2'], 0.25)
>>> sorted(model.state_dict())  # names unchanged, plus the masks
['0.bias', '0.weight', '0.weight_mask', '2.bias', '2.weight', '2.weight_mask']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from weightscope._validate import check_int
from weightscope.errors import ConfigError, SparseStateError, StructureError, WeightscopeWarning

from .layers import is_sparse, sparse_class_for
from .methods import Method, Search
from .selection import ExcludeArg, is_lazy, select_layers
from .sparsifier import Sparsifier, get_sparsifier
from .structures import Structure, parse_structure

__all__ = ["ExcludedLayerWarning", "sparsify"]


class ExcludedLayerWarning(WeightscopeWarning):
    """A layer of the default selection was left dense because it cannot take the structure."""


def sparsify(
    model: nn.Module,
    density: float | None = 0.25,
    structure: str = "unstructured",
    method: Method | None = None,
    exclude: ExcludeArg = None,
    layers: Sequence[str] | None = None,
    total_steps: int | None = None,
) -> Sparsifier:
    """Mask the Linear/Conv weights of ``model`` in place and return their :class:`Sparsifier`.

    Each selected module keeps its dense Parameter ``weight`` and gains a bool buffer
    ``weight_mask``; its class becomes a masked subclass of its own (e.g. ``SparseLinear``)
    whose forward uses ``weight_mask * weight`` with a straight-through backward. A dense
    checkpoint (no ``weight_mask`` keys) still loads: masks are recomputed by magnitude.

    Parameters
    ----------
    model : nn.Module
        The model to sparsify (in place).
    density : float or None, default 0.25
        Fraction ``d`` of participating weights per layer, in (0, 1]. Unstructured layers keep
        ``max(1, round(d * n))`` weights. The 2:4 structures fix ``d = 0.5`` (pass 0.5 or None).
    structure : str, default "unstructured"
        ``"unstructured"``, ``"block:<b>"``, ``"2:4"`` (1D along the input dimension) or
        ``"2:4-2d"`` (exact transposable).
    method : Method, optional
        :class:`~weightscope.sparse.Search` (default ``Search()``), ``Static``, ``Lottery``,
        ``SET`` or ``RigL``.
    exclude : sequence of str or callable, optional
        Names to exclude on top of the default rules, or ``predicate(name, module) -> bool``
        replacing them (see :func:`~weightscope.sparse.default_exclude`).
    layers : sequence of str, optional
        Explicit module names to sparsify (no default rules; incompatible layers are errors).
    total_steps : int, optional
        Planned optimizer steps; needed by fractional ``fix_at`` and by SET/RigL.

    Returns
    -------
    Sparsifier
        Call ``sp.step()`` after each ``optimizer.step()`` (or ``sp.attach(optimizer)``).

    Raises
    ------
    ConfigError
        Bad density, method, total_steps, names, or no layer left to sparsify.
    StructureError
        Unknown structure, or an explicit layer whose shape cannot take it.
    SparseStateError
        The model is already sparsified.

    Warns
    -----
    ExcludedLayerWarning
        A layer of the default selection cannot take the structure and stays dense.
    """
    struct = parse_structure(structure, density)
    method = Search() if method is None else method
    _check_args(model, struct, method, total_steps)
    _warn_lazy(model)
    selected = _usable(select_layers(model, exclude, layers), explicit=layers is not None)
    method.prepare(model, selected)
    seed = method.seed
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    masked = _initial_masks(selected, struct, method, generator, explicit=layers is not None)
    if not masked:
        raise ConfigError(
            "no layer is left to sparsify (none is a Linear/Conv layer that the selection "
            "rules and the structure accept). Pass layers=[...] or a looser exclude=."
        )
    return Sparsifier(model, struct, method, masked, total_steps, generator)


def _check_args(model: nn.Module, structure: Structure, method: object,
                total_steps: object) -> None:
    """The checks of sparsify() that need no layer: method, total_steps, not sparse yet."""
    if not isinstance(method, Method):
        raise ConfigError(
            f"method must be a weightscope.sparse method (Search, Static, Lottery, SET, RigL); "
            f"got {type(method).__name__}. Pass e.g. method=Search()."
        )
    if total_steps is not None:
        check_int(total_steps, "total_steps must be a positive integer or None", minimum=1,
                  fix="Pass the number of optimizer steps of the run, e.g. total_steps=10_000.")
    method.check(structure, total_steps)  # type: ignore[arg-type]
    if get_sparsifier(model) is not None:
        raise SparseStateError(
            "this model is already sparsified. Call sp.remove() (sp = get_sparsifier(model)) "
            "before sparsifying it again."
        )


def _refuse_or_warn(name: str, reason: str, explicit: bool) -> None:
    if explicit:
        raise StructureError(f"layer {name!r} cannot be sparsified: {reason}")
    warnings.warn(
        f"layer {name!r} stays dense: {reason}", ExcludedLayerWarning, stacklevel=4
    )


def _warn_lazy(model: nn.Module) -> None:
    lazy = [name for name, module in model.named_modules() if is_lazy(module)]
    if lazy:
        warnings.warn(
            f"layers {lazy!r} stay dense: their lazy weights are not initialized yet. Run one "
            "forward pass before sparsify() to include them.",
            ExcludedLayerWarning,
            stacklevel=3,
        )


def _usable(
    selected: list[tuple[str, nn.Module]], explicit: bool
) -> list[tuple[str, nn.Module]]:
    """Drop (with a warning) or refuse layers whose class cannot be masked."""
    kept = []
    for name, module in selected:
        if is_sparse(module):
            raise SparseStateError(
                f"layer {name!r} is already sparse. Call sp.remove() on its sparsifier first."
            )
        try:
            sparse_class_for(type(module))
        except StructureError as err:
            _refuse_or_warn(name, str(err), explicit)
            continue
        kept.append((name, module))
    return kept


def _initial_masks(
    selected: list[tuple[str, nn.Module]],
    structure: Structure,
    method: Method,
    generator: torch.Generator,
    explicit: bool,
) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Compute each layer's first mask; shapes the structure refuses are warned or raised."""
    masked = []
    for name, module in selected:
        try:
            mask = method.initial_mask(name, module, structure, generator)
        except StructureError as err:
            _refuse_or_warn(name, f"{structure.name} does not fit it ({err})", explicit)
            continue
        masked.append((name, module, mask))
    return masked
