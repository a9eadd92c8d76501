"""``sparsify(model, ...)``: mask a model's linear-like weights for sparse training, and
``plan(model, ...)``: what it would mask, and why each other layer stays dense.

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

import dataclasses
import warnings

import torch
from torch import nn

from weightscope._validate import check_int
from weightscope.errors import ConfigError, SparseStateError, StructureError, WeightscopeWarning
from weightscope.kinds import SelectorArg
from weightscope.kinds.plan import Plan, Row

from .layers import is_sparse, sparse_class_for
from .methods import Method, Search
from .selection import ExcludeArg, default_reason, plan_layers
from .sparsifier import Sparsifier, get_sparsifier
from .structures import DEFAULT_DENSITY, Structure, parse_structure

__all__ = ["ExcludedLayerWarning", "plan", "sparsify"]


class ExcludedLayerWarning(WeightscopeWarning):
    """Layers of the default selection stay dense because they cannot take the structure (or
    be masked); the one warning of a ``sparsify`` call lists every layer left dense."""


def sparsify(
    model: nn.Module,
    density: float | None = DEFAULT_DENSITY,
    structure: str = "unstructured",
    method: Method | None = None,
    exclude: ExcludeArg = None,
    layers: SelectorArg = None,
    total_steps: int | None = None,
) -> Sparsifier:
    """Mask the linear-like weights of ``model`` in place and return their :class:`Sparsifier`.

    Each selected module keeps its dense Parameter ``weight`` and gains a bool buffer
    ``weight_mask``; its class becomes a masked subclass of its own (e.g. ``SparseLinear``)
    whose forward uses ``weight_mask * weight`` with a straight-through backward. A dense
    checkpoint (no ``weight_mask`` keys) still loads: masks are recomputed by magnitude.
    Which layers, and why the others stay dense: :func:`plan` (also ``sp.plan``).

    Parameters
    ----------
    model : nn.Module
        The model to sparsify (in place).
    density : float or None, default 0.25
        Fraction ``d`` of participating weights per layer, in (0, 1]. Unstructured layers keep
        ``max(1, round(d * n))`` weights. The 2:4 structures fix ``d = 0.5``: pass 0.5, None or
        nothing.
    structure : str, default "unstructured"
        ``"unstructured"``, ``"block:<b>"``, ``"2:4"`` (1D along the input dimension) or
        ``"2:4-2d"`` (exact transposable).
    method : Method, optional
        :class:`~weightscope.sparse.Search` (default ``Search()``), ``Static``, ``Lottery``,
        ``SET`` or ``RigL``.
    exclude : names, globs or callable, optional
        Modules to exclude on top of the default rules (paper defaults and
        :func:`~weightscope.sparse.default_exclude`), or ``predicate(name, module) -> bool``
        replacing them (see :func:`~weightscope.sparse.selection.plan_layers`).
    layers : names or globs, optional
        Explicit modules to sparsify (no default rules; incompatible layers are errors).
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
        Once, when a layer the rules selected cannot take the structure (or is lazy, or
        cannot be masked): the message lists every layer left dense and why.
    """
    struct = parse_structure(structure, density)
    method = Search() if method is None else method
    _check_args(model, struct, method, total_steps)
    explicit = layers is not None
    chosen = plan_layers(model, exclude, layers)
    selected, failed = _usable(model, chosen, explicit)
    method.prepare(model, selected)
    seed = method.seed
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    masked = _initial_masks(selected, struct, method, generator, explicit, failed)
    result = _replan(chosen, failed)
    if not masked:
        raise ConfigError(
            "no layer is left to sparsify (none is a linear-like layer that the selection "
            f"rules and the structure accept{_first_reasons(result)}). Pass layers=[...] or a "
            "looser exclude=."
        )
    _summarize(model, result, failed)
    sp = Sparsifier(model, struct, method, masked, total_steps, generator)
    sp.plan = result
    return sp


def plan(model: nn.Module, density: float | None = DEFAULT_DENSITY,
         structure: str = "unstructured", exclude: ExcludeArg = None,
         layers: SelectorArg = None) -> Plan:
    """What :func:`sparsify` with these arguments would mask, and why each other layer stays
    dense (nothing is changed; the structure is tried on each selected weight).

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.LazyLinear(10))
    >>> [(row.name, row.chosen) for row in plan(model)]
    [('0', False), ('2', False)]
    >>> plan(model)["0"].reason
    'input dimension 3 is not divisible by 16'
    """
    struct = parse_structure(structure, density)
    chosen = plan_layers(model, exclude, layers)
    modules = dict(model.named_modules())
    failed = {}
    for name in chosen.chosen:
        reason = _unusable(modules[name]) or _misfit(modules[name], struct)
        if reason is not None:
            failed[name] = reason
    return _replan(chosen, failed)


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


def _unusable(module: nn.Module) -> str | None:
    """Why ``module``'s class cannot be masked, or None."""
    try:
        sparse_class_for(type(module))
    except StructureError as err:
        return str(err)
    return None


