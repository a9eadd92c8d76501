"""Synchronous, torch-free writer of one run store (format version 1).

The Recorder's background thread drives a :class:`RunWriter`: it writes whole chunk rows of
snapshots and blocks of per-iteration values, then :meth:`RunWriter.commit` publishes the new
valid lengths. Arrays grow geometrically along ``step``/``iteration`` (metadata only, never
per step); every zarr key is replaced atomically, and the valid lengths are committed only
after the data they cover is stored, so a crash at any moment leaves a readable prefix.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from weightscope.store import Layout, RunWriter, open_run
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> lay = Layout.build(["fc.weight"], [(2, 3)], [np.arange(6)])
>>> wr = RunWriter.create(path, lay, attrs={"every": 1, "sample": None})
>>> wr.write_snapshots(0, np.array([0, 1]), np.ones((2, 6), np.float32))
>>> wr.write_iterations(0, np.array([1]), distance=np.array([[0.0]]))
>>> wr.commit(valid_steps=2, valid_iterations=1)
>>> wr.finish(total_steps=1)
>>> open_run(path).sizes["step"]
2
"""

from __future__ import annotations

import datetime as _dt
import platform
import shutil
from typing import Any

import numpy as np
import zarr

from .. import schema
from ..errors import RunLockedError
from . import paths
from .chunk_writer import ChunkWriter, ZarrRows
from .codecs import (
    DEFAULT_COMPRESSION,
    coordinate_compressors,
    mask_compressors,
    weight_compressors,
    with_checksum,
)
from .creation import check_target, publish, remove_leftovers, staging_path
from .direct import DirectRows, update_local_attrs
from .layout import Layout, plan_chunks
from .lock import RunLock

__all__ = ["DEFAULT_BUFFER_BYTES", "RunWriter"]

DEFAULT_BUFFER_BYTES = 256 * 2**20
_ITER_CHUNK_VALUES = 2**18  # values per chunk of the (iteration, param) arrays
#: Every chunk is written, even one of fill values only: a reader then treats a missing chunk
#: of a checksummed run as damage (store/integrity.py), and `w`/`mask` skip zarr's pass
#: checking for all-fill chunks.
_DENSE = {"write_empty_chunks": True}
_COORD_CHUNK = 2**20  # elements per chunk of the param_id / index coordinates
#: Snapshot rows `w`/`step` are created with (metadata only: chunks are written when filled);
#: a run of up to this many snapshots never resizes them.
_INITIAL_ROWS = 1024


