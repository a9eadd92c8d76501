"""The Recorder's bounded host buffer and background writer thread.

The training thread fills rows of a *slot* (one chunk row of ``w``: ``chunk_steps`` snapshots
of every recorded weight); a full slot goes to the writer thread, which stores it with a
:class:`~weightscope.store.RunWriter` and then returns it to the pool. There are two slots, so
writing one overlaps filling the other; when both are busy the training thread waits (data is
never dropped). Rows older than ``flush_seconds`` are stored even if their slot is not full.
The writer takes every queued job at once (a full slot and the per-iteration values handed
off with it) and then commits the new valid lengths once: one metadata write per batch, and
one at close, which also marks the run complete. A writer failure is kept and raised in the
training thread at its next call, after what was stored before it is committed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import schema
from ..errors import WriterError
from ..store import RunWriter, aligned_bytes
from .protocols import RowViews

__all__ = ["Pipeline"]

_N_SLOTS = 2


@dataclass
class _Slot:
    w: torch.Tensor
    mask: torch.Tensor | None
    steps: list[int]  # lists, not arrays: set item by item at every snapshot
    times: list[float]
    events: list[Any]
    rows: list[RowViews]  # per-parameter views of each row, made once (not at every snapshot)
    row0: int = 0
    n: int = 0  # rows filled by the training thread
    written: int = 0  # rows stored by the writer thread


@dataclass
class _Counters:
    rows: int  # committed snapshot rows
    iterations: int  # committed iteration rows
    nonfinite: int


class Pipeline:
    """Slots + writer thread for one run (see the module docstring).

    Parameters
    ----------
    writer : RunWriter
        The store being written.
    parts : sequence of int
        Recorded weights of each parameter (a snapshot is their concatenation).
    has_mask : bool
        Whether snapshots carry a sparse mask.
    pin : bool
        Allocate slots in pinned memory (CUDA models: non-blocking copies).
    flush_seconds : float
        Longest time a snapshot waits in memory before it is stored.
    row0, iteration0, nonfinite0 : int
        Where the run continues (non-zero when resuming).
    """

    def __init__(self, writer: RunWriter, parts: Sequence[int], *, has_mask: bool, pin: bool,
                 flush_seconds: float, row0: int = 0, iteration0: int = 0,
                 nonfinite0: int = 0) -> None:
        self.writer = writer
        self.flush_seconds = float(flush_seconds)
        c = writer.chunk_steps
        self._free = [self._new_slot(c, list(parts), has_mask, pin) for _ in range(_N_SLOTS)]
        self._filling: _Slot | None = None
        self._next_row = row0
        self._jobs: deque[tuple[str, Any]] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._done = _Counters(row0, iteration0, nonfinite0)  # committed
        self._stored = _Counters(row0, iteration0, nonfinite0)  # written, maybe not committed
        self._thread = threading.Thread(target=self._run, name="weightscope-writer", daemon=True)
        self._thread.start()

    @staticmethod
    def _new_slot(c: int, parts: list[int], has_mask: bool, pin: bool) -> _Slot:
        w = _empty((c, sum(parts)), torch.float32, pin)
        mask = _empty((c, sum(parts)), torch.bool, pin) if has_mask else None
        rows = [(w[r].split(parts), None if mask is None else mask[r].split(parts))
                for r in range(c)]
        return _Slot(w, mask, [0] * c, [0.0] * c, [None] * c, rows)

    # ------------------------------------------------------------------ training thread
    @property
    def rows_committed(self) -> int:
        """Snapshot rows stored and committed so far."""
        return self._done.rows

    @property
    def nonfinite(self) -> int:
        """Non-finite values among the stored snapshots."""
        return self._done.nonfinite

    def check(self) -> None:
        """Raise :class:`WriterError` if the writer thread failed."""
        if self._error is not None:
            raise WriterError(
                f"the background writer failed: {self._error!r}. The run holds the snapshots "
                f"committed before the failure ({self._done.rows} rows); fix the storage "
                "(space, permissions) and continue with resume=True."
            ) from self._error

    def next_row(self) -> RowViews:
        """Host row for the next snapshot (per-parameter views of its weights and mask);
        waits if both slots are busy."""
        slot = self._filling  # set by this (the training) thread only: no lock to read it
        if slot is None:
            slot = self._take_slot()
        return slot.rows[slot.n]

    def _take_slot(self) -> _Slot:
        with self._cond:
            self.check()
            while not self._free:
                self._cond.wait(0.5)
                self.check()
            slot = self._free.pop()
            slot.row0, slot.n, slot.written = self._next_row, 0, 0
            self._next_row += len(slot.steps)
            self._filling = slot
            return slot

    def row_done(self, step: int, event: Any = None) -> bool:
        """Mark the row returned by :meth:`next_row` as filled with the snapshot of ``step``.

        Returns whether this filled the slot (which then goes to the writer thread).
        """
        slot = self._filling
        if slot is None:
            raise RuntimeError("row_done() without next_row()")  # internal misuse
        n = slot.n
        slot.steps[n], slot.times[n], slot.events[n] = step, time.monotonic(), event
        with self._cond:  # the writer reads n (rows it may flush) under the lock
            slot.n = n + 1
            full = n + 1 == len(slot.steps)
            if full:
                self._jobs.append(("slot", slot))
                self._filling = None
            if full or n == slot.written:  # a job, or the flush timer starts: wake the
                self._cond.notify_all()  # writer (not at every step: no context switch)
            return full

    def push_iterations(self, row: int, values: dict[str, np.ndarray], event: Any = None) -> None:
        """Queue per-iteration values (``iterations``, ``distance``, ``loss``, ``lr``)."""
        with self._cond:
            self.check()
            self._jobs.append(("iterations", (row, values, event)))
            self._cond.notify_all()

    def flush(self) -> None:
        """Store the rows filled so far and wait until they are committed."""
        with self._cond:
            slot = self._filling
            if slot is not None:
                self._jobs.append(("partial", (slot, slot.n)))
            target = self._next_row if slot is None else slot.row0 + slot.n
            self._cond.notify_all()
            while self._done.rows < target:
                self._cond.wait(0.5)
                self.check()

    def close(self, total_steps: int | None, attrs: dict[str, Any] | None = None) -> None:
        """Store everything pending; mark the run complete unless ``total_steps`` is None."""
        with self._cond:
            self._jobs.append(("finish", (total_steps, attrs or {})))
            self._cond.notify_all()
        self._thread.join()
        try:
            self.check()
        finally:
            self.writer.close()  # releases the run's lock, also after a writer failure

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        try:
            while True:
                for kind, payload in self._next_jobs():
                    if kind == "finish":
                        self._finish(*payload)
                        return
                    getattr(self, f"_do_{kind}")(payload)
                self._commit()  # once for the jobs taken together: one metadata write
        except BaseException as err:  # kept and raised in the training thread
            try:
                self._commit()  # publish what was stored before the failure
            except BaseException:
                pass
            with self._cond:
                self._error = err
                self._cond.notify_all()

    def _next_jobs(self) -> list[tuple[str, Any]]:
        """Every queued job (waits for one, or for the flush timer)."""
        with self._cond:
            while not self._jobs:
                wait = self._flush_wait()
                if wait is not None and wait <= 0:
                    return [("partial", (self._filling, self._filling.n))]  # type: ignore
                self._cond.wait(wait)
            jobs = list(self._jobs)
            self._jobs.clear()
            return jobs

    def _flush_wait(self) -> float | None:
        slot = self._filling
        if slot is None or slot.n <= slot.written:
            return None
        return float(slot.times[slot.written]) + self.flush_seconds - time.monotonic()

    def _do_slot(self, slot: _Slot) -> None:
        self._store_rows(slot, len(slot.steps))
        with self._cond:
            self._free.append(slot)
            self._cond.notify_all()

    def _do_partial(self, payload: tuple[_Slot, int]) -> None:
        self._store_rows(*payload)

    def _store_rows(self, slot: _Slot, stop: int) -> None:
        start = slot.written
        if stop <= start:
            return
        if slot.events[stop - 1] is not None:
            slot.events[stop - 1].synchronize()
        w = slot.w[start:stop].numpy()
        mask = slot.mask[start:stop].numpy() if slot.mask is not None else None
        self.writer.write_snapshots(slot.row0 + start, np.asarray(slot.steps[start:stop], np.int64),
                                   w, mask)
        slot.written = stop
        self._stored.nonfinite += _count_nonfinite(w)
        self._stored.rows = slot.row0 + stop

    def _do_iterations(self, payload: tuple[int, dict[str, np.ndarray], Any]) -> None:
        row, values, event = payload
        if event is not None:
            event.synchronize()
        values = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in values.items()}
        iterations = values.pop("iterations")
        self.writer.write_iterations(row, iterations, **values)
        self._stored.iterations = row + len(iterations)

    def _commit(self, **attrs: Any) -> None:
        """Publish what is stored (valid lengths, non-finite count) with ``attrs``."""
        stored, done = self._stored, self._done
        if not attrs and (stored.rows, stored.iterations, stored.nonfinite) == (
                done.rows, done.iterations, done.nonfinite):
            return
        self.writer.commit(stored.rows, stored.iterations,
                           **{schema.NONFINITE: stored.nonfinite}, **attrs)
        with self._cond:
            done.rows, done.iterations = stored.rows, stored.iterations
            done.nonfinite = stored.nonfinite
            self._cond.notify_all()

    def _finish(self, total_steps: int | None, attrs: dict[str, Any]) -> None:
        """Store the rows still in the filling slot, then commit once, with ``attrs``."""
        if self._filling is not None:
            self._store_rows(self._filling, self._filling.n)
        if total_steps is not None:
            attrs = {**attrs, schema.TOTAL_STEPS: int(total_steps), schema.COMPLETE: True}
        self._commit(**attrs)


def _empty(shape: tuple[int, int], dtype: torch.dtype, pin: bool) -> torch.Tensor:
    """Slot memory: pinned for CUDA models, else memory the store writes without a copy."""
    if pin:
        return torch.empty(shape, dtype=dtype, pin_memory=True)
    nbytes = shape[0] * shape[1] * torch.empty((), dtype=dtype).element_size()
    return torch.from_numpy(aligned_bytes(nbytes)).view(dtype).view(shape)


def _count_nonfinite(w: np.ndarray, block: int = 2**22) -> int:
    """NaN/Inf values in ``w``, counted in blocks (no full-size temporary)."""
    flat = w.reshape(-1)
    return sum(int(np.count_nonzero(~np.isfinite(flat[i:i + block])))
               for i in range(0, flat.size, block))
