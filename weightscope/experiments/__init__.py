"""Bundled experiments: MNIST-1D data, small models, a training loop and the demo family.

Torch side (importing this package imports torch). Modules:

* :mod:`~weightscope.experiments.data` -- :func:`load_mnist1d`, generated offline;
* :mod:`~weightscope.experiments.models` -- :func:`mlp`, :func:`cnn`, :func:`count_weights`,
  :func:`model_family` (widths spanning 1/4..1 of the largest weight count);
* :mod:`~weightscope.experiments.train` -- :class:`TrainConfig` (recipes "adamw" and "sgd"),
  :func:`train` with ``on_step`` / ``on_optimizer`` hooks;
* :mod:`~weightscope.experiments.demo` -- :class:`DemoConfig`, :func:`demo_config` and
  :func:`run_family`, used by ``weightscope demo``;
* :mod:`~weightscope.experiments.lm` -- the bundled language-model task: a grammar-generated
  corpus (:func:`~.lm.load_corpus`) and a small decoder-only transformer
  (:func:`~.lm.transformer`);
* :mod:`~weightscope.experiments.tasks` -- :func:`~.tasks.get_task`: data, models and metric of
  each task ("mnist1d", "lm") that run configs, sweeps and the demo name.

Examples
--------
>>> from weightscope.experiments import count_weights, mlp
>>> count_weights(mlp())
78336
"""

from __future__ import annotations

from .data import MNIST1D, load_mnist1d
from .demo import DEMO_PRESETS, DemoConfig, FamilyRun, RunHook, RunSpec, demo_config, run_family
from .models import build, cnn, count_weights, mlp, model_family
from .train import TrainConfig, TrainResult, evaluate, make_optimizer, train

__all__ = [
    "DEMO_PRESETS",
    "MNIST1D",
    "DemoConfig",
    "FamilyRun",
    "RunHook",
    "RunSpec",
    "TrainConfig",
    "TrainResult",
    "build",
    "cnn",
    "count_weights",
    "demo_config",
    "evaluate",
    "load_mnist1d",
    "make_optimizer",
    "mlp",
    "model_family",
    "run_family",
    "train",
]
