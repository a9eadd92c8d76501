"""Read every chunk of a run and report the damaged ones (``weightscope verify RUN``).

Examples
--------
>>> import numpy as np, tempfile, os
>>> from weightscope.store import Layout, RunWriter
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> wr = RunWriter.create(path, Layout.build(["fc.weight"], [(3,)], [None]), attrs={})
>>> wr.write_snapshots(0, np.array([0, 1]), np.ones((2, 3), np.float32))
>>> wr.commit(valid_steps=2, valid_iterations=0)
>>> report = verify_run(path)
>>> report.ok, report.damaged
(True, [])
>>> os.remove(os.path.join(path, "w", "c", "0", "0"))
>>> print(verify_run(path))
'...run.zarr': 1 damaged of ... chunks read
  w c/0/0: chunk 'w/c/0/0' of array 'w' is damaged: it is missing...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from .. import schema
from ..errors import CorruptRunError, SchemaError
from . import paths
from .integrity import corrupt_errors
from .metadata import (
    capacities,
    check_arrays,
    check_indices,
    check_sizes,
    check_values,
    committed_lengths,
)
from .view import CommittedView

__all__ = ["Damage", "VerifyReport", "verify_run"]


@dataclass(frozen=True)
class Damage:
    """One damaged chunk (``array`` and ``chunk`` empty for damaged run metadata)."""

    array: str
    chunk: str
    reason: str


@dataclass
class VerifyReport:
    """What :func:`verify_run` found: chunks read and the damaged ones."""

    path: str
    chunks: int = 0
    damaged: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is damaged."""
        return not self.damaged

    def __str__(self) -> str:
        head = f"'{self.path}': {len(self.damaged)} damaged of {self.chunks} chunks read"
        lines = [f"  {d.array or '(metadata)'} {d.chunk}: {d.reason}" for d in self.damaged]
        return "\n".join([head, *lines])


def verify_run(path: paths.PathLike, *,
               storage_options: dict[str, Any] | None = None) -> VerifyReport:
    """Check a run's metadata, then read (and check) every committed chunk of every array.

    One chunk is in memory at a time. A run that is not there or not a run raises as
    :func:`~weightscope.store.open_run` does; damage is reported, not raised: each damaged
    chunk, then (if none) a broken rule of the metadata (:mod:`~weightscope.store.metadata`).
    """
    report = VerifyReport(str(path))
    where = f"'{path}'"
    group = paths.open_group(path, "r", storage_options)
    attrs = dict(group.attrs)
    schema.check_format_version(attrs, where)
    try:
        with paths.storage_errors(path), corrupt_errors(where):
            committed = committed_lengths(attrs, capacities(dict(group.arrays())), where)
            view = zarr.open_group(CommittedView(group.store, committed), mode="r",
                                   zarr_format=3)
            arrays = dict(view.arrays())
            check_sizes(arrays, where)  # before reading: 1e12 weights are not read chunk by chunk
    except SchemaError as err:  # damaged metadata: its chunks cannot be found
        report.damaged.append(Damage("", "", str(err)))
        return report
    n_params = arrays[schema.PARAM].shape[0] if schema.PARAM in arrays else 0
    for name, arr in sorted(arrays.items()):
        for idx in np.ndindex(*arr.cdata_shape):
            report.chunks += 1
            reason = _read_chunk(arr, idx, name, n_params, where)
            if reason is not None:
                report.damaged.append(Damage(name, arr.metadata.encode_chunk_key(idx), reason))
    if report.ok:  # the rules across arrays (they read `param` and `numel`, sound here)
        try:
            with corrupt_errors(where):
                check_arrays(arrays, attrs, where)
                _check_order(arrays, where)
                _check_indices(arrays, where)
        except SchemaError as err:
            report.damaged.append(Damage("", "", str(err)))
    return report


def _check_order(arrays: dict[str, zarr.Array], where: str) -> None:
    """Steps and iterations strictly increasing (8 bytes a row: read whole)."""
    import xarray as xr

    names = [n for n in (schema.STEP, schema.ITERATION) if n in arrays]
    check_values(xr.Dataset(coords={n: (n, arrays[n][:]) for n in names}), where)


def _check_indices(arrays: dict[str, zarr.Array], where: str) -> None:
    """Every ``index`` within its parameter's ``numel`` (read a stored chunk at a time)."""
    if not all(n in arrays for n in (schema.INDEX, schema.PARAM_ID, schema.NUMEL)):
        return
    numel = np.asarray(arrays[schema.NUMEL][:])
    index, ids = arrays[schema.INDEX], arrays[schema.PARAM_ID]
    step = max(int(index.chunks[0]), 1)
    for lo in range(0, index.shape[0], step):
        check_indices(np.asarray(index[lo:lo + step]), np.asarray(ids[lo:lo + step]), numel,
                      where)


def _read_chunk(arr: zarr.Array, idx: tuple[int, ...], name: str, n_params: int,
                where: str) -> str | None:
    """Why chunk ``idx`` of ``arr`` is damaged, or None if it reads and checks fine."""
    box = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, arr.chunks, arr.shape))
    try:
        with corrupt_errors(f"{where}: chunk {arr.metadata.encode_chunk_key(idx)} of '{name}'"):
            values = arr[box]
            if name in (schema.PARAM_ID, schema.DISTANCE):
                import xarray as xr

                dims = (schema.WEIGHT,) if name == schema.PARAM_ID else (
                    schema.ITERATION, schema.PARAM)
                check_values(xr.Dataset({name: (dims, values)},
                                        coords={schema.PARAM: np.arange(n_params)}), where)
    except CorruptRunError as err:
        return str(err)
    return None
