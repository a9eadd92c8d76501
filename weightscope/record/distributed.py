"""Distributed recording: which rank records, and models sharded with FSDP2.

Under data parallelism (DDP) every rank holds the same weights, so only rank 0 records and the
Recorders of the other ranks are inert (:func:`resolve_rank`). The parameters of a model
sharded with FSDP2 (``torch.distributed.fsdp.fully_shard``) are ``DTensor`` s: each rank holds
a slice. Every rank then runs the Recorder in lockstep (the same steps, snapshots and
checkpoints), because gathering is collective: at each snapshot every rank calls
``DTensor.full_tensor()`` one parameter at a time and rank 0 copies the recorded elements into
its host row; at every step each rank measures ``sum |w(s) - w(s-1)|`` over its own slice and
one ``all_reduce`` adds the slices up. Only rank 0 writes the store; the other ranks use a
:class:`PeerPipeline` that stores nothing.

A true multi-writer (each rank writing its slice straight into the store) is not done here;
see :func:`is_sharded`'s notes.

Examples
--------
>>> import torch
>>> from weightscope.record.selection import select_params
>>> is_sharded(select_params(torch.nn.Linear(2, 2)))
False
>>> resolve_rank(None)  # no process group: this process records
0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .. import errors
from ..errors import ConfigError, WeightscopeError, WriterError
from .capture import Capture, DistanceTracker, gather_into
from .protocols import RowViews, Sources
from .resume import ResumePoint
from .selection import Selected

__all__ = ["PeerPipeline", "ShardedCapture", "ShardedDistance", "is_sharded", "local",
           "open_in_lockstep", "resolve_rank"]

Opened = tuple[Any, ResumePoint, int]  # writer (None off rank 0), point, nonfinite


def resolve_rank(rank: int | None) -> int:
    """The ``rank=`` of a Recorder: the ``torch.distributed`` rank when ``None``."""
    if rank is None:
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ConfigError(f"rank must be None (auto-detect) or an int >= 0; got {rank!r}. "
                          "Pass the process's global rank, e.g. rank=0.")
    return int(rank)


def _dtensor_type() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return None
    return DTensor


def is_sharded(selected: Sequence[Selected]) -> bool:
    """Whether any selected parameter is a ``DTensor`` (a model sharded with FSDP2).

    Notes
    -----
    Rank 0 gathers the full parameters at snapshot steps, so its snapshot rows (and one
    full parameter at a time on every rank) must fit in memory. A multi-writer would instead
    let each rank write its own slice: it needs ``weight`` chunks aligned with the shard
    boundaries (FSDP2 shards dim 0, so a parameter's slice is a contiguous flat range, but
    packed small parameters and sampled elements break the alignment), one writer thread per
    rank writing disjoint chunks of ``w`` for the same rows, and a collective commit so rank 0
    publishes ``valid_steps`` only after every rank's chunks of those rows are stored.
    """
    dtensor = _dtensor_type()
    return dtensor is not None and any(isinstance(s.tensor, dtensor) for s in selected)


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's slice of a ``DTensor`` (the tensor itself otherwise), detached."""
    dtensor = _dtensor_type()
    t = t.detach()
    return t.to_local() if dtensor is not None and isinstance(t, dtensor) else t


def _full(t: torch.Tensor) -> torch.Tensor:
    dtensor = _dtensor_type()
    t = t.detach()
    return t.full_tensor() if dtensor is not None and isinstance(t, dtensor) else t


