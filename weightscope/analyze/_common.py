"""Helpers shared by the analyzers: parameter lookup, snapshot grids, time-series blocks."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import schema
from .._validate import check_fraction, check_int
from ..errors import AnalysisError, ConfigError, arg, hint
from ..store import reader

__all__ = ["as_slice", "every", "largest_param", "param_weights", "progress", "time_blocks",
           "validate_bins", "validate_keep"]

# The analyzers hold one (whole time axis x weights) block at a time, of at most
# :data:`weightscope.store.reader.READ_BLOCK_BYTES` (the width of the columns an opened run
# reads, so blocks line up with them). Each dask worker thread works on one block; assembling
# it from stored chunks and the kernel's temporaries take about three times this, so an
# analysis needs about ``3 * READ_BLOCK_BYTES`` per thread whatever the run's size. Lower that
# constant for very long runs on small machines before opening them.


def every(ds: xr.Dataset) -> int:
    """The run's snapshot interval (its ``every`` attribute)."""
    from ..config import RecorderConfig

    return RecorderConfig.from_dict(ds.attrs, error=AnalysisError).every


def param_names(ds: xr.Dataset) -> list[str]:
    """Recorded parameter names, in store order."""
    return [str(p) for p in ds[schema.PARAM].values]


def param_weights(ds: xr.Dataset, param: str, none: str = "all weights") -> np.ndarray:
    """Positions along ``weight`` of the recorded weights of ``param``.

    ``none`` says what the caller does without a ``param`` (for the fix of an unknown name).
    """
    names = param_names(ds)
    if param not in names:
        raise ConfigError(
            f"{arg('param')} must be one of the recorded parameters {names}; got {param!r}. "
            f"Pass one of those names, e.g. {hint('param', names[0])} (or "
            f"{hint('param', None)} for {none})."
        )
    return np.flatnonzero(np.asarray(ds[schema.PARAM_ID].values) == names.index(param))


def largest_param(ds: xr.Dataset) -> str:
    """The parameter with the most recorded weights."""
    names = param_names(ds)
    counts = np.bincount(np.asarray(ds[schema.PARAM_ID].values), minlength=len(names))
    return names[int(np.argmax(counts))]


def as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A slice for a run of consecutive positions (cheap on dask), else the positions."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def validate_keep(keep: float) -> float:
    """``keep`` must be a fraction in (0, 1)."""
    return check_fraction(keep, f"{arg('keep')} is the fraction of weights kept for inference "
                          "and must be in (0, 1)", fix=f"Pass e.g. {hint('keep', 0.25)}.")


def validate_bins(bins: int) -> int:
    """``bins`` must be an integer >= 1."""
    return check_int(bins, f"{arg('bins')} must be an integer >= 1",
                     fix=f"Pass e.g. {hint('bins', 20)}.")


def progress(steps: np.ndarray) -> np.ndarray:
    """Training progress of each step: ``step / last step`` (0 when the run has one step)."""
    steps = np.asarray(steps, dtype=np.float64)
    last = steps.max() if steps.size else 0.0
    return steps / last if last > 0 else np.zeros_like(steps)


def time_blocks(w: xr.DataArray) -> xr.DataArray:
    """``w`` (step, weight) rechunked to whole time axes in blocks of about ``READ_BLOCK_BYTES``.

    Blocks are made of whole stored chunk columns when a column fits (so each stored chunk
    is read once and no piece of it waits for a sibling block), and split stored chunks
    evenly only when a single column is larger than ``READ_BLOCK_BYTES``.
    """
    if not hasattr(w.data, "rechunk"):
        return w
    n_steps = max(int(w.sizes[schema.STEP]), 1)
    per_block = max(reader.READ_BLOCK_BYTES // (n_steps * w.dtype.itemsize), 1)
    stored = int(max(w.data.chunks[1]))
    if per_block >= stored:
        width = stored * (per_block // stored)
    else:
        width = -(-stored // -(-stored // per_block))
    return w.chunk({schema.STEP: -1, schema.WEIGHT: width})
