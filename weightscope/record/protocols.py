"""The three parts a :class:`~weightscope.Recorder` drives, as protocols.

Each has one implementation for a model held whole by this process and one for a model sharded
with FSDP2 (:mod:`weightscope.record.distributed`); the Recorder only calls what is declared
here, and ``tests/record/test_record_protocols.py`` runs one contract test per protocol on
both implementations.

* :class:`SnapshotSource`: :class:`~.capture.Capture`, :class:`~.distributed.ShardedCapture`;
* :class:`DistanceMeter`: :class:`~.capture.DistanceTracker`,
  :class:`~.distributed.ShardedDistance`;
* :class:`SnapshotSink`: :class:`~.pipeline.Pipeline`, :class:`~.distributed.PeerPipeline`.

Examples
--------
>>> import torch
>>> from weightscope.record.capture import DistanceTracker
>>> from weightscope.record.selection import select_params
>>> isinstance(DistanceTracker(select_params(torch.nn.Linear(2, 2))), DistanceMeter)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["DistanceMeter", "RowViews", "SnapshotSink", "SnapshotSource", "Sources"]

#: Per parameter, what a snapshot copies from: ``(weights, mask or None)``.
Sources = Sequence[tuple[torch.Tensor, torch.Tensor | None]]

#: A snapshot row to fill: per-parameter views of its weights, and of its mask (or None).
RowViews = tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]


@runtime_checkable
class SnapshotSource(Protocol):
    """Copies the recorded elements of the selected parameters into host rows."""

    #: Recorded elements of each parameter, in store order.
    sizes: list[int]
    #: Where the parameters live (the Recorder's per-step buffers go there too).
    device: torch.device
    #: Whether snapshots carry a sparse mask.
    has_mask: bool

    def sources(self) -> Sources:
        """What the parameters are now (checks their shapes: :class:`ShapeChangedError`)."""
        ...

    def copy_into(self, w_parts: Sequence[torch.Tensor],
                  m_parts: Sequence[torch.Tensor] | None = None,
                  sources: Sources | None = None) -> None:
        """Copy the recorded weights (and masks) into per-parameter host views."""
        ...

    def split(self, row: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-parameter views of a snapshot row."""
        ...


@runtime_checkable
class DistanceMeter(Protocol):
    """Measures ``sum |w(s) - w(s-1)|`` per parameter at every optimizer step."""

    def update(self, out: torch.Tensor, sources: Sources | None = None) -> None:
        """Write this step's distance per parameter into ``out`` (float64, one per parameter).

        ``sources`` is what :meth:`SnapshotSource.sources` returned for this step; an
        implementation may look the parameters up itself instead.
        """
        ...


@runtime_checkable
class SnapshotSink(Protocol):
    """Takes filled snapshot rows and per-iteration values, and stores (or drops) them."""

    def check(self) -> None:
        """Raise :class:`~weightscope.errors.WriterError` if storing failed."""
        ...

    def next_row(self) -> RowViews:
        """The row to fill with the next snapshot (may wait for buffer space)."""
        ...

    def row_done(self, step: int, event: Any = None) -> bool:
        """The row of :meth:`next_row` holds the snapshot of ``step``; whether a chunk row of
        snapshots is now complete (the per-iteration values should follow it)."""
        ...

    def push_iterations(self, row: int, values: dict[str, np.ndarray], event: Any = None) -> None:
        """Per-iteration values (``iterations``, ``distance``, ``loss``, ``lr``) from ``row``."""
        ...

    def flush(self) -> None:
        """Store what was given so far and wait until it is committed."""
        ...

    def close(self, total_steps: int | None, attrs: dict[str, Any] | None = None) -> None:
        """Store everything; mark the run complete unless ``total_steps`` is None."""
        ...
