"""Helpers of the sparse-training tests: tiny models, a fake optimizer step, oracles."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def mlp(seed: int = 0, widths: tuple[int, ...] = (16, 32, 16)) -> nn.Sequential:
    """A tiny ReLU MLP whose every input dimension is a multiple of 16."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(a, b))
    return nn.Sequential(*layers)


def fake_step(module: nn.Module, delta: torch.Tensor) -> None:
    """Stand-in for optimizer.step(): add ``delta`` to the weight in place."""
    with torch.no_grad():
        module.weight.add_(delta)


def set_weight(module: nn.Module, value: torch.Tensor) -> None:
    """Stand-in for optimizer.step() that sets the weight to ``value``."""
    with torch.no_grad():
        module.weight.copy_(value)


def ref_topk(w: torch.Tensor, density: float) -> torch.Tensor:
    """Slow oracle of unstructured masks: sort |w| in Python, keep max(1, round(d * n))."""
    flat = w.detach().reshape(-1).tolist()
    k = max(1, round(density * len(flat)))
    keep = sorted(range(len(flat)), key=lambda i: -abs(flat[i]))[:k]
    mask = [False] * len(flat)
    for i in keep:
        mask[i] = True
    return torch.tensor(mask).view(w.shape)
