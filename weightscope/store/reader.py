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

from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import NotARunError, SchemaError
from . import paths

__all__ = ["open_run"]


def open_run(
    path: paths.PathLike,
    *,
    storage_options: dict[str, Any] | None = None,
    chunks: dict[str, int] | None = None,
) -> xr.Dataset:
    """Open a recorded run lazily.

    The dataset holds exactly the snapshots and iterations committed so far: a run that is
    still being written (or crashed) is trimmed to its flushed prefix and has
    ``attrs["complete"] == False``.

    Parameters
    ----------
    path : str or os.PathLike
        The run directory (``run.zarr``) or an fsspec URL (``s3://bucket/run.zarr``).
    storage_options : dict, optional
        fsspec options for URLs (credentials, endpoint_url...).
    chunks : dict, optional
        Dask chunks per dimension; default: the store's chunks.

    Returns
    -------
    xarray.Dataset
        Variables and coordinates of DESIGN.md section 2 (``w``, ``step``, ``param``...).

    Raises
    ------
    RunNotFoundError
        Nothing exists at ``path``.
    NotARunError
        ``path`` is not a weightscope run.
    SchemaError
        The run is malformed or of a newer format version.
    """
    group = paths.open_group(path, "r", storage_options)
    attrs = dict(group.attrs)
    if not paths.is_run(group):
        raise NotARunError(
            f"'{path}' is a zarr group but not a weightscope run (no '{schema.FORMAT_ATTR}' "
            "attribute). Give the directory a weightscope Recorder wrote."
        )
    schema.check_format_version(attrs, f"'{path}'")
    ds = xr.open_zarr(group.store, consolidated=False, zarr_format=3,
                      chunks={} if chunks is None else chunks)
    ds = _trim(ds, attrs)
    ds = ds.set_coords([c for c in (schema.PARAM_ID, schema.INDEX) if c in ds])
    ds = ds.assign_coords({schema.PARAM: np.array([str(p) for p in ds[schema.PARAM].values])})
    ds.attrs = attrs
    try:
        schema.validate(ds)
    except SchemaError as err:
        raise SchemaError(f"'{path}': {err}") from None
    return ds


def _trim(ds: xr.Dataset, attrs: dict[str, Any]) -> xr.Dataset:
    """Keep only the committed rows along ``step`` and ``iteration``."""
    sizes = {schema.STEP: schema.VALID_STEPS, schema.ITERATION: schema.VALID_ITERATIONS}
    return ds.isel({dim: slice(0, int(attrs.get(key, 0))) for dim, key in sizes.items()
                    if dim in ds.dims})
