"""The Recorder: stream weight snapshots of a training run into a zarr run store.

Examples
--------
>>> import os, tempfile, torch
>>> from torch import nn
>>> import weightscope as ws
>>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> with ws.Recorder(path, model, every=2) as rec:
...     _ = rec.attach(opt)
...     for _ in range(5):
...         opt.zero_grad()
...         model(torch.randn(4, 8)).pow(2).mean().backward()
...         opt.step()
>>> ds = ws.open_run(path)
>>> ds.step.values.tolist(), bool(ds.attrs["complete"])
([0, 2, 4, 5], True)
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

import torch
from torch import nn

from .. import schema
from ..config import RecorderConfig, Sample
from ..errors import ConfigError
from ..store import RunWriter, paths
from .capture import Capture, DistanceTracker
from .distributed import (
    PeerPipeline,
    ShardedCapture,
    ShardedDistance,
    is_sharded,
    open_in_lockstep,
    resolve_rank,
)
from .exit import register_exit
from .exploration import ExplorationTracker
from .iterations import IterationBuffer
from .misuse import check_still_dense, dense_params, double_step_error
from .opening import open_writer, run_attrs
from .pipeline import Pipeline
from .protocols import DistanceMeter, SnapshotSink, SnapshotSource
from .resume import ResumePoint
from .selection import ParamSpec, aliases_of, layout_of, plan_params, select_params

__all__ = ["Recorder"]

_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Record weight snapshots, exact search distance, loss and lr of a training run.

    Snapshots are taken at step 0 (construction), every ``every`` optimizer steps, at
    :meth:`checkpoint` and at :meth:`close`. A background thread compresses and writes them;
    the training thread only copies the recorded elements into a bounded host buffer.

    A model with sparse masks (``<attr>_mask`` buffers, :func:`~weightscope.sparse.sparsify`)
    also gets the exact exploration of every masked parameter at every optimizer step,
    ``flips`` and ``explored`` (:data:`~weightscope.schema.FLIPS`,
    :data:`~weightscope.schema.EXPLORED`; counted from the masks at construction by
    :class:`~weightscope.record.exploration.ExplorationTracker`). Attach the Recorder after
    the sparsifier (or call :meth:`step` after ``optimizer.step()``) so that a step's counts
    see that step's rewiring. On resume the ever-participated set restarts from the mask at
    the resume step (``flips`` stays exact).

    Parameters
    ----------
    path : str or os.PathLike
        Where the run goes: a directory (``run.zarr``) or an fsspec URL.
    model : torch.nn.Module
        The model being trained.
    params : None, names, globs, or callable, optional
        Which parameters: ``None`` = the weight of every linear-like layer (Linear,
        Conv1d/2d/3d, Hugging Face Conv1D, :func:`~weightscope.kinds.register_layer` types);
        parameter names or globs; or a predicate ``f(name, module) -> bool``. A parameter
        shared under several names is recorded once (attribute ``aliases`` of the run).
        ``plan`` says what was chosen and why (see :func:`~weightscope.record.selection.
        plan_params`, which warns when the default holds < 50 % of the model's parameters).
    every, sample, track_distance, overwrite, resume, flush_seconds, buffer_mb, compression
        How to record (snapshot interval, recorded elements, distance, an existing run at
        ``path``, buffering, codec): see :class:`~weightscope.config.RecorderConfig`, which
        documents and checks them; the Recorder keeps them as ``config``.
    exclude : None, names, globs, or callable, optional
        Parameters to leave out of the ``params`` selection.
    storage_options : dict, optional
        fsspec options for URLs.
    rank : int, optional
        This process's rank in distributed training; only rank 0 records. Default: the
        ``torch.distributed`` rank when a process group is initialized, else 0. On another
        rank the Recorder is inert: it never touches ``path`` and its methods return at once
        (``step_count`` still counts steps, also through :meth:`attach`). Pass ``rank=0`` on
        every process to record one run per process (each with its own ``path``). A model
        sharded with FSDP2 (DTensor parameters) is recorded by all ranks in lockstep: each
        gathers the full parameters at snapshots (see :mod:`weightscope.record.distributed`),
        and rank 0 writes.

    Raises
    ------
    RunExistsError
        ``path`` exists and neither ``overwrite`` nor ``resume`` is set.
    ConfigError
        An argument is out of range (:class:`~weightscope.config.RecorderConfig` checks the
        settings), or ``params`` matches nothing.
    """

    def __init__(self, path: paths.PathLike, model: nn.Module,
                 every: int = RecorderConfig.every, params: ParamSpec = None,
                 sample: Sample = RecorderConfig.sample,
                 track_distance: bool = RecorderConfig.track_distance,
                 overwrite: bool = RecorderConfig.overwrite,
                 resume: bool | int = RecorderConfig.resume,
                 flush_seconds: float = RecorderConfig.flush_seconds, *,
                 buffer_mb: float = RecorderConfig.buffer_mb,
                 compression: str = RecorderConfig.compression, exclude: ParamSpec = None,
                 storage_options: dict[str, Any] | None = None, rank: int | None = None) -> None:
        self.config = RecorderConfig(
            every=every, sample=sample, track_distance=track_distance, overwrite=overwrite,
            resume=resume, flush_seconds=flush_seconds, buffer_mb=buffer_mb,
            compression=compression)
        self.path, self.rank = path, resolve_rank(rank)
        self._selected = select_params(model, params, exclude)  # same errors on every rank
        self.plan = plan_params(model, params, exclude)
        self._closed, self._hook = False, None
        self._watched = dense_params(self._selected)  # checked at the first step, then None
        self._step = 0 if isinstance(self.config.resume, bool) else self.config.resume
        sharded = is_sharded(self._selected)  # FSDP2: every rank gathers, rank 0 writes
        self._inert = not self.active and not sharded
        if self._inert:  # no store, no thread, no copies
            return
        self.layout = layout_of(self._selected, self.config.sample)
        capture_cls, distance_cls = ((ShardedCapture, ShardedDistance) if sharded
                                     else (Capture, DistanceTracker))
        self._capture: SnapshotSource = capture_cls(self._selected, self.layout)
        opener = functools.partial(open_writer, path, self.layout, self.config,
                                   {**run_attrs(self.config, model),
                                    schema.ALIASES: aliases_of(model, self._selected)},
                                   self._capture, storage_options)
        writer, point, nonfinite = (
            open_in_lockstep(self.active, self._capture, self.layout.n_weights, opener)
            if sharded else opener())
        self._distance: DistanceMeter | None = (
            distance_cls(self._selected) if self.config.track_distance else None)
        self._pipeline = self._new_pipeline(writer, point, nonfinite)
        self._step = self._last_snapshot = point.step
        self._exploration = (ExplorationTracker([m for _, m in self._capture.sources()])
                             if self._capture.has_mask else None)  # never sharded (refused)
        self._iters = IterationBuffer(self._capture.device, len(self.layout.names),
                                      self.config.track_distance,
                                      interval=self.config.flush_seconds / 2,
                                      track_exploration=self._exploration is not None)
        if point.row < 0:  # a new run, or one that crashed before its first snapshot was stored
            self._snapshot()
        _OPEN.add(self)

    # ------------------------------------------------------------------ public API
    @property
    def every(self) -> int:
        """Snapshot interval in optimizer steps."""
        return self.config.every

    @property
    def sample(self) -> Sample:
        """Recorded elements per parameter (``sample=``; None: all)."""
        return self.config.sample

    @property
    def step_count(self) -> int:
        """Optimizer steps recorded so far."""
        return self._step

    @property
    def active(self) -> bool:
        """Whether this process records (rank 0); other ranks' Recorders do nothing."""
        return self.rank == 0

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` (or an abort) has run."""
        return self._closed

    def attach(self, optimizer: torch.optim.Optimizer) -> Recorder:
        """Record after every ``optimizer.step()`` (also reads its learning rate).

        The Recorder follows one optimizer: attaching again (the same or another one)
        replaces the previous hook. Once attached, :meth:`step` raises
        :class:`~weightscope.errors.ConfigError` (it would count each step twice); pass the
        loss with :meth:`log`.
        """
        self._check_open()
        if self._hook is not None:
            self._hook.remove()
        self._hook = optimizer.register_step_post_hook(
            lambda opt, args, kwargs: self._record(lr=_read_lr(opt)))
        return self

    def step(self, loss: float | torch.Tensor | None = None, lr: float | None = None) -> None:
        """Record one optimizer step: call right after ``optimizer.step()``.

        Parameters
        ----------
        loss : float or Tensor, optional
            The step's training loss (a tensor stays on its device; no sync).
        lr : float, optional
            The step's learning rate (read from the optimizer when attached).

        Raises
        ------
        ConfigError
            The Recorder is attached to an optimizer (:meth:`attach` records every step
            already), or the model was sparsified after the Recorder was created (checked at
            the first step).
        """
        if self._hook is not None:
            raise double_step_error(self.path, self._step)
        self._record(loss, lr)

    def log(self, loss: float | torch.Tensor) -> None:
        """Attach ``loss`` to the most recent optimizer step (handy with :meth:`attach`)."""
        self._check_open()
        if not self._inert:
            self._iters.log_loss(loss)

    def checkpoint(self) -> None:
        """Make the run resumable at the current step; call it when you save a checkpoint.

        Takes a snapshot of the current weights unless this step already has one (an extra,
        off-grid snapshot that :func:`~weightscope.analyze.decay_time` ignores) and writes
        everything recorded so far. ``Recorder(..., resume=<this step>)`` with the model
        loaded from that checkpoint then continues the run exactly.

        Examples
        --------
        >>> import os, tempfile, torch
        >>> import weightscope as ws
        >>> model = torch.nn.Linear(2, 2)
        >>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
        >>> rec = ws.Recorder(path, model, every=4)
        >>> for _ in range(3):
        ...     rec.step()
        >>> rec.checkpoint()       # save the model's checkpoint of step 3 alongside
        >>> rec.abort()            # a crash; later, with the checkpoint loaded:
        >>> ws.Recorder(path, model, every=4, resume=3).close()
        >>> ws.open_run(path).step.values.tolist()
        [0, 3]
        """
        self._check_open()
        if self._inert:
            return
        self._pipeline.check()
        if self._last_snapshot != self._step:
            self._snapshot()
        self._handoff_iterations()
        self._pipeline.flush()

    def close(self) -> None:
        """Take the final snapshot, write everything, and mark the run complete."""
        if self._closed:
            return
        if not self._inert and self._last_snapshot != self._step:
            self._snapshot()
        self._shutdown(total_steps=self._step)

    def abort(self) -> None:
        """Write everything recorded so far but leave the run incomplete (resumable)."""
        if not self._closed:
            self._shutdown(total_steps=None)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"step {self._step}"
        if not self.active:
            role = "inactive" if self._inert else "sharded peer"
            return f"Recorder({str(self.path)!r}, rank={self.rank}, {role}, {state})"
        return (f"Recorder({str(self.path)!r}, every={self.every}, "
                f"params={len(self.layout.names)}, weights={self.layout.n_weights}, {state})")

    # ------------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"this Recorder of '{self.path}' is closed; create a new one "
                              "(resume=True continues the run).")

    def _record(self, loss: float | torch.Tensor | None = None,
                lr: float | None = None) -> None:
        """Record one optimizer step (:meth:`step`, or the hook of :meth:`attach`)."""
        self._check_open()
        if self._watched is not None:
            check_still_dense(self._watched, self.path)
            self._watched = None
        if self._inert:
            self._step += 1
            return
        self._pipeline.check()
        if self._iters.handoff_due:
            self._handoff_iterations()
        sources = self._capture.sources()  # checks shapes
        self._step += 1
        k = self._iters.add()
        if self._distance is not None:
            self._distance.update(self._iters.distance[k], sources)
        if self._exploration is not None:
            self._exploration.update([m for _, m in sources])
            self._exploration.write(self._iters.flips[k], self._iters.explored[k])
        if loss is not None:
            self._iters.log_loss(loss)
        if lr is not None:
            self._iters.lr[k] = float(lr)
        if self._step % self.config.every == 0:
            self._snapshot(sources)

    def _new_pipeline(self, writer: RunWriter | None, point: ResumePoint,
                      nonfinite: int) -> SnapshotSink:
        if writer is None:  # a sharded run's rank > 0: gathers, stores nothing
            return PeerPipeline(self._capture.sizes, self._capture.has_mask)
        return Pipeline(
            writer, self._capture.sizes, has_mask=self._capture.has_mask,
            pin=self._capture.device.type == "cuda", flush_seconds=self.config.flush_seconds,
            row0=point.row + 1, iteration0=point.step, nonfinite0=nonfinite)

    def _snapshot(self, sources: Any = None) -> None:
        w_row, mask_row = self._pipeline.next_row()
        self._capture.copy_into(w_row, mask_row, sources)
        self._last_snapshot = self._step
        event = None
        if self._capture.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        if self._pipeline.row_done(self._step, event):
            self._iters.due = True  # its chunk row goes to the writer: the iterations too

    def _handoff_iterations(self) -> None:
        """Send the buffered per-iteration values to the writer thread."""
        taken = self._iters.handoff(self._step)
        if taken is not None:
            first, values, event = taken
            self._pipeline.push_iterations(first - 1, values, event)

    def _shutdown(self, total_steps: int | None) -> None:
        self._closed = True
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._inert:
            return
        _OPEN.discard(self)
        try:
            self._handoff_iterations()
        finally:
            self._pipeline.close(total_steps)


def _read_lr(optimizer: torch.optim.Optimizer) -> float | None:
    lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    return None if lr is None else float(lr)


register_exit(_OPEN)  # at exit, unclosed Recorders store what they hold (or exit 1, loudly)
