"""Open a run store as one lazy, dask-backed ``xarray.Dataset``.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from weightscope.store import Layout, RunWriter, open_run
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> wr = RunWriter.create(path, Layout.build(["fc.weight"], [(3,)], [np.arange(3)]),
...                       attrs={"every": 1})
>>> wr.write_snapshots(0, np.array([0, 1, 2]), np.zeros((3, 3), np.float32))
>>> wr.commit(valid_steps=2, valid_iterations=0)   # the third row is not committed yet
>>> ds = open_run(path)
>>> ds.sizes["step"], bool(ds.attrs["complete"])
(2, False)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr
import zarr

from .. import schema
from ..errors import NotARunError, SchemaError
from . import paths
from .integrity import corrupt_errors
from .metadata import capacities, check_arrays, check_values, committed_lengths
from .view import CommittedView

__all__ = ["READ_BLOCK_BYTES", "open_run"]

#: Most bytes of one whole-time column of ``w`` (every snapshot of a range of weights) that
#: one dask chunk of an opened run holds. The analyzers work on such columns; a run long
#: enough that a stored chunk's column is larger gets dask chunks that read evenly split parts
#: of the stored chunks, each straight from the store (no task holds a whole stored chunk for
#: a sibling block, so memory stays bounded; each stored chunk is read once per part).
READ_BLOCK_BYTES = 64 * 2**20


def open_run(
    path: paths.PathLike,
    *,
    storage_options: dict[str, Any] | None = None,
    chunks: dict[str, int] | None = None,
) -> xr.Dataset:
    """Open a recorded run lazily.

    The dataset holds exactly the snapshots and iterations committed so far: a run that is
    still being written (or crashed) is trimmed to its flushed prefix and has
    ``attrs["complete"] == False``. The arrays are read through a
    :class:`~weightscope.store.view.CommittedView`, so a run caught (or killed) while its
    arrays grow opens too. Each call reads the run's metadata afresh (for URLs the fsspec
    listing cache is cleared), so calling it again sees snapshots written since.

    Parameters
    ----------
    path : str or os.PathLike
        The run directory (``run.zarr``) or an fsspec URL (``s3://bucket/run.zarr``).
    storage_options : dict, optional
        fsspec options for URLs (credentials, endpoint_url...).
    chunks : dict, optional
        Dask chunks per dimension; default: the store's chunks, split evenly along
        ``weight`` in runs so long that a whole-time column of a stored chunk of ``w`` is
        larger than :data:`READ_BLOCK_BYTES`.

    Returns
    -------
    xarray.Dataset
        Variables and coordinates of DESIGN.md section 2 (``w``, ``step``, ``param``...).

    Raises
    ------
    RunNotFoundError
        Nothing exists at ``path`` (or its bucket does not exist).
    StorageAccessError
        The object store denied access (:mod:`weightscope.store.paths`).
    NotARunError
        ``path`` is not a weightscope run.
    SchemaError
        The run is malformed or of a newer format version.
    CorruptRunError
        The run's metadata breaks a rule of the format (:mod:`~weightscope.store.metadata`),
        or, when data is read, a chunk is damaged (:mod:`~weightscope.store.integrity`).
    """
    group = paths.open_group(path, "r", storage_options)
    attrs = dict(group.attrs)
    if not paths.is_run(group):
        raise NotARunError(
            f"'{path}' is a zarr group but not a weightscope run (no '{schema.FORMAT_ATTR}' "
            "attribute). Give the directory a weightscope Recorder wrote."
        )
    where = f"'{path}'"
    with paths.storage_errors(path), corrupt_errors(where):
        schema.check_format_version(attrs, where)
        committed = committed_lengths(attrs, capacities(dict(group.arrays())), where)
        view = CommittedView(group.store, committed)
        check_arrays(dict(zarr.open_group(view, mode="r", zarr_format=3).arrays()), attrs,
                     where)
        if chunks is None:
            chunks = _column_chunks(group, committed[schema.STEP])
        with warnings.catch_warnings():
            # splitting stored chunks is what _column_chunks asks for, on purpose
            warnings.filterwarnings("ignore", "The specified chunks separate the stored chunks")
            ds = xr.open_zarr(view, consolidated=False, zarr_format=3, chunks=chunks)
    ds = ds.set_coords([c for c in (schema.PARAM_ID, schema.INDEX) if c in ds])
    ds = ds.assign_coords({schema.PARAM: np.array([str(p) for p in ds[schema.PARAM].values])})
    ds.attrs = attrs
    try:
        schema.validate(ds)
    except SchemaError as err:
        raise type(err)(f"'{path}': {err}") from None
    return check_values(ds, where)


def _column_chunks(group: Any, steps: int) -> dict[str, int]:
    """Dask chunks: the stored ones, but along ``weight`` at most a whole-time column of
    :data:`READ_BLOCK_BYTES` (stored chunks split evenly, never merged)."""
    if schema.W not in group:
        return {}
    w = group[schema.W]
    stored = int(w.chunks[1])
    per_block = max(READ_BLOCK_BYTES // (max(steps, 1) * w.dtype.itemsize), 1)
    if per_block >= stored:
        return {}
    return {schema.WEIGHT: -(-stored // -(-stored // per_block))}

