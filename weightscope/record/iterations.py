"""Per-iteration values (distance, flips, explored, loss, lr) buffered on the model's device.

Every optimizer step adds one row; rows go to the writer thread in blocks, copied to pinned
host memory without a device sync on CUDA. A block is handed off when a chunk row of snapshots
went to the writer, when the buffer is full, and at least every ``interval`` seconds; not after
every snapshot (with ``every=1`` that would write tiny blocks at every step).

Examples
--------
>>> import torch
>>> buf = IterationBuffer(torch.device("cpu"), n_params=2, track_distance=True, size=4)
>>> k = buf.add()
>>> buf.distance[k].fill_(1.5)
tensor([1.5000, 1.5000], dtype=torch.float64)
>>> buf.log_loss(0.25)
>>> first, values, _ = buf.take(last_step=1)
>>> first, values["distance"].tolist(), values["loss"].tolist()
(1, [[1.5, 1.5]], [0.25])
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["IterationBuffer"]


class IterationBuffer:
    """Rows of per-iteration values since the last hand-off to the writer.

    Parameters
    ----------
    device : torch.device
        Where distances and losses are accumulated (the model's device).
    n_params : int
        Recorded parameters (columns of ``distance``).
    track_distance : bool
        Whether distances are handed off.
    track_exploration : bool
        Whether ``flips`` and ``explored`` (sparse layers; columns like ``distance``) are
        handed off.
    size : int
        Rows held before a hand-off is due.
    interval : float
        Seconds after a hand-off when the next one is due.
    """

    def __init__(self, device: torch.device, n_params: int, track_distance: bool,
                 size: int = 1024, interval: float = math.inf,
                 track_exploration: bool = False) -> None:
        self.device, self.size, self.track_distance = device, size, track_distance
        self.track_exploration = track_exploration
        self.interval = interval
        self.due = False  # set when a chunk row of snapshots went to the writer
        self._deadline = time.monotonic() + interval
        self.distance = torch.full((size, n_params), float("nan"), dtype=torch.float64,
                                   device=device)
        shape = (size, n_params) if track_exploration else (0, n_params)
        self.flips = torch.full(shape, float("nan"), dtype=torch.float64, device=device)
        self.explored = torch.full(shape, float("nan"), dtype=torch.float64, device=device)
        self.loss = torch.full((size,), float("nan"), dtype=torch.float64, device=device)
        self.lr = np.full(size, np.nan)
        self.n, self.loss_seen = 0, False

    @property
    def handoff_due(self) -> bool:
        """Whether the rows go to the writer before the next one (see the module docstring)."""
        return self.due or self.n == self.size or time.monotonic() >= self._deadline

    def handoff(self, last_step: int) -> tuple[int, dict[str, Any], Any] | None:
        """Restart the hand-off schedule and empty the buffer (:meth:`take`; None if empty)."""
        self.due = False
        self._deadline = time.monotonic() + self.interval
        return self.take(last_step) if self.n else None

    def add(self) -> int:
        """Reserve the row of a new optimizer step; returns its index."""
        self.n += 1
        return self.n - 1

    def log_loss(self, loss: float | torch.Tensor) -> None:
        """Set the loss of the latest row (a tensor stays on its device: no sync)."""
        if self.n == 0:
            raise ConfigError(
                "log(loss=...) attaches a loss to the last optimizer step, but no step has been "
                "recorded since the Recorder started or since checkpoint(); call it after "
                "optimizer.step() and before checkpoint()."
            )
        target = self.loss[self.n - 1]
        if isinstance(loss, torch.Tensor):
            value = loss.detach().reshape(-1)
            if value.numel() != 1:
                raise ConfigError(f"loss must be a scalar; got a tensor of shape "
                                  f"{tuple(loss.shape)}. Pass loss.mean() or loss.item().")
            target.copy_(value[0])
        else:
            target.fill_(float(loss))
        self.loss_seen = True

    def take(self, last_step: int) -> tuple[int, dict[str, Any], Any]:
        """Empty the buffer: ``(first iteration, values, cuda event or None)``.

        ``values`` holds ``iterations`` and ``lr`` (numpy), and ``distance`` / ``flips`` /
        ``explored`` / ``loss`` as host tensors (filled asynchronously on CUDA until the event
        completes).
        """
        k = self.n
        first = last_step - k + 1
        values: dict[str, Any] = {"iterations": np.arange(first, last_step + 1, dtype=np.int64),
                                  "lr": self.lr[:k].copy()}
        if self.track_distance:
            values["distance"] = _to_host(self.distance[:k])
        if self.track_exploration:
            values["flips"] = _to_host(self.flips[:k])
            values["explored"] = _to_host(self.explored[:k])
        if self.loss_seen:
            values["loss"] = _to_host(self.loss[:k])
        event = None
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        self.loss.fill_(float("nan"))
        self.lr[:] = np.nan
        self.n = 0
        return first, values, event


def _to_host(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "cpu":
        return t.clone()
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    return host.copy_(t, non_blocking=True)
