"""The registry of linear-like layer kinds: which modules hold a weight that weightscope records
by default and may sparsify, which attribute holds it, and where its input dimension is.

Built in: :class:`torch.nn.Linear` and :class:`torch.nn.Conv1d` / ``Conv2d`` / ``Conv3d``
(weight ``(out, in, *kernel)``, input dimension 1) and Hugging Face's
``transformers.pytorch_utils.Conv1D`` (weight ``(in, out)``, input dimension 0), which is
recognized by its class's module and name: building the registry never imports transformers.
Subclasses match through their method resolution order, the most specific registration first.

Examples
--------
>>> import torch
>>> from torch import nn
>>> kind_of(nn.Conv2d(3, 8, 3)).in_dim, kind_of(nn.Embedding(4, 2)) is None
(1, True)
>>> class Gate(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.kernel = nn.Parameter(torch.zeros(8, 4))  # (in, out)
>>> _ = register_layer(Gate, weight="kernel", in_dim=0)
>>> kind_of(Gate()).input_size(Gate())
8
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from weightscope._validate import check_int
from weightscope.errors import ConfigError

__all__ = ["HF_CONV1D", "LayerKind", "is_lazy", "kind_of", "linear_like", "register_layer",
           "registered_base"]

#: ``(module, class name)`` of Hugging Face's transposed linear layer (GPT-2's attention/MLP).
HF_CONV1D = ("transformers.pytorch_utils", "Conv1D")


@dataclass(frozen=True)
class LayerKind:
    """How one layer type holds its weight.

    Attributes
    ----------
    name : str
        The registered class's name (``"Linear"``, ``"Conv1D"``...).
    weight : str
        Attribute of the weight parameter.
    in_dim : int
        The weight's input dimension. The canonical view :meth:`canonical` moves it to dim 1,
        so the dimension before it is the output one: ``(out, in, *rest)``, the layout of
        the :mod:`weightscope.kernels` masks (2:4 groups run along ``in``).
    """

    name: str
    weight: str = "weight"
    in_dim: int = 1

    def weight_of(self, module: nn.Module) -> torch.Tensor:
        """The layer's weight; a registration that does not fit the module is an error."""
        w = getattr(module, self.weight, None)
        if not isinstance(w, torch.Tensor):
            params = [n for n, _ in module.named_parameters(recurse=False)]
            raise ConfigError(
                f"{type(module).__name__} is registered as a layer with weight={self.weight!r}, "
                f"but it has no tensor {self.weight!r} (its parameters: {params}). Register it "
                "with weight=<the name of its weight parameter>."
            )
        if isinstance(w, nn.parameter.UninitializedParameter):
            return w
        if w.dim() < 2 or self.in_dim >= w.dim():
            raise ConfigError(
                f"{type(module).__name__} is registered with in_dim={self.in_dim}, which does "
                f"not fit its weight {self.weight!r} of shape {tuple(w.shape)}: a layer weight "
                "needs >= 2 dims and in_dim must index one of them. Register it with the index "
                "of the weight's input dimension, e.g. in_dim=1 for (out, in)."
            )
        return w

    def input_size(self, module: nn.Module) -> int:
        """Size of the weight's input dimension (Linear ``in_features``, Conv ``in_channels``)."""
        return int(self.weight_of(module).shape[self.in_dim])

    def output_size(self, module: nn.Module) -> int:
        """Size of the weight's output dimension (dim 0 of the canonical view)."""
        return int(self.canonical(self.weight_of(module)).shape[0])

    def canonical(self, t: torch.Tensor) -> torch.Tensor:
        """A view of a weight-shaped tensor laid out ``(out, in, *rest)``."""
        return t if self.in_dim == 1 else t.movedim(self.in_dim, 1)

    def from_canonical(self, t: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`canonical` (a contiguous tensor of the weight's layout)."""
        return t if self.in_dim == 1 else t.movedim(1, self.in_dim).contiguous()


_BY_CLASS: dict[type, LayerKind] = {
    cls: LayerKind(cls.__name__) for cls in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)}
_BY_NAME: dict[tuple[str, str], LayerKind] = {HF_CONV1D: LayerKind("Conv1D", in_dim=0)}


def register_layer(cls: type[nn.Module] | nn.Module, weight: str = "weight",
                   in_dim: int = 1) -> type[nn.Module]:
    """Make ``cls`` (and its subclasses) a linear-like layer: recorded by default, sparsifiable.

    Parameters
    ----------
    cls : type or nn.Module
        The layer class, or an instance of it (then checked against its weight at once).
    weight : str, default "weight"
        Attribute of its weight parameter.
    in_dim : int, default 1
        The weight's input dimension (1 for ``(out, in, ...)``, 0 for ``(in, out)``).

    Returns
    -------
    type
        ``cls`` (so it can decorate a class with the default layout).

    Raises
    ------
    ConfigError
        ``cls`` is not an ``nn.Module`` class, ``weight`` is not a name, ``in_dim`` is not an
        int >= 0, or the instance given has no such weight or one that ``in_dim`` does not fit.
    """
    instance = cls if isinstance(cls, nn.Module) else None
    klass = type(cls) if instance is not None else cls
    if not isinstance(klass, type) or not issubclass(klass, nn.Module):
        raise ConfigError(
            f"register_layer needs an nn.Module subclass (or an instance of one); got {cls!r}. "
            "Pass the layer's class, e.g. register_layer(MyLinear)."
        )
    if not isinstance(weight, str) or not weight.isidentifier():
        raise ConfigError(
            f"register_layer's weight must name the layer's weight attribute; got {weight!r}. "
            "Pass e.g. weight='weight'."
        )
    in_dim = check_int(in_dim, "register_layer's in_dim must be an int >= 0 (the weight's "
                       "input dimension)", minimum=0, fix="Pass in_dim=1 for (out, in) weights.")
    kind = LayerKind(klass.__name__, weight, in_dim)
    if instance is not None:
        kind.weight_of(instance)
    _BY_CLASS[klass] = kind
    return klass


def kind_of(module: nn.Module) -> LayerKind | None:
    """The :class:`LayerKind` of ``module`` (most specific registered base), or None."""
    found = registered_base(type(module))
    return None if found is None else found[1]


def registered_base(cls: type) -> tuple[type, LayerKind] | None:
    """The most specific registered base of ``cls`` (itself included) and its kind, or None."""
    for klass in cls.__mro__:
        kind = _BY_CLASS.get(klass) or _BY_NAME.get((klass.__module__, klass.__name__))
        if kind is not None:
            return klass, kind
    return None


def is_lazy(module: nn.Module) -> bool:
    """Whether ``module``'s weight is still uninitialized (``nn.LazyLinear`` before a forward)."""
    kind = kind_of(module)
    w = getattr(module, kind.weight if kind else "weight", None)
    return isinstance(w, nn.parameter.UninitializedParameter)


def linear_like(module: nn.Module) -> LayerKind | None:
    """The kind of an initialized linear-like ``module`` (checked against its weight), or None."""
    kind = kind_of(module)
    if kind is None or is_lazy(module):
        return None
    kind.weight_of(module)
    return kind
