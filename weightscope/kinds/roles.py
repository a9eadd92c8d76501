"""What each linear-like layer is for, as far as the paper's defaults care, and which names
share one parameter.

Paper appendix E.4/E.5: "all linear layers sparse, except for embeddings, vocabulary
projections, and classification heads". :class:`ModelRoles` finds, in a model:

* embeddings: :class:`torch.nn.Embedding` / ``EmbeddingBag`` modules (never linear-like);
* vocabulary projections: a linear-like layer whose weight *is* an embedding's (tied), or
  the model's output layer (its last linear-like layer) when its output size equals an
  embedding's ``num_embeddings`` (only the last: a hidden layer as wide as the positional
  embedding has rows is no projection);
* classification heads: in a model whose class is named ``*For...Classification`` or
  ``*ForMultipleChoice`` (the Hugging Face convention), its last linear-like layer and the
  linear-like layers of a submodule named ``pooler`` (BERT's ``pooler.dense``).

Examples
--------
>>> from torch import nn
>>> model = nn.ModuleDict({"emb": nn.Embedding(10, 4), "out": nn.Linear(4, 10)})
>>> ModelRoles.of(model).dense_reason("out", model["out"])
"vocabulary projection: its 10 outputs match embedding 'emb' (10 rows)"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from torch import nn

from .registry import LayerKind, linear_like

__all__ = ["ModelRoles", "parameter_names"]

_HEAD_MODELS = re.compile(r"For\w*Classification$|ForMultipleChoice$")
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


def parameter_names(model: nn.Module) -> dict[int, list[tuple[str, nn.Module, str]]]:
    """``id(parameter) -> [(name, owning module, attribute), ...]``: every name under which
    ``model`` reaches each parameter object, in ``named_modules`` order (the first is the one
    ``model.named_parameters()`` reports).

    Examples
    --------
    >>> from torch import nn
    >>> emb, out = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    >>> out.weight = emb.weight
    >>> names = parameter_names(nn.Sequential(emb, out))
    >>> [n for n, _, _ in names[id(emb.weight)]]
    ['0.weight', '1.weight']
    """
    out: dict[int, list[tuple[str, nn.Module, str]]] = {}
    seen: set[str] = set()
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for attr, param in module.named_parameters(recurse=False):
            name = f"{mod_name}.{attr}" if mod_name else attr
            if name not in seen:
                seen.add(name)
                out.setdefault(id(param), []).append((name, module, attr))
    return out


@dataclass
class ModelRoles:
    """Embeddings, vocabulary sizes and classification heads of one model (see the module)."""

    model_class: str
    embeddings: dict[int, str] = field(default_factory=dict)
    vocab: dict[int, str] = field(default_factory=dict)
    heads: set[str] = field(default_factory=set)
    last: str | None = None

    @classmethod
    def of(cls, model: nn.Module) -> ModelRoles:
        """Collect the roles of ``model``'s modules."""
        roles = cls(type(model).__name__)
        linear = []
        for name, module in model.named_modules():
            if isinstance(module, _EMBEDDINGS):
                roles.embeddings.setdefault(id(module.weight), name)
                roles.vocab.setdefault(int(module.num_embeddings), name)
            elif linear_like(module) is not None:
                linear.append(name)
        roles.last = linear[-1] if linear else None
        if _HEAD_MODELS.search(roles.model_class) and linear:
            roles.heads = {linear[-1]} | {n for n in linear if "pooler" in n.split(".")}
        return roles

    def shared_embedding(self, module: nn.Module, kind: LayerKind | None = None) -> str | None:
        """Name of the embedding whose weight ``module``'s weight is (tied), or None."""
        kind = kind or linear_like(module)
        if kind is None:
            return None
        return self.embeddings.get(id(kind.weight_of(module)))

    def dense_reason(self, name: str, module: nn.Module) -> str | None:
        """Why the paper's defaults keep this linear-like layer dense, or None."""
        kind = linear_like(module)
        if kind is None:
            return None
        tied = self.shared_embedding(module, kind)
        if tied is not None:
            return f"vocabulary projection: its weight is tied to embedding {tied!r}"
        out = kind.output_size(module)
        if name == self.last and out in self.vocab:
            return (f"vocabulary projection: its {out} outputs match embedding "
                    f"{self.vocab[out]!r} ({out} rows)")
        if name in self.heads:
            return f"classification head of a {self.model_class}"
        return None
