"""Train one :class:`~.sparse_config.RunConfig` on MNIST-1D and return its test error.

:func:`run_config` builds the bundled model, applies the method and trains it with
:func:`weightscope.experiments.train.train`, the sparsifier attached through the ``on_optimizer``
hook (``sp.attach(optimizer)``):

* REGULAR trains the dense model; REDUCE trains the narrower dense model whose sparsifiable
  layers (sparsify's default selection) hold as many weights as participate in the sparse run
  of the same density and ``layers`` (:func:`weightscope.sparse.reduce_width` over the
  builder's width). Layers outside the default selection (the first conv/linear layer, whose
  input dimension is not a multiple of 16) stay dense in sparse runs and narrow with REDUCE;
  that is 1.7 % of the weights of the default CNN (13 % of the default MLP);
* SEARCH, STATIC, SET and RIGL sparsify the model at initialization and train it;
* LOTTERY runs the paper's three steps (appendix D): train the dense model for ``steps``,
  saving its weights at ``eps = round(rewind * steps)``; take the masks from the final weights;
  rebuild the model, rewind it to the saved weights and train it sparse for ``steps - eps``
  steps, its learning-rate schedule resumed at step ``eps``.

Runs are deterministic: one CPU thread and torch's deterministic mode while the run lasts (both
restored afterwards), and every random draw seeded from ``config.seed``, so the same config gives
the same error in any process.

Examples
--------
>>> from weightscope.experiments.sparse_config import RunConfig
>>> from weightscope.experiments.sparse_train import run_config
>>> cfg = RunConfig(method="search", density=0.25, steps=20, num_samples=500)
>>> a, b = run_config(cfg), run_config(cfg)
>>> a.test_error == b.test_error, a.steps
(True, 20)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from weightscope.sparse import default_exclude, reduce_width, select_layers, sparsify

from .data import load_mnist1d
from .models import build, count_weights
from .sparse_config import RunConfig
from .train import TrainConfig, TrainResult, train

__all__ = ["RunResult", "build_model", "run_config"]


@dataclass(frozen=True)
class RunResult:
    """What one run measured.

    Attributes
    ----------
    test_error : float
        Fraction of misclassified test samples after training.
    train_loss : float
        Mean cross-entropy over the train split after training.
    n_weights : int
        Weights of the Linear/Conv layers that take part in the forward pass at the end
        (participating weights of sparsified layers plus the dense layers).
    steps : int
        Optimizer steps taken in all (LOTTERY: dense run plus sparse retraining).
    wall_s, cpu_s : float
        Wall-clock and process CPU seconds of the run (data generation excluded).
    """

    test_error: float
    train_loss: float
    n_weights: int
    steps: int
    wall_s: float
    cpu_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


@dataclass(frozen=True)
class _ResumedSchedule(TrainConfig):
    """A TrainConfig whose cosine schedule is the one of ``horizon`` steps from ``offset`` on."""

    offset: int = 0
    horizon: int = 1

    def lr_at(self, step: int) -> float:
        full = TrainConfig(recipe=self.recipe, lr=self.lr, steps=self.horizon,
                           schedule=self.schedule)
        return full.lr_at(step + self.offset)


def run_config(config: RunConfig, threads: int = 1) -> RunResult:
    """Train ``config`` and measure it (see the module docstring).

    Parameters
    ----------
    config : RunConfig
        The experiment.
    threads : int, default 1
        torch CPU threads while the run lasts (1 keeps results identical across processes).

    Returns
    -------
    RunResult
    """
    data = load_mnist1d(num_samples=config.num_samples)
    with _deterministic(threads):
        wall, cpu = time.perf_counter(), time.process_time()
        if config.method == "lottery":
            model, result, steps = _lottery(config, data)
        else:
            model, result, steps = _plain(config, data)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return RunResult(test_error=float(result.test_error), train_loss=float(result.train_loss),
                     n_weights=_effective_weights(model), steps=steps, wall_s=wall, cpu_s=cpu)


def build_model(config: RunConfig) -> nn.Module:
    """The model of ``config`` before training: full width, or REDUCE's narrower one.

    Examples
    --------
    >>> from weightscope.experiments.models import count_weights
    >>> from weightscope.experiments.sparse_config import RunConfig
    >>> count_weights(build_model(RunConfig(method="regular")))
    9504
    """
    if config.method != "reduce":
        return build(config.arch, config.width, seed=config.seed)

    def narrower(mult: float) -> nn.Module:
        return build(config.arch, max(1, round(config.width * mult)), seed=config.seed)

    model, _ = reduce_width(narrower, _reduce_density(config))
    return model


def _reduce_density(config: RunConfig) -> float:
    """Fraction of the default selection's weights that SEARCH at ``config`` lets participate.

    With ``layers="default"`` it is ``density``; with ``"hidden"`` the dense output layer counts
    in full, so REDUCE matches the participating weights of the sparse run it is compared with.
    """
    if config.layers == "default":
        return float(config.density)
    with torch.device("meta"):
        sizes = [m.weight.numel() for _, m in select_layers(build(config.arch, config.width),
                                                             None, None)]
    return (config.density * sum(sizes[:-1]) + sizes[-1]) / sum(sizes)


def _plain(config: RunConfig, data: Any) -> tuple[nn.Module, TrainResult, int]:
    model = build_model(config)
    hook = None
    if config.sparse:
        sp = sparsify(model, config.density, config.structure, config.sparse_method(),
                      exclude=_exclude(config), total_steps=config.steps)
        hook = sp.attach
    return model, train(model, data, config.train_config, on_optimizer=hook), config.steps


def _lottery(config: RunConfig, data: Any) -> tuple[nn.Module, TrainResult, int]:
    eps = config.rewind_step
    dense = build(config.arch, config.width, seed=config.seed)
    saved: dict[str, torch.Tensor] = copy.deepcopy(dense.state_dict()) if eps == 0 else {}

    def save(step: int, loss: torch.Tensor) -> None:
        if step == eps:
            saved.update(copy.deepcopy(dense.state_dict()))

    train(dense, data, config.train_config, on_step=save)
    trained = copy.deepcopy(dense.state_dict())
    model = build(config.arch, config.width, seed=config.seed)
    left = config.steps - eps
    sp = sparsify(model, config.density, config.structure,
                  config.sparse_method(trained=trained, rewind=saved),
                  exclude=_exclude(config), total_steps=left)
    base = config.train_config
    retrain = _ResumedSchedule(recipe=base.recipe, lr=base.lr, steps=left,
                               batch_size=base.batch_size, seed=base.seed,
                               schedule=base.schedule, offset=eps, horizon=config.steps)
    return model, train(model, data, retrain, on_optimizer=sp.attach), config.steps + left


def _exclude(config: RunConfig) -> Callable[[str, nn.Module], bool]:
    """The default shape rule, stated explicitly (the bundled models' input layer stays dense
    by design, so sparsify need not warn of it), and for ``layers="hidden"`` also the last
    layer of the default selection (the classifier)."""
    extra: set[str] = set()
    if config.layers != "default":
        with torch.device("meta"):
            full = build(config.arch, config.width)
        extra = {select_layers(full, None, None)[-1][0]}
    return lambda name, module: default_exclude(name, module) or name in extra


def _effective_weights(model: nn.Module) -> int:
    masked = sum(int(m.weight_mask.sum()) - m.weight.numel() for m in model.modules()
                 if isinstance(getattr(m, "weight_mask", None), torch.Tensor))
    return count_weights(model) + masked


@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
