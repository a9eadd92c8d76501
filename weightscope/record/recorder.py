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

import atexit
import functools
import time
import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import schema
from ..errors import ConfigError
from ..store import Layout, RunWriter, paths
from ..store.codecs import DEFAULT_COMPRESSION
from .capture import Capture, DistanceTracker
from .distributed import (
    PeerPipeline,
    ShardedCapture,
    ShardedDistance,
    is_sharded,
    open_in_lockstep,
    resolve_rank,
)
from .iterations import IterationBuffer
from .pipeline import Pipeline
from .resume import ResumePoint, check_same_layout, check_weights, find_resume_point
from .selection import ParamSpec, Sample, check_sample, sample_indices, select_params

__all__ = ["Recorder"]

_OPEN: weakref.WeakSet[Recorder] = weakref.WeakSet()


class Recorder:
    """Record weight snapshots, exact search distance, loss and lr of a training run.

    Snapshots are taken at step 0 (construction), every ``every`` optimizer steps, at
    :meth:`checkpoint` and at :meth:`close`. A background thread compresses and writes them;
    the training thread only copies the recorded elements into a bounded host buffer.

    Parameters
    ----------
    path : str or os.PathLike
        Where the run goes: a directory (``run.zarr``) or an fsspec URL.
    model : torch.nn.Module
        The model being trained.
    every : int, default 10
        Snapshot interval in optimizer steps.
    params : None, list of str, or callable, optional
        Which parameters: ``None`` = the weight of every Linear and Conv1d/2d/3d; a list of
        parameter names; or a predicate ``f(name, module) -> bool``.
    sample : None, int or float, optional
        ``None`` = all elements; ``n`` = that many elements per parameter, uniformly at
        random with a seed from the parameter's name; ``f`` in (0, 1] = that fraction.
    track_distance : bool, default True
        Measure ``sum |w(s) - w(s-1)|`` over all elements of each recorded parameter at
        every step (of ``mask * w`` for sparse layers).
    overwrite : bool, default False
        Replace an existing run at ``path``.
    resume : bool or int, default False
        Continue an existing run: ``True`` from its last usable snapshot, or from the
        snapshot at the given step. The model must hold that snapshot's weights.
    flush_seconds : float, default 10.0
        Longest time a snapshot stays in memory before it is written.
    buffer_mb : float, default 256
        Host memory for buffered snapshots (two chunk rows); larger runs get shorter chunks.
    compression : {"none", "lz4", "zstd"}, default "none"
        Codec of stored weights (float32 weights save ~10 % at best; see
        ``weightscope.store.codecs``).
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
        An argument is out of range, or ``params`` matches nothing.
    """

    def __init__(self, path: paths.PathLike, model: nn.Module, every: int = 10,
                 params: ParamSpec = None, sample: Sample = None, track_distance: bool = True,
                 overwrite: bool = False, resume: bool | int = False,
                 flush_seconds: float = 10.0, *, buffer_mb: float = 256,
                 compression: str = DEFAULT_COMPRESSION,
                 storage_options: dict[str, Any] | None = None, rank: int | None = None) -> None:
        _check_args(every, flush_seconds, buffer_mb, overwrite, resume)
        self.path, self.every, self.sample = path, int(every), check_sample(sample)
        self.rank = resolve_rank(rank)
        self._selected = select_params(model, params)  # same errors on every rank
        self._step, self._closed, self._hook = 0, False, None
        sharded = is_sharded(self._selected)  # FSDP2: every rank gathers, rank 0 writes
        self._inert = not self.active and not sharded
        if self._inert:  # no store, no thread, no copies
            if resume is not True and resume is not False:
                self._step = int(resume)
            return
        self.layout = _layout(self._selected, self.sample)
        self._capture = (ShardedCapture if sharded else Capture)(self._selected, self.layout)
        self._sparse = _sparse_config(model)
        opener = functools.partial(
            self._open, path, resume, storage_options, has_distance=track_distance,
            buffer_bytes=int(buffer_mb * 2**20), compression=compression, overwrite=overwrite)
        writer, point, nonfinite = (
            open_in_lockstep(self.active, self._capture, self.layout.n_weights, opener)
            if sharded else opener())
        self._writer = writer
        self._distance = ((ShardedDistance if sharded else DistanceTracker)(self._selected)
                          if track_distance else None)
        self._pipeline = self._new_pipeline(writer, point, nonfinite, flush_seconds)
        self._step, self._last_snapshot = point.step, point.step
        self._iters = IterationBuffer(self._capture.device, len(self.layout.names),
                                      track_distance)
        # per-iteration values go to the writer when a chunk row of snapshots does, when the
        # buffer is full, and at least every flush_seconds / 2 (not after every snapshot:
        # with every=1 that would write tiny blocks at every step)
        self._handoff_due, self._handoff_interval = False, flush_seconds / 2
        self._next_handoff = time.monotonic() + self._handoff_interval
        if point.row < 0:  # a new run, or one that crashed before its first snapshot was stored
            self._snapshot()
        _OPEN.add(self)

    # ------------------------------------------------------------------ public API
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
        """Record after every ``optimizer.step()`` (also reads its learning rate)."""
        self._check_open()
        if self._hook is not None:
            self._hook.remove()
        self._hook = optimizer.register_step_post_hook(
            lambda opt, args, kwargs: self.step(lr=_read_lr(opt)))
        return self

    def step(self, loss: float | torch.Tensor | None = None, lr: float | None = None) -> None:
        """Record one optimizer step: call right after ``optimizer.step()``.

        Parameters
        ----------
        loss : float or Tensor, optional
            The step's training loss (a tensor stays on its device; no sync).
        lr : float, optional
            The step's learning rate (read from the optimizer when attached).
        """
        self._check_open()
        if self._inert:
            self._step += 1
            return
        self._pipeline.check()
        if self._handoff_due or self._iters.full or time.monotonic() >= self._next_handoff:
            self._handoff_iterations()
        sources = self._capture.sources()  # checks shapes
        self._step += 1
        k = self._iters.add()
        if self._distance is not None:
            self._distance.update(self._iters.distance[k], sources)
        if loss is not None:
            self._iters.log_loss(loss)
        if lr is not None:
            self._iters.lr[k] = float(lr)
        if self._step % self.every == 0:
            self._snapshot(sources)

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

    def _attrs(self) -> dict[str, Any]:
        return {schema.EVERY: self.every, schema.SAMPLE: self.sample,
                schema.SPARSE: self._sparse, schema.VERSIONS: {"torch": torch.__version__}}

    def _open(self, path: paths.PathLike, resume: bool | int,
              storage_options: dict[str, Any] | None, current: torch.Tensor | None = None,
              **create: Any) -> tuple[RunWriter, ResumePoint, int]:
        """Create the store, or reopen it to resume: (writer, point, nonfinite)."""
        if resume is not False and paths.exists(path, storage_options):
            return self._reopen(path, resume, storage_options, current)
        writer = RunWriter.create(path, self.layout, attrs=self._attrs(),
                                  has_mask=self._capture.has_mask,
                                  storage_options=storage_options, **create)
        return writer, ResumePoint(step=0, row=-1), 0

    def _new_pipeline(self, writer: RunWriter | None, point: ResumePoint, nonfinite: int,
                      flush_seconds: float) -> Pipeline | PeerPipeline:
        if writer is None:  # a sharded run's rank > 0: gathers, stores nothing
            return PeerPipeline(self._capture.sizes, self._capture.has_mask)
        return Pipeline(
            writer, self._capture.sizes, has_mask=self._capture.has_mask,
            pin=self._capture.device.type == "cuda", flush_seconds=flush_seconds,
            row0=point.row + 1, iteration0=point.step, nonfinite0=nonfinite)

    def _reopen(self, path: paths.PathLike, resume: bool | int,
                storage_options: dict[str, Any] | None, current: torch.Tensor | None = None
                ) -> tuple[RunWriter, ResumePoint, int]:
        writer = RunWriter.reopen(path, storage_options)
        check_same_layout(writer.layout, self.layout, self.every,
                          int(writer.attrs.get(schema.EVERY, self.every)))
        point = find_resume_point(writer.group, resume)
        if current is None:
            current = torch.empty(self.layout.n_weights, dtype=torch.float32)
            self._capture.copy_into(self._capture.split(current))
        if point.row >= 0:
            check_weights(writer, point, current.numpy())
        nonfinite = _count_nonfinite(writer, point.row + 1)
        writer.commit(point.row + 1, point.step, **{
            schema.COMPLETE: False, schema.TOTAL_STEPS: None, schema.NONFINITE: nonfinite})
        return writer, point, nonfinite

    def _snapshot(self, sources: Any = None) -> None:
        w_row, mask_row = self._pipeline.next_row()
        self._capture.copy_into(w_row, mask_row, sources)
        self._last_snapshot = self._step
        event = None
        if self._capture.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        if self._pipeline.row_done(self._step, event):
            self._handoff_due = True  # its chunk row goes to the writer: the iterations too

    def _handoff_iterations(self) -> None:
        """Send the buffered per-iteration values to the writer thread."""
        self._handoff_due = False
        self._next_handoff = time.monotonic() + self._handoff_interval
        if self._iters.n:
            first, values, event = self._iters.take(self._step)
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


