"""A minimal, deterministic training loop for the bundled MNIST-1D task.

:func:`train` runs ``config.steps`` optimizer steps of cross-entropy on mini-batches drawn
without replacement (one permutation per epoch, last partial batch dropped) from a
``torch.Generator`` seeded with ``config.seed``; the model's own initialization is seeded by the
builders in :mod:`weightscope.experiments.models`. On CPU the same model seed and config give
bit-identical weights. The global torch RNG and global determinism flags are never touched.

Hooks: ``on_optimizer(optimizer)`` is called once, after the optimizer is built and before the
first step (``rec.attach`` of a Recorder or ``sp.attach`` of a sparsifier fit there), and
``on_step(step, loss)`` right after every optimizer step (``step`` counts from 1, ``loss`` is the
detached batch loss tensor of that step).

Examples
--------
>>> from weightscope.experiments.data import load_mnist1d
>>> from weightscope.experiments.models import mlp
>>> from weightscope.experiments.train import TrainConfig, train
>>> result = train(mlp(width=32, seed=0), load_mnist1d(), TrainConfig(steps=50))
>>> result.steps, result.test_error < 0.9
(50, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from weightscope._validate import check_int, check_real
from weightscope.errors import ConfigError, hint

from .data import MNIST1D

__all__ = ["PRESETS", "RECIPES", "SCHEDULES", "STEP_MILESTONES", "WARMUP_FRACTION",
           "TrainConfig", "TrainResult", "evaluate", "make_optimizer", "train"]

#: Optimizer recipes.
RECIPES = ("adamw", "sgd")
#: Learning-rate schedules (:meth:`TrainConfig.lr_at`): constant; cosine decay from ``lr``
#: towards 0 over ``steps``; the paper's image-classification step decay (appendix C: linear
#: warm-up for 5 of 90 epochs, x0.1 at epochs 30, 60 and 80).
SCHEDULES = ("constant", "cosine", "step")
#: The ``step`` schedule's warm-up, as a fraction of ``steps`` (the paper's 5 of 90 epochs).
WARMUP_FRACTION = (5, 90)
#: The ``step`` schedule's milestones as fractions of ``steps`` (epochs 30, 60, 80 of 90); the
#: learning rate is multiplied by 0.1 at each.
STEP_MILESTONES = ((1, 3), (2, 3), (8, 9))
#: Defaults of each recipe for the fields left as ``None``.
PRESETS = {
    "adamw": {"lr": 1e-3, "weight_decay": 0.05},  # decoupled weight decay
    "sgd": {"lr": 0.1, "weight_decay": 5e-4},  # L2 weight decay, momentum 0.9
}

StepHook = Callable[[int, torch.Tensor], object]
OptimizerHook = Callable[[torch.optim.Optimizer], object]


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe and loop settings, validated at construction.

    ``lr`` and ``weight_decay`` left as ``None`` take the recipe's preset (:data:`PRESETS`):
    AdamW lr 1e-3 with decoupled weight decay 0.05; SGD lr 0.1, momentum 0.9, weight decay 5e-4.

    Attributes
    ----------
    recipe : {"adamw", "sgd"}
    lr, weight_decay : float, optional
        Peak learning rate and weight decay (applied to every parameter).
    momentum : float, default 0.9
        SGD momentum, or AdamW's beta1 (beta2 is 0.999).
    steps, batch_size, seed : int
        Optimizer steps, samples per step, seed of the batch order.
    schedule : {"constant", "cosine", "step"}
        Learning-rate schedule (:meth:`lr_at`): cosine uses
        ``lr * (1 + cos(pi * (s - 1) / steps)) / 2`` at step s; step is the paper's
        image-classification schedule (linear warm-up over :attr:`warmup_steps`, then x0.1 at
        1/3, 2/3 and 8/9 of ``steps``).
    eval_every : int, default 0
        Also measure test error every this many steps (0: only at the end).

    Examples
    --------
    >>> from weightscope.experiments.train import TrainConfig
    >>> TrainConfig(recipe="sgd").lr
    0.1
    """

    recipe: str = "adamw"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    steps: int = 6000
    batch_size: int = 128
    seed: int = 0
    schedule: str = "constant"
    eval_every: int = 0

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(f"recipe must be one of {RECIPES}; got {self.recipe!r}. "
                              "Pass recipe='adamw' or recipe='sgd'.")
        for name, value in PRESETS[self.recipe].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        _check_float("lr", self.lr, low=0.0, low_open=True)
        _check_float("weight_decay", self.weight_decay, low=0.0)
        _check_float("momentum", self.momentum, low=0.0, high=1.0)
        for name in ("steps", "batch_size"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("seed", "eval_every"):
            _check_int(name, getattr(self, name), low=0)
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}. "
                              f"Pass e.g. {hint('schedule', 'cosine')}.")

    @property
    def warmup_steps(self) -> int:
        """Linear warm-up length of the ``step`` schedule: ``steps * 5 / 90`` rounded half up,
        at least 1 (the paper's 5 warm-up epochs of 90; 111 of 2000 steps).

        Examples
        --------
        >>> from weightscope.experiments.train import TrainConfig
        >>> TrainConfig(steps=2000).warmup_steps, TrainConfig(steps=8).warmup_steps
        (111, 1)
        """
        num, den = WARMUP_FRACTION
        return max(1, (2 * self.steps * num + den) // (2 * den))

    def lr_at(self, step: int) -> float:
        """Learning rate used by optimizer step ``step`` (1-based).

        Examples
        --------
        >>> from weightscope.experiments.train import TrainConfig
        >>> TrainConfig(steps=4, schedule="cosine").lr_at(3)
        0.0005
        >>> cfg = TrainConfig(steps=90, schedule="step", lr=0.1)
        >>> [round(cfg.lr_at(s), 6) for s in (1, 5, 30, 31, 61, 81, 90)]
        [0.02, 0.1, 0.1, 0.01, 0.001, 0.0001, 0.0001]
        """
        if self.schedule == "constant":
            return float(self.lr)
        if self.schedule == "cosine":
            return 0.5 * float(self.lr) * (1.0 + math.cos(math.pi * (step - 1) / self.steps))
        # step: milestone k/n is passed once (step - 1) / steps >= k/n (exact in integers)
        drops = sum(n * (step - 1) >= k * self.steps for k, n in STEP_MILESTONES)
        warmup = min(1.0, step / self.warmup_steps)
        return float(self.lr) * warmup * 0.1**drops


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` measured.

    Attributes
    ----------
    test_error : float
        Fraction of misclassified test samples after training.
    train_loss : float
        Mean cross-entropy over the whole train split after training.
    steps : int
        Optimizer steps taken.
    wall_time : float
        Seconds spent in the training loop (hooks included, final evaluation excluded).
    evals : tuple of (int, float)
        ``(step, test_error)`` every ``eval_every`` steps (empty when ``eval_every`` is 0).
    """

    test_error: float
    train_loss: float
    steps: int
    wall_time: float
    evals: tuple[tuple[int, float], ...] = field(default=())


def make_optimizer(params: object, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``config.recipe`` over ``params``.

    Examples
    --------
    >>> from torch import nn
    >>> from weightscope.experiments.train import TrainConfig, make_optimizer
    >>> type(make_optimizer(nn.Linear(2, 2).parameters(), TrainConfig(recipe="sgd"))).__name__
    'SGD'
    """
    if config.recipe == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, foreach=True)
    return torch.optim.AdamW(params, lr=config.lr, betas=(config.momentum, 0.999),
                             weight_decay=config.weight_decay, foreach=True)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` on ``(x, y)`` (in eval mode).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightscope.experiments.train import evaluate
    >>> evaluate(nn.Linear(3, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))[1] <= 1
    True
    """
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        error = (logits.argmax(1) != y).float().mean().item()
    finally:
        model.train(was_training)
    return loss, error


def train(
    model: nn.Module,
    data: MNIST1D,
    config: TrainConfig,
    on_step: StepHook | None = None,
    on_optimizer: OptimizerHook | None = None,
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Train ``model`` in place on ``data`` with ``config``; see the module docstring for hooks.

    Raises
    ------
    ConfigError
        If ``config.batch_size`` exceeds the train split.

    Examples
    --------
    >>> from weightscope.experiments.data import load_mnist1d
    >>> from weightscope.experiments.models import mlp
    >>> from weightscope.experiments.train import TrainConfig, train
    >>> seen = []
    >>> _ = train(mlp(width=8, seed=0), load_mnist1d(), TrainConfig(steps=3),
    ...           on_step=lambda step, loss: seen.append(step))
    >>> seen
    [1, 2, 3]
    """
    n_train = data.x_train.shape[0]
    if config.batch_size > n_train:
        raise ConfigError(f"batch_size must be <= the {n_train} train samples; got "
                          f"{config.batch_size}. Pass a smaller batch_size.")
    device = torch.device(device)
    model.to(device).train()
    optimizer = make_optimizer(model.parameters(), config)
    if on_optimizer is not None:
        on_optimizer(optimizer)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    evals: list[tuple[int, float]] = []
    start = time.perf_counter()
    for step, (xb, yb) in enumerate(_batches(data, config, device), start=1):
        if config.schedule != "constant":
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, loss.detach())
        if config.eval_every and step % config.eval_every == 0:
            evals.append((step, evaluate(model, x_test, y_test)[1]))
    wall_time = time.perf_counter() - start
    train_loss = evaluate(model, data.x_train.to(device), data.y_train.to(device))[0]
    return TrainResult(test_error=evaluate(model, x_test, y_test)[1], train_loss=train_loss,
                       steps=config.steps, wall_time=wall_time, evals=tuple(evals))


