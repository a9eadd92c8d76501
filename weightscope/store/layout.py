"""Where each recorded weight lives in a run, and how the run is chunked.

Recorded parameters are packed one after another along the ``weight`` axis (small parameters
share chunks; there is no array per layer). :class:`Layout` is that packing; :func:`plan_chunks`
picks the chunk shape of ``w`` from the snapshot size and the writer's memory budget.

Examples
--------
>>> lay = Layout.build(["a.weight", "b.weight"], [(4, 3), (2,)], [[0, 5, 7], None])
>>> lay.offsets.tolist(), lay.n_weights
([0, 3, 5], 5)
>>> lay.index().tolist(), lay.param_id().tolist()
([0, 5, 7, 0, 1], [0, 0, 0, 1, 1])
>>> plan_chunks(n_weights=1_000_000, buffer_bytes=256 * 2**20)
(32, 32259)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validate import check_int

__all__ = ["Layout", "plan_chunks"]

#: Target size of one chunk of ``w`` before compression.
TARGET_CHUNK_BYTES = 8 * 2**20
#: Most snapshots in one chunk. A flush or close writes its last chunk row padded to full
#: height, so taller chunks cost small-snapshot runs more.
MAX_CHUNK_STEPS = 64
#: Widest chunk (in weights) when a chunk holds 4 or more snapshots (wider below): narrow
#: enough for the analyzers' whole-time columns, wide enough that creating one file per chunk
#: does not dominate the writer's time. Long runs are opened with dask chunks that split
#: these (:data:`weightscope.store.reader.READ_BLOCK_BYTES`).
NARROW_CHUNK_WEIGHTS = 32768


@dataclass(frozen=True)
class Layout:
    """Packing of recorded parameters along the ``weight`` axis.

    Attributes
    ----------
    names : tuple of str
        Parameter names, in store order.
    shapes : tuple of tuple of int
        Full shape of each parameter.
    indices : tuple of (numpy.ndarray or None)
        Sorted flat indices of the recorded elements of each parameter; ``None`` when every
        element is recorded (never materialized: a 50 M-weight layer costs no index memory).
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    indices: tuple[np.ndarray | None, ...]

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        shapes: Sequence[Sequence[int]],
        indices: Sequence[Sequence[int] | np.ndarray | None],
    ) -> Layout:
        """Build a layout from names, shapes and recorded flat indices (None = all)."""
        shapes_ = tuple(tuple(int(d) for d in s) for s in shapes)
        idx = []
        for shape, i in zip(shapes_, indices):
            arr = None if i is None else np.asarray(i, dtype=np.int64)
            full = arr is not None and len(arr) == int(np.prod(shape, dtype=np.int64))
            idx.append(None if full and np.array_equal(arr, np.arange(len(arr))) else arr)
        return cls(tuple(names), shapes_, tuple(idx))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        same_idx = all((a is None and b is None) or (a is not None and b is not None
                                                     and np.array_equal(a, b))
                       for a, b in zip(self.indices, other.indices))
        return self.names == other.names and self.shapes == other.shapes and same_idx

    __hash__ = None  # type: ignore[assignment]

    @property
    def numel(self) -> np.ndarray:
        """Elements of each parameter (recorded or not)."""
        return np.array([int(np.prod(s, dtype=np.int64)) for s in self.shapes], dtype=np.int64)

    @property
    def counts(self) -> np.ndarray:
        """Recorded elements of each parameter."""
        return np.array([n if i is None else len(i) for n, i in zip(self.numel, self.indices)],
                        dtype=np.int64)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each parameter along ``weight``, plus the total at the end."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    @property
    def n_weights(self) -> int:
        """Total recorded weights (length of the ``weight`` axis)."""
        return int(self.counts.sum())

    def is_full(self, i: int) -> bool:
        """Whether every element of parameter ``i`` is recorded."""
        return self.indices[i] is None

    def param_id(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The ``param_id`` coordinate over weights ``[lo, hi)``."""
        parts = [np.full(b - a, i, dtype=np.int32) for i, a, b in self._segments(lo, hi)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)

    def index(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """The ``index`` coordinate (flat index inside its parameter) over weights ``[lo, hi)``."""
        parts = [np.arange(a, b, dtype=np.int64) if self.indices[i] is None
                 else self.indices[i][a:b] for i, a, b in self._segments(lo, hi)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _segments(self, lo: int, hi: int | None) -> list[tuple[int, int, int]]:
        """``(parameter, start, stop)``: the recorded positions ``[start, stop)`` of each
        parameter (counted inside that parameter) that fall in weights ``[lo, hi)``."""
        off = self.offsets
        hi = int(off[-1]) if hi is None else hi
        return [(i, max(lo, int(off[i])) - int(off[i]), min(hi, int(off[i + 1])) - int(off[i]))
                for i in range(len(self.names)) if max(lo, off[i]) < min(hi, off[i + 1])]


def plan_chunks(n_weights: int, buffer_bytes: int, itemsize: int = 4) -> tuple[int, int]:
    """Chunk shape ``(steps, weights)`` of ``w`` for a snapshot of ``n_weights`` values.

    The writer double-buffers one chunk row (``steps`` snapshots of every weight), so the
    steps per chunk are the largest power of two such that two rows fit in ``buffer_bytes``
    (at least 1, at most :data:`MAX_CHUNK_STEPS`). The weights per chunk then make a chunk about
    :data:`TARGET_CHUNK_BYTES` (a power of two, at least 4096, at most the snapshot).

    Parameters
    ----------
    n_weights : int
        Recorded weights per snapshot.
    buffer_bytes : int
        Memory budget of the writer's host buffer.
    itemsize : int, optional
        Bytes per stored value.

    Returns
    -------
    tuple of int
        ``(steps_per_chunk, weights_per_chunk)``.
    """
    n_weights = check_int(n_weights, "a run must record at least one weight")
    row = n_weights * itemsize
    fit = int(np.clip(buffer_bytes // (2 * row), 1, MAX_CHUNK_STEPS))
    steps = 1 << (fit.bit_length() - 1)  # round down to a power of two
    target = max(TARGET_CHUNK_BYTES // (steps * itemsize), 4096)
    # narrow chunks keep a whole-time column of a chunk small for the analyzers (they read
    # weight blocks with the whole time axis); very tall chunk rows are rare (huge models)
    target = min(target, NARROW_CHUNK_WEIGHTS * max(1, 4 // steps))
    n_chunks = -(-n_weights // target)
    return steps, -(-n_weights // n_chunks)  # equal widths: no padded edge chunk
