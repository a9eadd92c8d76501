"""Which parameters a Recorder records, and which of their elements.

By default: the weight of every linear-like layer (:mod:`weightscope.kinds`: ``nn.Linear``,
``nn.Conv1d/2d/3d``, Hugging Face ``Conv1D``, registered types), not biases, norms or
embeddings. A parameter reached under several names (tied weights) is recorded once, under the
first name ``model.named_parameters()`` gives; :func:`aliases_of` lists its other names.
``params=`` and ``exclude=`` take names, globs or a predicate
(:class:`~weightscope.kinds.Selector`); :func:`plan_params` shows what is chosen and why.

Examples
--------
>>> import torch.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> [p.name for p in select_params(model)]
['0.weight', '2.weight']
>>> [p.name for p in select_params(model, params="*.bias")]
['0.bias', '2.bias']
>>> sample_indices("0.weight", numel=32, sample=4).tolist()
[0, 1, 17, 31]
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..config import Sample, check_sample
from ..errors import ConfigError
from ..kinds import Selector, SelectorArg, linear_like, parameter_names
from ..kinds.plan import Plan, Row
from ..store import Layout

__all__ = ["RECORDED_TYPES", "Sample", "Selected", "aliases_of", "layout_of", "plan_params",
           "resolve_params", "sample_indices", "select_params"]

#: The built-in module types whose ``weight`` is recorded by default (the registry of
#: :mod:`weightscope.kinds` adds Hugging Face ``Conv1D`` and registered types).
RECORDED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

Predicate = Callable[[str, nn.Module], bool]
ParamSpec = SelectorArg


@dataclass(frozen=True)
class Selected:
    """One recorded parameter: its name and where to find it (``getattr(module, attr)``)."""

    name: str
    module: nn.Module
    attr: str

    @property
    def tensor(self) -> torch.Tensor:
        """The parameter as it is now (looked up each time, so replacement is noticed)."""
        return getattr(self.module, self.attr)


def select_params(model: nn.Module, params: ParamSpec = None,
                  exclude: ParamSpec = None) -> list[Selected]:
    """Resolve the ``params`` / ``exclude`` arguments of :class:`~weightscope.Recorder`.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    params : None, names, globs, or callable
        ``None``: the weight of every linear-like layer. Parameter names or globs
        (``"layer1.0.conv1.weight"``, ``"*.bias"``). A predicate ``f(name, module)`` called
        with each parameter's name(s) and the module that owns it.
    exclude : None, names, globs, or callable
        Parameters to leave out of that selection.

    Raises
    ------
    ConfigError
        A name that is not a parameter of the model, or a selection matching nothing.
    """
    selected, plan = resolve_params(model, params, exclude)
    if not selected:
        owned = [r.name for r in plan]
        if params is None and exclude is None:
            raise ConfigError(
                "params=None matches no parameter of the model: it has no linear-like layer "
                "(nn.Linear, nn.Conv1d/2d/3d, Hugging Face Conv1D or a type given to "
                "weightscope.kinds.register_layer). Pass params=[names] among: "
                f"{_preview(owned)}, or register your layer type."
            )
        raise ConfigError(
            f"params={_describe(params)} (exclude={_describe(exclude)}) matches no parameter "
            f"of the model; pass params=None to record every linear-like weight, or names "
            f"among: {_preview(owned)}."
        )
    return selected


def resolve_params(model: nn.Module, params: ParamSpec = None, exclude: ParamSpec = None
                   ) -> tuple[list[Selected], Plan]:
    """The selected parameters and the :class:`~weightscope.kinds.plan.Plan` of every
    parameter of ``model`` (each shared parameter once); nothing is checked for emptiness."""
    groups = list(parameter_names(model).values())
    items = [(occ[0][0], [(n, m) for n, m, _ in occ]) for occ in groups]
    names = [k for k, _ in items]
    keys, why = _chosen(groups, items, params, names)
    drop = Selector.parse(exclude, "exclude")
    dropped = (set() if drop is None else
               drop.resolve(items, "parameters", _unknown("exclude", names)))
    keys = [k for k in keys if k not in dropped]
    first = {occ[0][0]: Selected(*occ[0]) for occ in groups}
    rows = []
    for occ in groups:
        name, module, attr = occ[0]
        reason = ("named in exclude=" if name in dropped else
                  why.get(name, "not a linear-like layer's weight (pass params= to record it)"))
        rows.append(Row(name, _kind_name(occ), tuple(getattr(module, attr).shape),
                        name in keys, reason))
    total = sum(r.numel for r in rows)
    return [first[k] for k in keys], Plan("record", rows, total)


def plan_params(model: nn.Module, params: ParamSpec = None,
                exclude: ParamSpec = None) -> Plan:
    """Each parameter of ``model``: recorded by a Recorder with these arguments or not, and
    why. Warns (:class:`~weightscope.kinds.plan.CoverageWarning`) when the default selection
    finds no linear-like layer or holds less than half of the parameters.

    Examples
    --------
    >>> from torch import nn
    >>> plan = plan_params(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8)))
    >>> [(row.name, row.chosen) for row in plan]
    [('0.weight', True), ('0.bias', False), ('1.weight', False), ('1.bias', False)]
    """
    plan = resolve_params(model, params, exclude)[1]
    if params is None:
        plan.warn_if_thin("the Recorder's default selection (params=None)")
    return plan


def aliases_of(model: nn.Module, selected: Sequence[Selected]) -> dict[str, list[str]]:
    """``{recorded name: [its other names]}`` of the selected parameters that have any."""
    groups = {occ[0][0]: [n for n, _, _ in occ[1:]] for occ in parameter_names(model).values()}
    return {s.name: groups[s.name] for s in selected if groups.get(s.name)}


def _chosen(groups: list, items: list, params: ParamSpec,
            names: list[str]) -> tuple[list[str], dict[str, str]]:
    """Keys chosen by ``params`` (in order) and the reason of each."""
    selector = Selector.parse(params, "params")
    if selector is None:
        why = {}
        for occ in groups:
            for _, module, attr in occ:
                kind = linear_like(module)
                if kind is not None and attr == kind.weight and occ[0][0] not in why:
                    why[occ[0][0]] = f"weight of a linear-like layer ({kind.name})" + (
                        f", also named {[n for n, _, _ in occ[1:]]}" if len(occ) > 1 else "")
        return [k for k, _ in items if k in why], why
    keys = selector.resolve(items, "parameters", _unknown("params", names))
    if selector.predicate is not None:
        return [k for k, _ in items if k in keys], dict.fromkeys(keys, "chosen by params=")
    return selector.order(keys, items), dict.fromkeys(keys, "named in params=")


def _kind_name(occ: list[tuple[str, nn.Module, str]]) -> str:
    kinds = [linear_like(m) for _, m, _ in occ]
    kind = next((k for k in kinds if k is not None), None)
    return kind.name if kind is not None else type(occ[0][1]).__name__


def _unknown(arg: str, owned: list[str]) -> Callable[[list[str]], str]:
    return lambda names: (f"{arg} must name parameters of the model; {names} are not among "
                          f"them. Valid names: {_preview(owned)}.")


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _describe(params: ParamSpec) -> str:
    return "None" if params is None else getattr(params, "__name__", repr(params))


def sample_indices(name: str, numel: int, sample: Sample) -> np.ndarray:
    """Sorted flat indices of the recorded elements of parameter ``name``.

    ``None`` or an int ``>= numel`` records every element; a float ``f`` records
    ``max(1, round(f * numel))``. Elements are drawn uniformly without replacement by a
    generator seeded from the parameter's name, so two runs of one model record the same
    elements.
    """
    sample = check_sample(sample)
    if sample is None:
        return np.arange(numel, dtype=np.int64)
    n = sample if isinstance(sample, int) else max(1, round(sample * numel))
    if n >= numel:
        return np.arange(numel, dtype=np.int64)
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    return np.sort(rng.choice(numel, size=n, replace=False)).astype(np.int64)


def layout_of(selected: Sequence[Selected], sample: Sample) -> Layout:
    """The packing along ``weight`` of the recorded elements of ``selected``."""
    names = [s.name for s in selected]
    shapes = [tuple(s.tensor.shape) for s in selected]
    indices = [None if sample is None else sample_indices(s.name, s.tensor.numel(), sample)
               for s in selected]
    return Layout.build(names, shapes, indices)