class RunWriter:
    """Write one run: snapshots along ``step``, per-iteration values along ``iteration``.

    Use :meth:`create` for a new run and :meth:`reopen` to continue one. Not thread-safe:
    exactly one thread (the Recorder's writer thread) calls it. Both take the run's lock
    (:mod:`~weightscope.store.lock`) before anything is read, deleted or written; the writer
    holds it until :meth:`close`, until a commit marks the run complete, or until it is
    garbage-collected (the OS releases it when the process dies).
    """

    def __init__(self, group: zarr.Group, layout: Layout,
                 arrays: dict[str, zarr.Array] | None = None,
                 lock: RunLock | None = None) -> None:
        self.group = group
        self.layout = layout
        self._lock = lock
        self._arrays: dict[str, zarr.Array] = arrays if arrays is not None else {
            name: group[name] for name in group.array_keys()  # type: ignore[misc]
        }
        for name, arr in self._arrays.items():
            self._arrays[name] = arr.with_config(_DENSE)
        self._writers: dict[str, ChunkWriter] = {}  # made on first write of each array

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: paths.PathLike,
        layout: Layout,
        *,
        attrs: dict[str, Any],
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        has_mask: bool = False,
        has_distance: bool = True,
        compression: str = DEFAULT_COMPRESSION,
        overwrite: bool = False,
        storage_options: dict[str, Any] | None = None,
    ) -> RunWriter:
        """Create a new run at ``path`` (see the module docstring for an example).

        Raises
        ------
        RunExistsError
            Something exists at ``path`` and ``overwrite`` is False, or it is not a run
            (weightscope never deletes what it did not write).
        RunLockedError
            Another writer holds the run (checked before anything is deleted or written).
        """
        codecs = weight_compressors(compression)  # validates before touching the target
        lock = RunLock.acquire(path)
        local = not paths.is_url(path)  # local: built beside the path, then renamed
        build = staging_path(path) if local else path
        try:
            check_target(path, overwrite, storage_options)
            if local:
                remove_leftovers(path)
            group = paths.open_group(build, "w", storage_options)
            steps, weights = plan_chunks(layout.n_weights, buffer_bytes)
            cap = steps * max(1, -(-_INITIAL_ROWS // steps))
            arrays = _create_weight_arrays(group, layout, (steps, weights), cap, has_mask,
                                           codecs)
            arrays[schema.ITERATION] = _create_iteration_arrays(group, len(layout.names))
            if has_distance:
                arrays[schema.DISTANCE] = _create_iteration_var(group, schema.DISTANCE,
                                                                len(layout.names))
            group.attrs.put(_initial_attrs(layout, {"compression": compression, **attrs}))
            if local:
                publish(build, path)
                group, arrays = paths.open_group(path, "r+", storage_options), None
        except BaseException:
            if lock is not None:
                lock.release()
            if local:
                shutil.rmtree(build, ignore_errors=True)
            raise
        return cls(group, layout, arrays, lock)

    @classmethod
    def reopen(
        cls, path: paths.PathLike, storage_options: dict[str, Any] | None = None
    ) -> RunWriter:
        """Open an existing run for appending (the Recorder checks it matches the model).

        Raises :class:`~weightscope.errors.RunLockedError` if another writer holds it.
        """
        lock = RunLock.acquire(path)
        try:
            group = paths.open_group(path, "r+", storage_options)
            schema.check_format_version(dict(group.attrs), f"'{path}'")
            layout = Layout.build(
                [str(n) for n in group[schema.PARAM][:]],
                list(group.attrs[schema.PARAM_SHAPES].values()),
                _stored_indices(group),
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(group, layout, lock=lock)

    def close(self) -> None:
        """Release the run's lock (idempotent); the writer may not write afterwards."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_lock(self) -> None:
        """Raise :class:`RunLockedError` unless this writer still holds the run's lock."""
        if self._lock is not None and not self._lock.held:
            self._lock.check()  # taken over by a newer writer of this process
            raise RunLockedError(
                f"this writer of '{self._lock.run}' was closed (or committed the run "
                "complete) and released the run's lock; reopen the run to write to it.")

    # ------------------------------------------------------------------ state
    @property
    def attrs(self) -> dict[str, Any]:
        """The run's group attributes (a copy)."""
        return dict(self.group.attrs)

    @property
    def chunk_steps(self) -> int:
        """Snapshots per chunk of ``w``."""
        return int(self._arrays[schema.W].chunks[0])

    @property
    def has_mask(self) -> bool:
        """Whether the run stores ``mask`` snapshots."""
        return schema.MASK in self._arrays

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Read back stored snapshots ``[start, stop)`` (``w``, ``step``, ``mask`` if any)."""
        names = [schema.W, schema.STEP] + ([schema.MASK] if self.has_mask else [])
        return {n: self._arrays[n][start:stop] for n in names}

    # ------------------------------------------------------------------ writing
    def write_snapshots(
        self, row: int, steps: np.ndarray, w: np.ndarray, mask: np.ndarray | None = None
    ) -> None:
        """Store snapshots ``w`` (shape ``(n, weights)``) taken at ``steps`` from row ``row``."""
        self._check_lock()
        stop = row + len(steps)
        self._ensure_rows([schema.W, schema.STEP, schema.MASK], stop)
        self._write_rows(schema.W, row, w)
        if mask is not None:
            self._write_rows(schema.MASK, row, mask)
        self._write_rows(schema.STEP, row, steps)

    def _write_rows(self, name: str, row: int, values: np.ndarray) -> None:
        """Store ``values`` as rows ``row`` on of array ``name`` with its chunk writer."""
        if name not in self._writers:
            self._writers[name] = _chunk_writer(self._arrays[name])
        self._writers[name].write(row, values)

    def write_iterations(
        self,
        row: int,
        iterations: np.ndarray,
        distance: np.ndarray | None = None,
        loss: np.ndarray | None = None,
        lr: np.ndarray | None = None,
        flips: np.ndarray | None = None,
        explored: np.ndarray | None = None,
    ) -> None:
        """Store per-iteration values (``distance``, ``flips``, ``explored`` have shape
        ``(n, params)``) from ``row``."""
        self._check_lock()
        stop = row + len(iterations)
        values = {schema.DISTANCE: distance, schema.LOSS: loss, schema.LR: lr,
                  schema.FLIPS: flips, schema.EXPLORED: explored}
        for name, value in values.items():
            if value is not None and name not in self._arrays and np.isfinite(value).any():
                # loss and lr appear with their first known value
                self._arrays[name] = _create_iteration_var(self.group, name, len(self.layout.names))
        self._ensure_rows([schema.ITERATION, *values], stop)
        self._write_rows(schema.ITERATION, row, iterations)
        for name, value in values.items():
            if value is not None and name in self._arrays:
                self._write_rows(name, row, value)

    def commit(self, valid_steps: int, valid_iterations: int, **attrs: Any) -> None:
        """Publish new valid lengths (call only once the data they cover is written)."""
        self._update_attrs({schema.VALID_STEPS: int(valid_steps),
                            schema.VALID_ITERATIONS: int(valid_iterations), **attrs})

    def finish(self, total_steps: int) -> None:
        """Mark the run complete (the last call on a run)."""
        self._update_attrs({schema.TOTAL_STEPS: int(total_steps), schema.COMPLETE: True})

    def _update_attrs(self, attrs: dict[str, Any]) -> None:
        self._check_lock()
        if not update_local_attrs(self.group, attrs):  # local: zarr.json written here
            self.group.attrs.update(attrs)
        if attrs.get(schema.COMPLETE) is True:
            self.close()  # a complete run is not written to any more

    def _ensure_rows(self, names: list[str], stop: int) -> None:
        """Grow the named arrays (which share their first dimension) so ``stop`` rows fit.

        Growth doubles the capacity (rounded up to whole chunks of the first array), so the
        metadata changes O(log n) times in a run, never per step.
        """
        arrays = [self._arrays[n] for n in names if n in self._arrays]
        cap = arrays[0].shape[0]
        if cap >= stop:
            return
        chunk = arrays[0].chunks[0]
        new = -(-max(2 * cap, stop) // chunk) * chunk
        for arr in arrays:
            arr.resize((new, *arr.shape[1:]))


def _chunk_writer(array: zarr.Array) -> ChunkWriter:
    """How rows of ``array`` are stored: :class:`DirectRows` where it applies (a local,
    uncompressed 1-D or 2-D array on a POSIX system), plain zarr otherwise."""
    return DirectRows.for_array(array) or ZarrRows(array)


def _stored_indices(group: zarr.Group) -> list[np.ndarray | None]:
    """Recorded indices per parameter (None where every element is recorded)."""
    pid = group[schema.PARAM_ID]
    numel = group[schema.NUMEL][:]
    counts = np.zeros(len(numel), np.int64)
    step = pid.chunks[0]
    for lo in range(0, pid.shape[0], step):  # chunk by chunk: bounded memory
        counts += np.bincount(pid[lo:lo + step], minlength=len(numel))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return [None if c == n else group[schema.INDEX][offsets[i]:offsets[i + 1]]
            for i, (c, n) in enumerate(zip(counts, numel))]


def _create_weight_arrays(group: zarr.Group, layout: Layout, chunks: tuple[int, int],
                          cap: int, has_mask: bool, codecs: tuple[Any, ...]
                          ) -> dict[str, zarr.Array]:
    n = layout.n_weights
    steps, weights = chunks
    arrays = {schema.W: _create(
        # fill 0: a partly filled chunk row's rows to come are a hole of its files (no disk
        # space); they lie past the committed length, and a missing chunk is damage, so the
        # fill value is never read as data
        group, schema.W, shape=(cap, n), chunks=chunks, dtype="float32", fill_value=0.0,
        compressors=with_checksum(codecs), dimension_names=(schema.STEP, schema.WEIGHT))}
    if has_mask:
        arrays[schema.MASK] = _create(
            group, schema.MASK, shape=(cap, n), chunks=chunks, dtype="bool", fill_value=False,
            compressors=with_checksum(mask_compressors()),
            dimension_names=(schema.STEP, schema.WEIGHT))
    arrays[schema.STEP] = _create(
        group, schema.STEP, shape=(cap,), chunks=(max(steps, 1024),), dtype="int64", fill_value=-1,
        compressors=with_checksum(), dimension_names=(schema.STEP,))
    p = len(layout.names)
    names = _create(group, schema.PARAM, shape=(p,), chunks=(max(p, 1),), dtype=str,
                               compressors=with_checksum(), dimension_names=(schema.PARAM,))
    names[:] = np.array(layout.names, dtype=object)
    numel = _create(group, schema.NUMEL, data=layout.numel, chunks=(max(p, 1),),
                               compressors=with_checksum(), dimension_names=(schema.PARAM,))
    coord = min(n, max(weights, _COORD_CHUNK))
    pid = _create(group, schema.PARAM_ID, shape=(n,), chunks=(coord,), dtype="int32",
                             compressors=with_checksum(coordinate_compressors(4)),
                             dimension_names=(schema.WEIGHT,))
    index = _create(group, schema.INDEX, shape=(n,), chunks=(coord,), dtype="int64",
                               compressors=with_checksum(coordinate_compressors(8)),
                               dimension_names=(schema.WEIGHT,))
    for lo in range(0, n, coord):  # chunk by chunk: no full-size index in memory
        hi = min(lo + coord, n)
        pid[lo:hi] = layout.param_id(lo, hi)
        index[lo:hi] = layout.index(lo, hi)
    arrays.update({schema.PARAM: names, schema.NUMEL: numel, schema.PARAM_ID: pid,
                   schema.INDEX: index})
    return arrays


def _create(group: zarr.Group, name: str, **kwargs: Any) -> zarr.Array:
    """A new array of the run (every chunk written: :data:`_DENSE`)."""
    return group.create_array(name, config=_DENSE, **kwargs)


def _iteration_chunk(n_params: int) -> int:
    return int(max(64, min(4096, _ITER_CHUNK_VALUES // max(n_params, 1))))


def _create_iteration_arrays(group: zarr.Group, n_params: int) -> zarr.Array:
    chunk = _iteration_chunk(n_params)
    return _create(group, schema.ITERATION, shape=(chunk,), chunks=(chunk,), dtype="int64",
                              fill_value=-1, compressors=with_checksum(),
                              dimension_names=(schema.ITERATION,))


def _create_iteration_var(group: zarr.Group, name: str, n_params: int) -> zarr.Array:
    cap = group[schema.ITERATION].shape[0]
    chunk = _iteration_chunk(n_params)
    if name in (schema.DISTANCE, schema.FLIPS, schema.EXPLORED):
        return _create(group, name, shape=(cap, n_params), chunks=(chunk, max(n_params, 1)),
                                  dtype="float64", fill_value=np.nan, compressors=with_checksum(),
                                  dimension_names=(schema.ITERATION, schema.PARAM))
    return _create(group, name, shape=(cap,), chunks=(chunk,), dtype="float64",
                              fill_value=np.nan, compressors=with_checksum(),
                              dimension_names=(schema.ITERATION,))


def _initial_attrs(layout: Layout, attrs: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        schema.COMPLETE: False,
        schema.EVERY: None,
        schema.SAMPLE: None,
        schema.TOTAL_STEPS: None,
        schema.CREATED: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        schema.VERSIONS: _versions(),
        schema.SPARSE: None,
        schema.PARAM_SHAPES: {n: list(s) for n, s in zip(layout.names, layout.shapes)},
        schema.VALID_STEPS: 0,
        schema.VALID_ITERATIONS: 0,
        schema.NONFINITE: 0,
    }
    base.update(attrs)
    base[schema.VERSIONS] = {**_versions(), **attrs.get(schema.VERSIONS, {})}
    base[schema.FORMAT_ATTR] = schema.FORMAT_VERSION
    return base


def _versions() -> dict[str, str]:
    from .._version import __version__

    return {"weightscope": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "zarr": zarr.__version__}
