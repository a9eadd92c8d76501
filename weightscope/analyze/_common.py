"""Helpers shared by the analyzers: parameter lookup, snapshot grids, time-series blocks,
and the finite prefix of a diverged run."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from .. import schema
from .._validate import check_fraction, check_int
from ..errors import AnalysisError, ConfigError, DivergedRunWarning, arg, hint
from ..store import reader

__all__ = ["as_slice", "every", "finite_prefix", "largest_param", "param_weights", "progress",
           "time_blocks", "validate_bins", "validate_keep"]

#: Fraction of non-finite weights in a run's last snapshot from which it counts as diverged.
DIVERGED = 0.5

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


def finite_prefix(ds: xr.Dataset, label: str = "run") -> xr.Dataset:
    """``ds`` up to its last all-finite snapshot if the run diverged, else ``ds`` itself.

    A run *diverged* when at least half of the recorded weights of its last snapshot are not
    finite (NaN or Inf), as a NaN loss leaves it. Its snapshots up to the last one without any
    non-finite weight are kept (and its iterations up to that step), with a
    :class:`~weightscope.errors.DivergedRunWarning`. Fewer non-finite weights (isolated ones)
    are left to each analyzer, which excludes and counts them. A run whose
    ``nonfinite_count`` attribute is 0 is returned without reading its weights.

    Raises
    ------
    AnalysisError
        The run diverged and no snapshot is all finite.

    Examples
    --------
    >>> from weightscope.testing import synthetic_run
    >>> nan = float("nan")
    >>> ds = synthetic_run([[0.1, 0.2], [0.3, 0.4], [nan, 0.5], [nan, 0.6]], every=10)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     finite_prefix(ds, "demo")[schema.STEP].values.tolist()
    [0, 10]
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    run 'demo' diverged: 50% of the weights of its last snapshot (step 30) are NaN or Inf;
    analyzing its 2 snapshot(s) up to step 10, the last with finite weights only.
    """
    n = int(ds.sizes[schema.STEP])
    if n == 0 or int(ds.attrs.get(schema.NONFINITE, 1) or 0) == 0:
        return ds
    last = np.asarray(ds[schema.W].isel({schema.STEP: -1}).values)
    bad = float((~np.isfinite(last)).mean()) if last.size else 0.0
    if bad < DIVERGED:
        return ds
    steps = np.asarray(ds[schema.STEP].values)
    finite = np.flatnonzero(~np.asarray((~np.isfinite(ds[schema.W])).any(schema.WEIGHT)))
    if finite.size == 0:
        raise AnalysisError(f"run {label!r} holds no snapshot with finite weights only (it "
                            "diverged before its first); nothing to analyze. Record the run "
                            "again with a smaller learning rate, or from an earlier checkpoint.")
    keep = int(finite[-1]) + 1
    warnings.warn(f"run {label!r} diverged: {bad:.0%} of the weights of its last snapshot (step "
                  f"{int(steps[-1])}) are NaN or Inf; analyzing its {keep} snapshot(s) up to "
                  f"step {int(steps[keep - 1])}, the last with finite weights only.",
                  DivergedRunWarning, stacklevel=3)
    cut = ds.isel({schema.STEP: slice(0, keep)})
    if schema.ITERATION in ds.dims:
        iterations = np.asarray(ds[schema.ITERATION].values)
        cut = cut.isel({schema.ITERATION: slice(0, int((iterations <= steps[keep - 1]).sum()))})
    return cut