def _check_args(every: Any, flush_seconds: float, buffer_mb: float, overwrite: bool,
                resume: bool | int) -> None:
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ConfigError(f"every must be an int >= 1 (snapshot interval in optimizer steps); "
                          f"got {every!r}. Pass e.g. every=10.")
    if not flush_seconds > 0:
        raise ConfigError(f"flush_seconds must be > 0; got {flush_seconds}. Pass e.g. 10.0.")
    if not buffer_mb > 0:
        raise ConfigError(f"buffer_mb must be > 0; got {buffer_mb}. Pass e.g. 256.")
    if overwrite and resume is not False:
        raise ConfigError("overwrite=True and resume= exclude each other: overwrite replaces the "
                          "run, resume continues it. Pass only one.")


def _layout(selected: list[Any], sample: Sample) -> Layout:
    names = [s.name for s in selected]
    shapes = [tuple(s.tensor.shape) for s in selected]
    indices = [None if sample is None else sample_indices(s.name, s.tensor.numel(), sample)
               for s in selected]
    return Layout.build(names, shapes, indices)


def _sparse_config(model: nn.Module) -> dict[str, Any] | None:
    try:
        from ..sparse import get_sparsifier
    except ImportError:
        return None
    sp = get_sparsifier(model)
    return None if sp is None else dict(sp.config)


def _read_lr(optimizer: torch.optim.Optimizer) -> float | None:
    lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    return None if lr is None else float(lr)


def _count_nonfinite(writer: RunWriter, rows: int) -> int:
    if int(writer.attrs.get(schema.NONFINITE, 0)) == 0 or rows == 0:
        return 0
    import dask.array as da

    w = da.from_zarr(writer.group[schema.W])[:rows]
    return int((~da.isfinite(w)).sum().compute())


@atexit.register
def _abort_open_recorders() -> None:
    """At interpreter exit, store what unclosed Recorders hold (runs stay incomplete)."""
    for rec in list(_OPEN):
        try:
            rec.abort()
        except Exception:
            pass
