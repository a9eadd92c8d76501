"""Which layers :func:`~weightscope.sparse.sparsify` masks (DESIGN section 5), and why.

Candidates are the linear-like layers of :mod:`weightscope.kinds` (``nn.Linear``,
``nn.Conv1d/2d/3d``, Hugging Face ``Conv1D``, registered types). The default selection keeps
dense, with a reason that :func:`plan_layers` reports:

* the paper's defaults (:mod:`weightscope.kinds.roles`): vocabulary projections (tied to an
  embedding, or as many outputs as an embedding has rows) and classification heads;
* through :func:`default_exclude`: layers whose input dimension (Linear ``in_features``, Conv
  ``in_channels``, Conv1D ``nx``) is not divisible by 16, and grouped or depthwise
  convolutions (``groups != 1``).

A layer whose weight is an embedding's (tied) stays dense unless ``layers=`` names it. Lazy
layers are skipped until a forward pass has initialized them. The output projection of
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

from torch import nn

from weightscope.errors import ConfigError
from weightscope.kinds import ModelRoles, Selector, SelectorArg, is_lazy, kind_of, linear_like
from weightscope.kinds.plan import Plan, Row

__all__ = [
    "ExcludeArg",
    "default_exclude",
    "default_reason",
    "input_dim",
    "is_candidate",
    "is_lazy",
    "plan_layers",
    "select_layers",
]

#: ``exclude=`` accepts names or globs (extending the default rules) or a predicate
#: (replacing them).
ExcludeArg = SelectorArg


def is_candidate(module: nn.Module) -> bool:
    """Return True for an initialized linear-like layer (:mod:`weightscope.kinds`)."""
    return linear_like(module) is not None


def input_dim(module: nn.Module) -> int:
    """Return the input dimension: ``in_features`` (Linear), ``in_channels`` (Conv), ``nx``
    (Hugging Face Conv1D), or the registered ``in_dim`` of the weight.

    Examples
    --------
    >>> from torch import nn
    >>> input_dim(nn.Conv2d(3, 8, 3)), input_dim(nn.Linear(5, 2))
    (3, 5)
    """
    return kind_of(module).input_size(module)


def default_reason(module: nn.Module) -> str | None:
    """Why :func:`default_exclude` excludes ``module`` (None: it does not).

    Examples
    --------
    >>> from torch import nn
    >>> default_reason(nn.Conv2d(3, 16, 3))
    'input dimension 3 is not divisible by 16'
    """
    if linear_like(module) is None:
        return None
    n = input_dim(module)
    if n % 16 != 0:
        return f"input dimension {n} is not divisible by 16"
    groups = getattr(module, "groups", 1)
    if isinstance(module, nn.modules.conv._ConvNd) and groups != 1:
        return f"grouped convolution (groups={groups})"
    return None


def default_exclude(name: str, module: nn.Module) -> bool:
    """The default shape rule: input dimension not divisible by 16, or ``groups != 1``.

    Compose it in your own predicate to extend it, e.g.
    ``exclude=lambda n, m: default_exclude(n, m) or n.startswith("head")``. (A predicate
    replaces the paper's defaults too: see :func:`plan_layers`.)

    Examples
    --------
    >>> from torch import nn
    >>> depthwise = nn.Conv2d(32, 32, 3, groups=32)
    >>> default_exclude("c", depthwise), default_exclude("l", nn.Linear(16, 3))
    (True, False)
    """
    return default_reason(module) is not None


def _attention_outputs(model: nn.Module) -> set[str]:
    return {f"{name}.out_proj" if name else "out_proj"
            for name, module in model.named_modules() if isinstance(module, nn.MultiheadAttention)}


def plan_layers(model: nn.Module, exclude: ExcludeArg = None,
                layers: SelectorArg | None = None) -> Plan:
    """Each linear-like layer and embedding of ``model``: selected or not, and why.

    Parameters
    ----------
    model : nn.Module
        The model.
    exclude : names, globs, callable or None
        ``None``: the default rules. Names or globs: the default rules plus these modules.
        ``predicate(name, module) -> bool``: replaces the default rules (True = exclude); a
        layer tied to an embedding still stays dense.
    layers : names, globs or None
        Explicit modules; they bypass every default rule and must be linear-like.

    Raises
    ------
    ConfigError
        Unknown names (close names are listed), explicit modules that are not linear-like,
        both ``exclude`` and ``layers``.
    """
    modules = dict(model.named_modules())
    items = [(n, [(n, m)]) for n, m in modules.items()]
    attention = _attention_outputs(model)
    if layers is not None:
        if exclude is not None:
            raise ConfigError(
                "pass either layers= (an explicit list) or exclude=, not both. Drop the "
                "excluded names from layers instead."
            )
        wanted = _explicit(modules, items, layers, attention)

        def decide(name: str, module: nn.Module) -> str:
            return _CHOSEN[0] if name in wanted else "not named in layers="
    else:
        decide = _default_rule(model, items, exclude, attention)
    rows = []
    for name, module in modules.items():
        kind = kind_of(module)
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            rows.append(Row(name, type(module).__name__, tuple(module.weight.shape), False,
                            "embedding (the paper keeps embeddings dense)"))
        elif kind is not None:
            reason = decide(name, module)
            shape = () if is_lazy(module) else tuple(kind.weight_of(module).shape)
            rows.append(Row(name, kind.name, shape, reason in _CHOSEN, reason))
    total = sum(p.numel() for p in model.parameters()
                if not isinstance(p, nn.parameter.UninitializedParameter))
    return Plan("sparsify", rows, total)


#: The reasons of chosen rows (explicit, default).
_CHOSEN = ("named in layers=", "linear-like layer")


def _default_rule(model: nn.Module, items: list, exclude: ExcludeArg,
                  attention: set[str]) -> Callable[[str, nn.Module], str]:
    """``decide(name, module) -> reason`` of the default selection (chosen: _CHOSEN[1])."""
    selector = Selector.parse(exclude, "exclude")
    excluded: set[str] = set()
    if selector is not None:
        if selector.predicate is not None:  # called with the candidates only
            items = [(n, pairs) for n, pairs in items if is_candidate(pairs[0][1])]
        excluded = selector.resolve(items, "modules", _unknown("exclude"))
    roles = ModelRoles.of(model)
    replaced = selector is not None and selector.predicate is not None

    def decide(name: str, module: nn.Module) -> str:
        if is_lazy(module):
            return "lazy: its weight is not initialized yet"
        if name in attention:
            return "nn.MultiheadAttention reads its weight directly (a mask has no effect)"
        tied = roles.shared_embedding(module)
        if tied is not None:
            return (f"vocabulary projection: its weight is tied to embedding {tied!r} (name "
                    "it in layers= to mask it)")
        if name in excluded:
            return "excluded by the exclude= predicate" if replaced else "named in exclude="
        if not replaced:
            reason = roles.dense_reason(name, module) or default_reason(module)
            if reason is not None:
                return reason
        return _CHOSEN[1]

    return decide


def _unknown(arg: str) -> Callable[[list[str]], str]:
    return lambda names: (f"{arg} names modules that the model does not have: {names!r}. Use "
                          "names from model.named_modules(), e.g. 'layer1.0.conv1'.")


def _explicit(modules: dict[str, nn.Module], items: list, layers: SelectorArg,
              attention: set[str]) -> set[str]:
    selector = Selector.parse(layers, "layers")
    if selector.predicate is None and not selector.patterns:
        raise ConfigError("layers must name at least one module; got []. Pass layers=None "
                          "for the default selection.")
    if selector.predicate is not None:  # a predicate picks among the candidates only
        items = [(n, pairs) for n, pairs in items
                 if is_candidate(modules[n]) and n not in attention]
    names = selector.resolve(items, "modules", _unknown("layers"))
    for name in [n for n in modules if n in names]:
        if not is_candidate(modules[name]) or name in attention:
            raise ConfigError(
                f"layers names {name!r}, a {type(modules[name]).__name__}; only linear-like "
                "layers (nn.Linear, nn.Conv1d/2d/3d, HF Conv1D or a register_layer type; not "
                "attention's out_proj) can be sparsified. Remove it from layers."
            )
    return names


def select_layers(
    model: nn.Module, exclude: ExcludeArg, layers: Sequence[str] | None
) -> list[tuple[str, nn.Module]]:
    """Return the ``(name, module)`` pairs to sparsify, in ``named_modules`` order.

    The chosen rows of :func:`plan_layers` (same arguments and errors).

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(10, 32), nn.Linear(32, 4))
    >>> [n for n, _ in select_layers(model, exclude=None, layers=["0"])]
    ['0']
    """
    modules = dict(model.named_modules())
    return [(name, modules[name]) for name in plan_layers(model, exclude, layers).chosen]
