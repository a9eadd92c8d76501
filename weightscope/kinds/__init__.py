"""Layer kinds, model roles and selectors shared by the Recorder and sparse training.

One registry (:mod:`weightscope.kinds.registry`) says which layers are *linear-like*: recorded
by default and sparsifiable. Built in: ``nn.Linear``, ``nn.Conv1d/2d/3d`` and Hugging Face's
``Conv1D`` (GPT-2; weight ``(in, out)``, recognized without importing transformers); add your
own with :func:`register_layer`.

Paper defaults per model family (appendix E.4/E.5: "all linear layers sparse, except for
embeddings, vocabulary projections, and classification heads"), see docs/models.md:

==============================  =====================  ====================================
layer                           Recorder (params=None)  sparsify (default selection)
==============================  =====================  ====================================
linear-like layer               recorded                sparsified (if its shape fits)
embedding (``nn.Embedding``)    not recorded            dense (not linear-like)
vocabulary projection           recorded (once if tied) dense (tied: unless named in layers=)
classification head             recorded                dense
==============================  =====================  ====================================

A vocabulary projection is a linear-like layer tied to an embedding, or the last linear-like
layer when its output size is an embedding's ``num_embeddings``; a classification head is the
last linear-like layer of a ``*For...Classification`` / ``*ForMultipleChoice`` model and the
layers of its ``pooler``
(:mod:`weightscope.kinds.roles`). A parameter reached under several names (tied weights) is
recorded once, under the first name ``model.named_parameters()`` gives, its other names in the
run's ``aliases`` attribute. ``params=`` / ``exclude=`` / ``layers=`` take names, globs or a
predicate (:class:`~weightscope.kinds.selectors.Selector`); ``ws.sparse.plan(model)`` and
:func:`weightscope.record.selection.plan_params` show what is chosen and why.

Examples
--------
>>> from torch import nn
>>> from weightscope.kinds import kind_of
>>> kind_of(nn.Linear(2, 3)).name
'Linear'
"""

from __future__ import annotations

from .registry import HF_CONV1D, LayerKind, is_lazy, kind_of, linear_like, register_layer
from .roles import ModelRoles, parameter_names
from .selectors import Selector, SelectorArg, close_names

__all__ = [
    "HF_CONV1D",
    "LayerKind",
    "ModelRoles",
    "Selector",
    "SelectorArg",
    "close_names",
    "is_lazy",
    "kind_of",
    "linear_like",
    "parameter_names",
    "register_layer",
]