def _batches(
    data: MNIST1D, config: TrainConfig, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``config.steps`` batches: one seeded permutation per epoch, gathered once per epoch."""
    generator = torch.Generator().manual_seed(config.seed)
    x, y = data.x_train.to(device), data.y_train.to(device)
    per_epoch = x.shape[0] // config.batch_size
    used = per_epoch * config.batch_size
    left = config.steps
    while left > 0:
        order = torch.randperm(x.shape[0], generator=generator)[:used].to(device)
        xs = x[order].view(per_epoch, config.batch_size, *x.shape[1:])
        ys = y[order].view(per_epoch, config.batch_size, *y.shape[1:])
        for i in range(min(per_epoch, left)):
            yield xs[i], ys[i]
        left -= per_epoch


def _check_float(name: str, value: object, low: float, high: float | None = None,
                 low_open: bool = False) -> None:
    bounds = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high})"
    check_real(value, f"{name} must be a finite number in {bounds}", low=low,
               high=math.inf if high is None else high, low_open=low_open, high_open=True,
               fix=f"Pass e.g. {hint(name, PRESETS['adamw'].get(name, 0.9))}.")


def _check_int(name: str, value: object, low: int) -> None:
    check_int(value, f"{name} must be an int >= {low}", minimum=low,
              fix=f"Pass e.g. {hint(name, max(low, 1))}.")
