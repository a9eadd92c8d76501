"""Decay time of every recorded weight, and its median per final-magnitude bin.

For one weight's series ``x_0 .. x_{T-1}`` on the uniform snapshot grid (steps ``0, k, 2k...``)
``rho(tau)`` is the Pearson correlation of ``x[0:T-tau]`` and ``x[tau:T]`` and ``Delta`` is the
smallest ``tau`` in ``1..max_lag`` with ``rho(tau) <= 0`` (paper section 2.3, DESIGN.md section
4). :func:`decay_time` reports ``Delta * every / last grid step``, a fraction of training;
:func:`decay_by_magnitude` gives its median and interquartile range in equal-count bins of the
final ``|w|`` (the paper's Figure 1, right).

:func:`decay_time` is lazy on dask-backed runs: it builds one task per block of weights, each
holding the whole time axis of its block (memory is bounded by the block, not the run), and
nothing is read until the caller computes the result. ``.compute()`` evaluates the values
and the ``censored`` coordinate in one pass over the data; ``.values`` alone computes only the
values (reading ``.censored`` afterwards would read the data again).

Examples
--------
>>> import numpy as np
>>> from weightscope.testing import synthetic_run
>>> t = np.arange(41)
>>> w = np.stack([np.cos(2 * np.pi * t / 20), t / 40], axis=1).astype(np.float32)
>>> dt = decay_time(synthetic_run(w, every=10))   # snapshots at steps 0, 10 .. 400
>>> dt.values.round(3).tolist(), dt.censored.values.tolist()
([0.125, 0.95], [False, True])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import AnalysisError, hint
from ._common import as_slice, every, largest_param, param_weights, time_blocks, validate_bins
from ._decay_kernel import check_max_lag, decay_kernel

__all__ = ["decay_by_magnitude", "decay_time"]

CENSORED = "censored"
BIN = "bin"


def decay_time(
    ds: xr.Dataset, param: str | None = None, max_lag: int | None = None
) -> xr.DataArray:
    """Decay time of every recorded weight, in fraction of training.

    Parameters
    ----------
    ds : xarray.Dataset
        A run as returned by :func:`weightscope.open_run`.
    param : str, optional
        Keep only the weights of this parameter (default: all, in store order).
    max_lag : int, optional
        Largest lag tried, in snapshots, in ``1..T-2`` (default ``T - 3``: windows of >= 3
        points), ``T`` the number of uniformly spaced snapshots.

    Returns
    -------
    xarray.DataArray
        ``decay_time`` (weight): ``Delta * every / last grid step``; NaN for constant or
        non-finite series. Coordinates ``param_id``, ``index`` and ``censored`` (True where no
        lag crossed: the value is ``max_lag`` in fraction units, a lower bound). Lazy (dask)
        when ``ds`` is; compute it with ``.compute()``.

    Raises
    ------
    ConfigError
        Unknown ``param`` or ``max_lag`` out of range.
    AnalysisError
        Fewer than ``schema.MIN_SNAPSHOTS`` (4) uniformly spaced snapshots, or a gap in the
        grid.

    Examples
    --------
    A weight oscillating with a period of 10 snapshots decorrelates after 3 of them:

    >>> import numpy as np
    >>> from weightscope.testing import synthetic_run
    >>> w = np.cos(2 * np.pi * np.arange(33) / 10)[:, None].astype(np.float32)
    >>> ds = synthetic_run(w, every=5, params={"fc.weight": 1})
    >>> float(decay_time(ds, param="fc.weight")[0])  # 3 snapshots of 32: 15 steps of 160
    0.09375
    """
    w, step_every, last = _grid_series(ds, param)
    lag = check_max_lag(w.sizes[schema.STEP], max_lag)
    data = time_blocks(w).data
    if hasattr(data, "map_blocks"):  # dask: one task per block of weights, whole time axis
        both = data.map_blocks(_kernel_block, lag, 1, chunks=((2,), data.chunks[1]),
                               dtype=np.float64, meta=np.empty((0, 0)))
    else:
        both = _kernel_block(np.asarray(data), lag, -1)
    coords = {k: v.variable for k, v in w.coords.items() if v.dims == (schema.WEIGHT,)}
    coords[CENSORED] = ((schema.WEIGHT,), both[1] > 0)
    out = xr.DataArray(both[0] * (step_every / last), dims=(schema.WEIGHT,), coords=coords,
                       name="decay_time")
    out.attrs = {"long_name": "decay time", "units": "fraction of training", "max_lag": lag,
                 schema.EVERY: step_every, "last_grid_step": last}
    if param is not None:
        out.attrs["param"] = param
    return out


def _kernel_block(x: np.ndarray, max_lag: int, workers: int) -> np.ndarray:
    """The kernel on a (step, weight) block: rows delta and censored (0/1) of a (2, n) array."""
    delta, censored = decay_kernel(x, max_lag, workers=workers)
    return np.stack([delta, censored.astype(np.float64)])


def grid_indices(ds: xr.Dataset) -> np.ndarray:
    """Indices of the snapshots on the run's uniform grid (steps that are multiples of
    ``every``), the ones the decay time uses; checkpoint snapshots in between are left out."""
    steps = np.asarray(ds[schema.STEP].values, dtype=np.int64)
    return np.flatnonzero(steps % every(ds) == 0)


def _grid_series(ds: xr.Dataset, param: str | None) -> tuple[xr.DataArray, int, int]:
    """``w`` on the uniform grid (off-grid snapshots dropped), ``every`` and the last step."""
    step_every = every(ds)
    on_grid = grid_indices(ds)
    grid = np.asarray(ds[schema.STEP].values, dtype=np.int64)[on_grid]
    if grid.size >= 2 and np.any(np.diff(grid) != step_every):
        gap = int(np.flatnonzero(np.diff(grid) != step_every)[0])
        raise AnalysisError(
            f"the uniform snapshot grid must have a step every {step_every}; got {grid[gap]} "
            f"then {grid[gap + 1]}. The run is missing snapshots: re-record it or open it again."
        )
    if grid.size < schema.MIN_SNAPSHOTS or grid[-1] <= 0:
        raise AnalysisError(
            f"the decay time needs at least {schema.MIN_SNAPSHOTS} uniformly spaced snapshots "
            f"(steps that are multiples of every={step_every}) ending after step 0; got steps "
            f"{grid.tolist()[:8]}. Record more steps or use a smaller `every`."
        )
    w = ds[schema.W].isel({schema.STEP: as_slice(on_grid)})
    if param is not None:
        w = w.isel({schema.WEIGHT: as_slice(param_weights(ds, param))})
    return w, step_every, int(grid[-1])


def decay_by_magnitude(
    ds: xr.Dataset, param: str | None = None, bins: int = 20
) -> xr.DataArray:
    """Median decay time per equal-count bin of final ``|w|``, within one parameter.

    Parameters
    ----------
    ds : xarray.Dataset
        A run as returned by :func:`weightscope.open_run`.
    param : str, optional
        The parameter; default: the one with the most recorded weights.
    bins : int
        Number of bins (>= 1). Weights are ranked by final ``|w|`` (the last snapshot, on or
        off the grid) and split into ``bins`` groups whose sizes differ by at most one.

    Returns
    -------
    xarray.DataArray
        ``decay_time_median`` (bin), in fraction of training, with coordinates ``q25``,
        ``q75`` (interquartile range), ``count``, ``censored`` (censored weights per bin),
        ``magnitude`` (median final ``|w|`` of the bin: its center), ``magnitude_lo`` and
        ``magnitude_hi`` (smallest and largest final ``|w|``: its edges). Weights whose decay
        time or final magnitude is NaN are left out; ``attrs["excluded_nan"]`` counts them.

    Raises
    ------
    ConfigError
        ``bins`` < 1 or unknown ``param``.
    AnalysisError
        Fewer usable weights than bins (and the errors of :func:`decay_time`).

    Examples
    --------
    >>> from weightscope.testing import random_walks, synthetic_run
    >>> ds = synthetic_run(random_walks(30, 8))   # 30 snapshots of 8 weights of "fc.weight"
    >>> decay_by_magnitude(ds, bins=2)["count"].values.tolist()
    [4, 4]
    """
    bins = validate_bins(bins)
    name = largest_param(ds) if param is None else param
    delta = decay_time(ds, param=name).compute()
    steps = np.asarray(ds[schema.STEP].values)
    final = ds[schema.W].isel({schema.STEP: int(np.argmax(steps)),
                               schema.WEIGHT: as_slice(param_weights(ds, name))})
    magnitude = np.abs(np.asarray(final.values, dtype=np.float64))
    usable = np.isfinite(delta.values) & np.isfinite(magnitude)
    if usable.sum() < bins:
        raise AnalysisError(
            f"{hint('bins', bins)} needs at least {bins} weights with a finite decay time and "
            f"final magnitude; parameter {name!r} has {int(usable.sum())} "
            f"({int((~usable).sum())} excluded as NaN). Pass at most "
            f"{hint('bins', max(1, int(usable.sum())))}."
        )
    return _binned(delta[usable], magnitude[usable], bins, name, int((~usable).sum()))


def _binned(
    delta: xr.DataArray, magnitude: np.ndarray, bins: int, param: str, excluded: int
) -> xr.DataArray:
    """Equal-count bins by rank of ``magnitude``; quantiles of ``delta`` per bin."""
    n = magnitude.size
    label = np.empty(n, dtype=np.int64)
    label[np.argsort(magnitude, kind="stable")] = np.arange(n) * bins // n
    table = xr.Dataset(
        {"delta": ((schema.WEIGHT,), delta.values), "mag": ((schema.WEIGHT,), magnitude),
         CENSORED: ((schema.WEIGHT,), delta[CENSORED].values.astype(np.int64))},
        coords={BIN: ((schema.WEIGHT,), label)},
    )
    groups = table.groupby(BIN)
    quart = groups.quantile([0.25, 0.5, 0.75])["delta"]
    mag = table["mag"].groupby(BIN)
    out = quart.sel(quantile=0.5, drop=True).rename("decay_time_median")
    coords: dict[str, Any] = {
        "q25": quart.sel(quantile=0.25, drop=True), "q75": quart.sel(quantile=0.75, drop=True),
        "count": groups.count()["delta"], CENSORED: groups.sum()[CENSORED],
        "magnitude": mag.median(), "magnitude_lo": mag.min(), "magnitude_hi": mag.max(),
    }
    out = out.assign_coords({k: v.variable for k, v in coords.items()})
    out.attrs = {**delta.attrs, "long_name": "median decay time", "param": param,
                 "bins": bins, "excluded_nan": excluded, "n_weights": n}
    return out
