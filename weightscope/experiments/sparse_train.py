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

Every optimizer step of a sparse run (SEARCH, STATIC, SET, RIGL, and LOTTERY's sparse
retraining; its dense first phase has no mask) also counts the exploration of the sparsified
layers with :class:`~weightscope.record.exploration.ExplorationTracker`, read-only (the error is
the same as without it): :attr:`RunResult.explored_fraction` and :attr:`RunResult.flip_rate`.
REGULAR and REDUCE train dense models without masks: both are NaN (REDUCE's narrow model has
no mask; all its weights take part at every step).

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
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from weightscope.record.exploration import ExplorationTracker, count_true
from weightscope.sparse import Sparsifier, default_exclude, reduce_width, select_layers, sparsify

from .models import count_weights
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
    explored_fraction : float
        Elements of the sparsified layers whose mask was 1 at any step of (sparse) training,
        over their number, at the end (the ever-participated fraction, ITOP's R_s); NaN for
        REGULAR and REDUCE (no masks).
    flip_rate : float
        Mean over the optimizer steps of (mask elements that changed at the step, summed over
        the sparsified layers) / (participating elements after the step); NaN without masks.
    """

    test_error: float
    train_loss: float
    n_weights: int
    steps: int
    wall_s: float
    cpu_s: float
    explored_fraction: float = math.nan
    flip_rate: float = math.nan

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
    data = config.load_data()
    with _deterministic(threads):
        wall, cpu = time.perf_counter(), time.process_time()
        if config.method == "lottery":
            model, result, steps, explored = _lottery(config, data)
        else:
            model, result, steps, explored = _plain(config, data)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fraction, rate = (math.nan, math.nan) if explored is None else explored.summary()
    return RunResult(test_error=float(result.test_error), train_loss=float(result.train_loss),
                     n_weights=_effective_weights(model), steps=steps, wall_s=wall, cpu_s=cpu,
                     explored_fraction=fraction, flip_rate=rate)


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
        return config.build(seed=config.seed)

    def narrower(mult: float) -> nn.Module:
        return config.build(max(1, round(config.width * mult)), seed=config.seed)

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
        sizes = [m.weight.numel() for _, m in select_layers(config.build(),
                                                             None, None)]
    return (config.density * sum(sizes[:-1]) + sizes[-1]) / sum(sizes)


class _Exploration:
    """The sparsifier's steps, then the exploration counts, after every optimizer step."""

    def __init__(self, sp: Sparsifier) -> None:
        self.sp = sp
        self.tracker = ExplorationTracker(list(sp.masks().values()))
        self.rate_sum, self.steps = 0.0, 0

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        self.sp.attach(optimizer)  # hooks run in the order registered: the sparsifier first
        optimizer.register_step_post_hook(lambda *_: self.step())

    def step(self) -> None:
        masks = list(self.sp.masks().values())
        self.tracker.update(masks)
        flips = self.tracker.totals()[0]
        self.rate_sum += flips / max(1, sum(int(count_true(m)) for m in masks))
        self.steps += 1

    def summary(self) -> tuple[float, float]:
        """``(explored fraction, mean flip rate)``; the rate is NaN before any step."""
        _, explored, numel = self.tracker.totals()
        return explored / numel, self.rate_sum / self.steps if self.steps else math.nan


RunOutput = tuple[nn.Module, TrainResult, int, "_Exploration | None"]


def _plain(config: RunConfig, data: Any) -> RunOutput:
    model = build_model(config)
    if not config.sparse:
        return model, train(model, data, config.train_config), config.steps, None
    sp = sparsify(model, config.density, config.structure, config.sparse_method(),
                  exclude=_exclude(config), total_steps=config.steps)
    explored = _Exploration(sp)
    result = train(model, data, config.train_config, on_optimizer=explored.attach)
    return model, result, config.steps, explored


def _lottery(config: RunConfig, data: Any) -> RunOutput:
    eps = config.rewind_step
    dense = config.build(seed=config.seed)
    saved: dict[str, torch.Tensor] = copy.deepcopy(dense.state_dict()) if eps == 0 else {}

    def save(step: int, loss: torch.Tensor) -> None:
        if step == eps:
            saved.update(copy.deepcopy(dense.state_dict()))

    train(dense, data, config.train_config, on_step=save)
    trained = copy.deepcopy(dense.state_dict())
    model = config.build(seed=config.seed)
    left = config.steps - eps
    sp = sparsify(model, config.density, config.structure,
                  config.sparse_method(trained=trained, rewind=saved),
                  exclude=_exclude(config), total_steps=left)
    base = config.train_config
    retrain = _ResumedSchedule(recipe=base.recipe, lr=base.lr, steps=left,
                               batch_size=base.batch_size, seed=base.seed,
                               schedule=base.schedule, offset=eps, horizon=config.steps)
    explored = _Exploration(sp)
    result = train(model, data, retrain, on_optimizer=explored.attach)
    return model, result, config.steps + left, explored


def _exclude(config: RunConfig) -> Callable[[str, nn.Module], bool]:
    """The default shape rule, stated explicitly (the bundled models' input layer stays dense
    by design, so sparsify need not warn of it), and for ``layers="hidden"`` also the last
    layer of the default selection (the classifier)."""
    extra: set[str] = set()
    if config.layers != "default":
        with torch.device("meta"):
            full = config.build()
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