def _misfit(module: nn.Module, structure: Structure) -> str | None:
    """Why ``structure`` does not fit ``module``'s weight, or None."""
    try:
        structure.layer_mask(module.weight.detach(), module)
    except StructureError as err:
        return f"{structure.name} does not fit it ({err})"
    return None


def _usable(model: nn.Module, chosen: Plan, explicit: bool
            ) -> tuple[list[tuple[str, nn.Module]], dict[str, str]]:
    """The chosen layers whose class can be masked, and ``{name: reason}`` of the others
    (an error for explicit layers)."""
    modules = dict(model.named_modules())
    kept, failed = [], {}
    for name in chosen.chosen:
        module = modules[name]
        if is_sparse(module):
            raise SparseStateError(
                f"layer {name!r} is already sparse. Call sp.remove() on its sparsifier first."
            )
        reason = _unusable(module)
        if reason is None:
            kept.append((name, module))
        elif explicit:
            raise StructureError(f"layer {name!r} cannot be sparsified: {reason}")
        else:
            failed[name] = reason
    return kept, failed


def _initial_masks(
    selected: list[tuple[str, nn.Module]],
    structure: Structure,
    method: Method,
    generator: torch.Generator,
    explicit: bool,
    failed: dict[str, str],
) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """Compute each layer's first mask; shapes the structure refuses go to ``failed`` (or
    raise, for explicit layers)."""
    masked = []
    for name, module in selected:
        try:
            mask = method.initial_mask(name, module, structure, generator)
        except StructureError as err:
            reason = f"{structure.name} does not fit it ({err})"
            if explicit:
                raise StructureError(f"layer {name!r} cannot be sparsified: {reason}") from None
            failed[name] = reason
            continue
        masked.append((name, module, mask))
    return masked


def _replan(chosen: Plan, failed: dict[str, str]) -> Plan:
    """``chosen`` with the ``failed`` layers turned dense, with their reasons."""
    rows = [dataclasses.replace(r, chosen=False, reason=failed[r.name]) if r.name in failed
            else r for r in chosen]
    return Plan(chosen.action, rows, chosen.total)


def _dense_rows(result: Plan) -> list[Row]:
    return [r for r in result.skipped if not r.kind.startswith("Embedding")]


def _summary(rows: list[Row]) -> str:
    lazy = [r.name for r in rows if r.reason.startswith("lazy")]
    parts = [f"layer {r.name!r} stays dense: {r.reason}" for r in rows
             if not r.reason.startswith("lazy")]
    if lazy:
        parts.append(f"layers {lazy!r} stay dense: their lazy weights are not initialized yet "
                     "(run one forward pass before sparsify() to include them)")
    return "; ".join(parts)


def _summarize(model: nn.Module, result: Plan, failed: dict[str, str]) -> None:
    """One :class:`ExcludedLayerWarning` listing every layer left dense, when a layer is left
    dense for its shape (the default shape rule, a structure that does not fit, lazy weights);
    layers left dense only by the paper's roles or by the user's selection are not warned of."""
    rows = _dense_rows(result)
    modules = dict(model.named_modules())
    by_shape = any(r.name in modules and default_reason(modules[r.name]) == r.reason
                   for r in rows)
    if not failed and not by_shape and not any(r.reason.startswith("lazy") for r in rows):
        return
    warnings.warn(
        f"sparsify leaves {len(rows)} linear-like layer(s) dense (ws.sparse.plan(model, ...) "
        f"shows the table): {_summary(rows)}.", ExcludedLayerWarning, stacklevel=3)


def _first_reasons(result: Plan, limit: int = 3) -> str:
    rows = _dense_rows(result)
    if not rows:
        return ""
    shown = "; ".join(f"{r.name!r}: {r.reason}" for r in rows[:limit])
    more = f"; and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"; {shown}{more}"
