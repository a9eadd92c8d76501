"""Which parameters a Recorder records, and which of their elements.

Examples
--------
>>> import torch.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> [p.name for p in select_params(model)]
['0.weight', '2.weight']
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
from ..store import Layout

__all__ = ["RECORDED_TYPES", "Sample", "Selected", "layout_of", "sample_indices",
           "select_params"]

#: Module types whose ``weight`` is recorded by default (not biases, norms, embeddings or
#: transposed convolutions).
RECORDED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

Predicate = Callable[[str, nn.Module], bool]
ParamSpec = Sequence[str] | Predicate | None


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


def select_params(model: nn.Module, params: ParamSpec = None) -> list[Selected]:
    """Resolve the ``params`` argument of :class:`~weightscope.Recorder`.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    params : None, list of str, or callable
        ``None``: the weight of every ``nn.Linear`` and ``nn.Conv1d/2d/3d``. A list of
        parameter names (``"layer1.0.conv1.weight"``). A predicate ``f(name, module)`` called
        with each parameter's name and the module that owns it.

    Raises
    ------
    ConfigError
        A name that is not a parameter of the model, or a selection matching nothing.
    """
    owned = _owned_parameters(model)
    if params is None:
        chosen = [s for s in owned.values()
                  if s.attr == "weight" and isinstance(s.module, RECORDED_TYPES)]
    elif callable(params):
        chosen = [s for s in owned.values() if params(s.name, s.module)]
    else:
        if isinstance(params, str):
            params = [params]
        unknown = [n for n in params if n not in owned]
        if unknown:
            raise ConfigError(
                f"params must name parameters of the model; {unknown} are not among them. "
                f"Valid names: {_preview(list(owned))}."
            )
        chosen = [owned[n] for n in dict.fromkeys(params)]
    if not chosen:
        raise ConfigError(
            f"params={_describe(params)} matches no parameter of the model; pass None to record "
            f"every conv/linear weight, or names among: {_preview(list(owned))}."
        )
    return chosen


def _owned_parameters(model: nn.Module) -> dict[str, Selected]:
    out: dict[str, Selected] = {}
    for mod_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            name = f"{mod_name}.{attr}" if mod_name else attr
            out.setdefault(name, Selected(name, module, attr))
    return out


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
