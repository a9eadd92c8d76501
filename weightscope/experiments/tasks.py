"""The bundled tasks: for each, its data, its models, its metric and its default settings.

A :class:`~.sparse_config.RunConfig` and a :class:`~.demo.DemoConfig` name a task; everything
that differs between tasks is looked up here (one table), so training, sweeps and the demo run
through the same code:

===========  ==============================  ====================  ==========================
task         data                            archs (full width)    metric ("test_error")
===========  ==============================  ====================  ==========================
``mnist1d``  MNIST-1D (:mod:`.data`)          mlp (256), cnn (64)   test error (classification)
``lm``       grammar corpus (:mod:`.lm`)      transformer (96)      validation next-token error
===========  ==============================  ====================  ==========================

Examples
--------
>>> from weightscope.experiments.tasks import get_task
>>> task = get_task("lm")
>>> task.archs, task.metric
(('transformer',), 'validation next-token error')
>>> task.count("transformer", task.defaults["width"])
235488
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from weightscope.errors import ConfigError

from . import lm
from .data import load_mnist1d
from .models import ARCHS, build, count_weights, model_family

__all__ = ["TASKS", "Task", "get_task"]


@dataclass(frozen=True)
class Task:
    """One bundled task (see the module table).

    Attributes
    ----------
    name : str
        Its name in configs and on the command line.
    archs : tuple of str
        Architectures it builds (``defaults["arch"]`` is the default).
    defaults : mapping
        RunConfig fields that resolve per task when left None (arch, width, recipe, lr, steps,
        batch_size, num_samples): the sweeps' settings of the task.
    metric : str
        What its runs' ``test_error`` measures.
    load : callable
        ``load(num_samples)``: the data, with ``x_train``, ``y_train``, ``x_test``, ``y_test``.
    builder : callable
        ``builder(arch, width, seed)``: a model.
    widths : callable
        ``widths(arch, n)``: widths of a model family spanning 1/4..1 of the full model.
    """

    name: str
    archs: tuple[str, ...]
    defaults: Mapping[str, Any]
    metric: str
    load: Callable[[int], Any]
    builder: Callable[[str, int, int | None], nn.Module]
    widths: Callable[[str, int], tuple[int, ...]]

    def build(self, arch: str, width: int | None = None, seed: int | None = None) -> nn.Module:
        """The model ``arch`` at ``width`` (default: the full model), seeded if asked."""
        self.check_arch(arch)
        return self.builder(arch, self.full_width(arch) if width is None else width, seed)

    def full_width(self, arch: str) -> int:
        """Width of the full (largest) model of ``arch``."""
        return self.widths(arch, 2)[-1]

    def count(self, arch: str, width: int) -> int:
        """Weights of the Linear/Conv layers of ``arch`` at ``width`` (built on meta)."""
        with torch.device("meta"):
            return count_weights(self.build(arch, width))

    def check_arch(self, arch: str) -> None:
        """Raise ConfigError unless ``arch`` is one of :attr:`archs`."""
        if arch not in self.archs:
            raise ConfigError(f"arch must be one of {self.archs}; got {arch!r} (task "
                              f"{self.name!r}). Pass arch={self.defaults['arch']!r} or another "
                              "task.")


def _mnist_build(arch: str, width: int, seed: int | None) -> nn.Module:
    return build(arch, width, seed=seed)


def _lm_build(arch: str, width: int, seed: int | None) -> nn.Module:
    return lm.transformer(width, seed=seed)


#: The tasks by name; "mnist1d" is the default of every config.
TASKS: dict[str, Task] = {
    "mnist1d": Task(
        "mnist1d", ARCHS,
        {"arch": "cnn", "width": 32, "recipe": "sgd", "steps": 2000, "batch_size": 128,
         "num_samples": 10_000},
        "test error", lambda n: load_mnist1d(num_samples=n), _mnist_build, model_family),
    "lm": Task(
        "lm", ("transformer",),
        {"arch": "transformer", "width": lm.DEFAULT_LM_WIDTH, "recipe": "adamw", "lr": 2e-3,
         "steps": 800, "batch_size": 32, "num_samples": 10_000},
        "validation next-token error", lambda n: lm.load_corpus(num_samples=n), _lm_build,
        lambda arch, n: lm.lm_family(n)),
}


def get_task(name: str) -> Task:
    """The task ``name`` (:data:`TASKS`).

    Raises
    ------
    ConfigError
        Unknown name.

    Examples
    --------
    >>> get_task("mnist1d").metric
    'test error'
    """
    if name not in TASKS:
        raise ConfigError(f"task must be one of {tuple(TASKS)}; got {name!r}. "
                          "Pass task='mnist1d' or task='lm'.")
    return TASKS[name]