class ShardedCapture(Capture):
    """:class:`Capture` for DTensor parameters: each row is gathered (collective, all ranks)."""

    def __init__(self, selected: Sequence[Selected], layout: Any) -> None:
        super().__init__(selected, layout)
        if self.has_mask:
            raise ConfigError(
                "recording a sharded (FSDP2) model with sparse masks is not supported; record "
                "it unsharded, or pass params=... without the masked layers."
            )

    def sources(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The DTensor parameters (not flattened: that would gather them); checks shapes."""
        tensors = [s.tensor for s in self.selected]
        self._check(tensors)
        return [(t, None) for t in tensors]

    @torch.no_grad()
    def copy_into(self, w_parts: Sequence[torch.Tensor],
                  m_parts: Sequence[torch.Tensor] | None = None, sources: Any = None) -> None:
        """Gather every parameter in turn and copy its recorded elements into ``w_parts``."""
        for sel, index, dst in zip(self.selected, self.index, w_parts):
            gather_into(_full(sel.tensor).reshape(-1), index, dst, self.non_blocking)


class ShardedDistance:
    """The distance of a sharded model: a :class:`DistanceTracker` over this rank's slice of
    every parameter, whose per-parameter sums one ``all_reduce`` adds up over the ranks."""

    def __init__(self, selected: Sequence[Selected]) -> None:
        self.selected = list(selected)
        self._local = DistanceTracker(self.selected, read=_local_slice)

    def update(self, out: torch.Tensor, sources: Sources | None = None) -> None:
        """Write this step's distance per parameter (summed over all ranks) into ``out``.

        ``sources`` (the DTensors themselves) are not used: each rank reads its own slice.
        """
        self._local.update(out, [(_local_slice(s).reshape(-1), None) for s in self.selected])
        dist.all_reduce(out)


def _local_slice(sel: Selected) -> torch.Tensor:
    return local(sel.tensor)


class PeerPipeline:
    """The Pipeline of a rank other than 0 in a sharded run: rows are filled, nothing stored."""

    def __init__(self, parts: Sequence[int], has_mask: bool) -> None:
        parts = list(parts)
        self._w = torch.empty(sum(parts), dtype=torch.float32).split(parts)
        self._mask = torch.empty(sum(parts), dtype=torch.bool).split(parts) if has_mask else None

    def check(self) -> None:
        """Nothing can fail here (rank 0 owns the writer)."""

    def next_row(self) -> RowViews:
        """A scratch row (per-parameter views): the gathered values are dropped."""
        return self._w, self._mask

    def row_done(self, step: int, event: Any = None) -> bool:
        """Drop the row."""
        return False

    def push_iterations(self, row: int, values: dict[str, np.ndarray], event: Any = None) -> None:
        """Drop the values."""

    def flush(self) -> None:
        """Nothing to store."""

    def close(self, total_steps: int | None, attrs: dict[str, Any] | None = None) -> None:
        """Nothing to store."""


def open_in_lockstep(active: bool, capture: Capture, n_weights: int,
                     opener: Callable[[torch.Tensor], Opened]) -> Opened:
    """Open the run on rank 0 and tell every rank where it starts (or why it failed).

    Every rank first gathers the current weights (collective); rank 0 then creates or reopens
    the store with them (``opener``, which checks resumed weights), and broadcasts the resume
    point, or its error, which every rank raises, so that no rank waits forever in a collective.
    """
    current = torch.empty(n_weights, dtype=torch.float32)
    capture.copy_into(capture.split(current))
    opened, error = None, None
    if active:
        try:
            opened = opener(current)
        except Exception as err:
            error = err
    info: list[Any] = [None]
    if active:
        info = [(None, (opened[1].step, opened[1].row, opened[2])) if error is None
                else ((type(error).__name__, str(error)), None)]
    dist.broadcast_object_list(info, src=0)
    failure, start = info[0]
    if error is not None:
        raise error
    if failure is not None:
        raise _peer_error(*failure)
    if active:
        return opened  # type: ignore[return-value]
    step, row, nonfinite = start
    return None, ResumePoint(step=step, row=row), nonfinite


def _peer_error(name: str, message: str) -> Exception:
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, WeightscopeError):
        return cls(f"rank 0: {message}")
    return WriterError(f"rank 0 could not open the run: {name}: {message}")
