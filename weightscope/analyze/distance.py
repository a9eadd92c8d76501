"""Search distance: how far training travels in weight space (paper section 2.2).

``D(s) = sum_{s' <= s} sum_w |w(s') - w(s'-1)|`` over all recorded conv/linear weights, from
the exact per-step distances the Recorder measured (snapshots every k steps would
under-count it). A step whose distance is unknown for a parameter (the Recorder stores NaN
where a weight was NaN or infinite before or after it) is a gap: ``D`` is NaN there and
counts only the known per-parameter steps (after a gap it is a lower bound);
:func:`unknown_steps` counts the gaps. Figure 1 (middle) compares a family of runs of one
architecture whose weight counts differ: total distance (normalized by the largest) against
the weights added beyond the smallest run.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from weightscope import schema
>>> ds = xr.Dataset(
...     {schema.DISTANCE: ((schema.ITERATION, schema.PARAM), [[1.0, 2.0], [0.5, 0.5]])},
...     coords={schema.ITERATION: [1, 2], schema.PARAM: ["a.weight", "b.weight"]})
>>> search_distance(ds).values.tolist()
[3.0, 4.0]
>>> nan = float("nan")
>>> ds[schema.DISTANCE][0, 1] = nan
>>> curve = search_distance(ds)
>>> curve.values.tolist(), unknown_steps(curve)
([nan, 2.0], 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .. import schema
from ..errors import AnalysisError
from ._common import param_names, progress

__all__ = ["distance_vs_weights", "participating_weights", "search_distance", "unknown_steps"]


def search_distance(ds: xr.Dataset, per_param: bool = False) -> xr.DataArray:
    """Cumulative search distance over optimizer steps.

    Parameters
    ----------
    ds : xarray.Dataset
        A run recorded with ``track_distance=True`` (the default).
    per_param : bool, default False
        Keep one curve per recorded parameter instead of their sum.

    Returns
    -------
    xarray.DataArray
        ``search_distance`` (iteration[, param]) with a ``progress`` coordinate
        (iteration / last iteration). NaN at the steps whose distance is unknown (for some
        parameter, or for that parameter with ``per_param``): the gaps; elsewhere the sum
        of the known steps so far. Lazy when ``ds`` is dask-backed.
    """
    if schema.DISTANCE not in ds:
        raise AnalysisError(
            "this run has no 'distance': it was recorded with track_distance=False. Record it "
            "again with track_distance=True (the default) to analyze search distance."
        )
    d = ds[schema.DISTANCE]
    d = d.where(np.isfinite(d))  # infinite: stored before steps were flagged NaN; unknown too
    unknown = d.isnull()
    if not per_param:
        unknown = unknown.any(schema.PARAM)
        d = d.sum(schema.PARAM, skipna=True)
    iterations = np.asarray(ds[schema.ITERATION].values)
    out = d.fillna(0.0).cumsum(schema.ITERATION).where(~unknown).rename("search_distance")
    out = out.assign_coords(progress=(schema.ITERATION, progress(iterations)))
    out.attrs = {"long_name": "cumulative search distance", "units": "sum of |Δw|"}
    return out


def unknown_steps(curve: xr.DataArray) -> int:
    """Steps of unknown distance (the gaps, NaN) in a curve of :func:`search_distance`."""
    return int(curve.isnull().sum())


def participating_weights(ds: xr.Dataset) -> int:
    """Elements of the recorded parameters that take part in training.

    Dense runs: every element (``numel``). Sparse runs: ``numel`` times the fraction of the
    recorded elements of each parameter whose ``mask`` is set at the last snapshot.
    """
    numel = np.asarray(ds[schema.NUMEL].values, dtype=np.float64)
    if schema.MASK not in ds or ds.sizes[schema.STEP] == 0:
        return int(numel.sum())
    mask = np.asarray(ds[schema.MASK].isel({schema.STEP: -1}).values, dtype=np.float64)
    pid = np.asarray(ds[schema.PARAM_ID].values)
    frac = np.bincount(pid, mask, len(numel)) / np.maximum(np.bincount(pid, None, len(numel)), 1)
    return round(float((numel * frac).sum()))


def distance_vs_weights(runs: Sequence[xr.Dataset], labels: Sequence[str] | None = None
                        ) -> xr.Dataset:
    """Total search distance against weights added, for runs of one architecture.

    Parameters
    ----------
    runs : sequence of xarray.Dataset
        Runs of one architecture (same recorded parameter names) with different widths or
        densities.
    labels : sequence of str, optional
        A name per run (default ``run0``, ``run1``...).

    Returns
    -------
    xarray.Dataset
        Over dim ``run`` sorted by weight count: ``weights`` (participating elements),
        ``added`` (weights minus the smallest run's), ``total_distance`` and
        ``normalized_distance`` (total / the largest total) and ``unknown_steps`` (steps
        of unknown distance: the total counts the known ones, a lower bound).
    """
    if not runs:
        raise AnalysisError("distance_vs_weights needs at least one run; got none.")
    labels = list(labels) if labels is not None else [f"run{i}" for i in range(len(runs))]
    _check_same_architecture(runs, labels)
    weights = np.array([participating_weights(ds) for ds in runs], dtype=np.int64)
    curves = [search_distance(ds).compute() for ds in runs]
    totals = np.array([_total(c) for c in curves])
    unknown = np.array([unknown_steps(c) for c in curves], dtype=np.int64)
    order = np.argsort(weights, kind="stable")
    weights, totals, unknown = weights[order], totals[order], unknown[order]
    peak = np.nanmax(totals) if np.isfinite(totals).any() else np.nan
    return xr.Dataset(
        {"weights": ("run", weights, {"long_name": "participating weights"}),
         "added": ("run", weights - weights[0], {"long_name": "weights added"}),
         "total_distance": ("run", totals, {"long_name": "total search distance"}),
         "normalized_distance": ("run", totals / peak,
                                 {"long_name": "normalized distance", "units": "1"}),
         "unknown_steps": ("run", unknown, {"long_name": "steps of unknown distance"})},
        coords={"run": [labels[i] for i in order]},
    )


def _total(curve: xr.DataArray) -> float:
    """The last known value of a cumulative curve (0 without steps, NaN without known ones)."""
    if curve.size == 0:
        return 0.0
    known = curve.values[~np.isnan(curve.values)]
    return float(known[-1]) if known.size else float("nan")


def _check_same_architecture(runs: Sequence[xr.Dataset], labels: Sequence[str]) -> None:
    reference = param_names(runs[0])
    for ds, label in zip(runs[1:], labels[1:]):
        names = param_names(ds)
        if names != reference:
            extra = sorted(set(names) ^ set(reference)) or names
            raise AnalysisError(
                f"runs compared for search distance must share one architecture (the same "
                f"recorded parameters); {labels[0]!r} and {label!r} differ in {extra[:6]}. "
                "Pass runs of one model family only."
            )
