"""Real recorded runs for analyzer tests (small, deterministic)."""

from __future__ import annotations

from pathlib import Path

import torch
from testutil import tiny_model, train

import weightscope as ws


def record_tiny(path: Path, steps: int = 240, every: int = 3, seed: int = 0, lr: float = 0.05,
                **kwargs: object) -> Path:
    """Record :func:`testutil.tiny_model` trained for ``steps`` steps."""
    model = tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-3)
    with ws.Recorder(path, model, every=every, **kwargs) as rec:
        train(model, steps, seed, optimizer=opt,
              after_step=lambda s, loss, o: rec.step(loss=loss))
    return path
