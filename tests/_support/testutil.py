"""Shared helpers of the test suite: a small deterministic training loop and its oracle."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

AfterStep = Callable[[int, torch.Tensor, torch.optim.Optimizer], None]


def tiny_model(seed: int = 0) -> nn.Module:
    """Linear + Conv1d + Linear model (three recorded weights of different sizes)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (2, 8)),
        nn.Conv1d(2, 4, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32, 24),
        nn.ReLU(),
        nn.Linear(24, 3),
    )


def batch(step: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The mini-batch of optimizer step ``step`` (random access, so training can resume)."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return torch.randn(8, 16, generator=gen), torch.randint(0, 3, (8,), generator=gen)


def sgd(model: nn.Module, lr: float = 0.05) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train(model: nn.Module, steps: int, seed: int = 0, *, start: int = 0,
          after_step: AfterStep | None = None,
          optimizer: torch.optim.Optimizer | None = None) -> torch.optim.Optimizer:
    """Train deterministically from step ``start`` to ``steps``; ``after_step(s, loss, opt)``."""
    opt = optimizer or sgd(model)
    for s in range(start + 1, steps + 1):
        x, y = batch(s, seed)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step(s, loss, opt)
    return opt


def weight_history(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Oracle: every conv/linear weight of :func:`tiny_model` after every step (0..steps)."""
    model = tiny_model(seed)
    names = [n for n, _ in model.named_parameters() if n.endswith("weight")]
    hist: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def grab(*_: object) -> None:
        params = dict(model.named_parameters())
        for n in names:
            hist[n].append(params[n].detach().numpy().reshape(-1).copy())

    grab()
    train(model, steps, seed, after_step=grab)
    return {n: np.stack(v) for n, v in hist.items()}


def worker_env(**extra: str) -> dict[str, str]:
    """Environment of a test's worker subprocess: this one, with tests/_support importable and
    torch's thread count pinned to this process's (a worker replaying training with another
    count would differ in the last bits; dask.distributed leaves OMP_NUM_THREADS=1 behind)."""
    threads = str(torch.get_num_threads())
    return {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "PYTHONPATH": str(Path(__file__).parent), **extra}
