"""Which layers :func:`~weightscope.sparse.sparsify` masks (DESIGN section 5).

Candidates are the weights of :class:`torch.nn.Linear` and :class:`torch.nn.Conv1d` /
``Conv2d`` / ``Conv3d`` modules (embeddings are never candidates). The default selection
excludes, through :func:`default_exclude`:

* layers whose input dimension (Linear ``in_features``, Conv ``in_channels``) is not
  divisible by 16,
* grouped and depthwise convolutions (``groups != 1``).

Lazy layers are skipped until a forward pass has initialized them. The output projection of
:class:`torch.nn.MultiheadAttention` is never masked: attention uses its weight directly,
bypassing the layer's forward, so a mask would have no effect.

Examples
--------
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
>>> [name for name, _ in select_layers(model, exclude=None, layers=None)]
['2']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from weightscope.errors import ConfigError

__all__ = [
    "ExcludeArg",
    "default_exclude",
    "input_dim",
    "is_candidate",
    "is_lazy",
    "select_layers",
]

#: ``exclude=`` accepts names (extending the default rules) or a predicate (replacing them).
ExcludeArg = Sequence[str] | Callable[[str, nn.Module], bool] | None

_CANDIDATES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_candidate(module: nn.Module) -> bool:
    """Return True for Linear and Conv1d/2d/3d modules (and subclasses) with a weight.

    Lazy modules (``nn.LazyLinear``...) are candidates only once a forward pass has
    initialized their weight.
    """
    if not isinstance(module, _CANDIDATES):
        return False
    return isinstance(module.weight, torch.Tensor) and not is_lazy(module)


def is_lazy(module: nn.Module) -> bool:
    """Return True for a Linear/Conv module whose weight is still uninitialized (lazy)."""
    return isinstance(getattr(module, "weight", None), nn.parameter.UninitializedParameter)


def input_dim(module: nn.Module) -> int:
    """Return the input dimension: ``in_features`` (Linear) or ``in_channels`` (Conv).

    Examples
    --------
    >>> from torch import nn
    >>> input_dim(nn.Conv2d(3, 8, 3)), input_dim(nn.Linear(5, 2))
    (3, 5)
    """
    return int(module.in_features if isinstance(module, nn.Linear) else module.in_channels)


def default_exclude(name: str, module: nn.Module) -> bool:
    """The default exclusion rule: input dimension not divisible by 16, or ``groups != 1``.

    Compose it in your own predicate to extend it, e.g.
    ``exclude=lambda n, m: default_exclude(n, m) or n.startswith("head")``.

    Examples
    --------
    >>> from torch import nn
    >>> depthwise = nn.Conv2d(32, 32, 3, groups=32)
    >>> default_exclude("c", depthwise), default_exclude("l", nn.Linear(16, 3))
    (True, False)
    """
    if input_dim(module) % 16 != 0:
        return True
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1


def _attention_outputs(model: nn.Module) -> set[str]:
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            names.add(f"{name}.out_proj" if name else "out_proj")
    return names


def select_layers(
    model: nn.Module, exclude: ExcludeArg, layers: Sequence[str] | None
) -> list[tuple[str, nn.Module]]:
    """Return the ``(name, module)`` pairs to sparsify, in ``named_modules`` order.

    Parameters
    ----------
    model : nn.Module
        The model.
    exclude : sequence of str, callable or None
        ``None``: the default rules. Names: the default rules plus these modules.
        ``predicate(name, module) -> bool``: replaces the default rules (True = exclude).
    layers : sequence of str or None
        Explicit module names; they bypass the default rules and must be candidates.

    Raises
    ------
    ConfigError
        Unknown names, non-candidate explicit layers, both ``exclude`` and ``layers``.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.Linear(32, 4))
    >>> [n for n, _ in select_layers(model, exclude=None, layers=["0"])]
    ['0']
    """
    modules = dict(model.named_modules())
    if layers is not None:
        if exclude is not None:
            raise ConfigError(
                "pass either layers= (an explicit list) or exclude=, not both. Drop the "
                "excluded names from layers instead."
            )
        return _explicit(modules, layers, _attention_outputs(model))
    predicate = _predicate(modules, exclude)
    attention = _attention_outputs(model)
    return [
        (name, module)
        for name, module in modules.items()
        if is_candidate(module) and name not in attention and not predicate(name, module)
    ]


def _predicate(
    modules: dict[str, nn.Module], exclude: ExcludeArg
) -> Callable[[str, nn.Module], bool]:
    if exclude is None:
        return default_exclude
    if callable(exclude):
        return exclude
    if isinstance(exclude, str):
        exclude = [exclude]
    names = set(_check_names(modules, exclude, "exclude"))
    return lambda name, module: name in names or default_exclude(name, module)


def _explicit(
    modules: dict[str, nn.Module], layers: Sequence[str], attention: set[str]
) -> list[tuple[str, nn.Module]]:
    if isinstance(layers, str):
        layers = [layers]
    names = _check_names(modules, layers, "layers")
    if not names:
        raise ConfigError("layers must name at least one module; got []. Pass layers=None "
                          "for the default selection.")
    for name in names:
        if not is_candidate(modules[name]) or name in attention:
            raise ConfigError(
                f"layers names {name!r}, a {type(modules[name]).__name__}; only nn.Linear and "
                "nn.Conv1d/2d/3d layers (not attention's out_proj) can be sparsified. Remove "
                "it from layers."
            )
    wanted = set(names)
    return [(name, module) for name, module in modules.items() if name in wanted]


def _check_names(modules: dict[str, nn.Module], names: Sequence[str], arg: str) -> list[str]:
    names = list(names)
    unknown = [n for n in names if not isinstance(n, str) or n not in modules]
    if unknown:
        raise ConfigError(
            f"{arg} names modules that the model does not have: {unknown!r}. Use names from "
            "model.named_modules(), e.g. 'layer1.0.conv1'."
        )
    return names
