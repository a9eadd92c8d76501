"""Active and inactive sets through training (paper section 2.1, Figure 1 left).

A weight is *active* at snapshot ``t`` when its magnitude stays at or above a threshold at
every snapshot from ``t`` to the end of training, and *inactive* when it stays below. The
threshold keeps a fraction ``keep`` of the weights by final magnitude (DESIGN.md section 4).

Examples
--------
>>> from weightscope.testing import synthetic_run
>>> w = [[0.1, 0.9, 0.5, 0.2],
...      [0.8, 0.1, 0.4, 0.3],
...      [0.9, 0.2, 0.1, 0.3]]
>>> sets = active_sets(synthetic_run(w, every=10), keep=0.25)   # steps 0, 10, 20
>>> sets.active.values.tolist(), sets.inactive.values.tolist()
([0.0, 0.0, 0.25], [0.5, 0.75, 0.75])
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import xarray as xr

from .. import schema
from ..errors import AnalysisError, ConfigError, arg, hint
from ._common import param_names, progress, validate_keep

__all__ = ["active_sets", "thresholds"]

SCOPES = ("param", "global")


def thresholds(final: np.ndarray, param_id: np.ndarray, n_params: int, keep: float,
               scope: str = "param") -> np.ndarray:
    """Magnitude threshold per parameter: the k-th largest final ``|w|``, ``k = ceil(keep n)``.

    Non-finite final values are ignored. With ``scope="global"`` every parameter gets the
    threshold of all recorded weights together. A parameter without finite values gets NaN.
    """
    mag = np.abs(np.asarray(final, dtype=np.float64))
    ok = np.isfinite(mag)
    if scope == "global":
        return np.full(n_params, _kth_largest(mag[ok], keep))
    return np.array([_kth_largest(mag[ok & (param_id == p)], keep) for p in range(n_params)])


def _kth_largest(values: np.ndarray, keep: float) -> float:
    n = values.size
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(keep * n - 1e-9))
    return float(np.partition(values, n - k)[n - k])


def active_sets(ds: xr.Dataset, keep: float = 0.25, scope: str = "param") -> xr.Dataset:
    """Fraction of recorded weights in the active and inactive sets at every snapshot.

    Parameters
    ----------
    ds : xarray.Dataset
        A run as returned by :func:`weightscope.open_run`.
    keep : float, default 0.25
        Fraction of weights kept for inference; the threshold of a parameter is its k-th
        largest final ``|w|`` with ``k = ceil(keep * n)``.
    scope : {"param", "global"}
        One threshold per parameter (default) or one for all recorded weights.

    Returns
    -------
    xarray.Dataset
        ``active`` (step) and ``inactive`` (step): fractions of the recorded weights, with a
        ``progress`` coordinate (step / last step) and ``threshold`` (param). Weights with a
        non-finite value anywhere are left out (``attrs["excluded_nan"]``). Computed eagerly
        in one pass over the stored chunks (a max-reduction over time: memory is a few
        chunks, not the run).
    """
    keep = validate_keep(keep)
    if scope not in SCOPES:
        raise ConfigError(f"{arg('scope')} must be one of {SCOPES}; got {scope!r}. "
                          f"Pass {hint('scope', 'param')}.")
    steps = np.asarray(ds[schema.STEP].values)
    if steps.size == 0:
        raise AnalysisError("the run holds no snapshot yet; record some steps first.")
    names = param_names(ds)
    pid = np.asarray(ds[schema.PARAM_ID].values)
    final = np.asarray(ds[schema.W].isel({schema.STEP: int(np.argmax(steps))}).values)
    thr = thresholds(final, pid, len(names), keep, scope)
    hist = _histograms(ds[schema.W], thr[pid].astype(np.float32))
    n_valid = int(hist[0].sum())
    if n_valid == 0:
        raise AnalysisError("every recorded weight has a non-finite value; nothing to analyze.")
    frac = np.cumsum(hist[:2, :-1], axis=1) / n_valid
    coords = {schema.STEP: steps, "progress": (schema.STEP, progress(steps))}
    out = xr.Dataset(
        {"active": (schema.STEP, frac[0], {"long_name": "active set", "units": "fraction"}),
         "inactive": (schema.STEP, frac[1], {"long_name": "inactive set", "units": "fraction"}),
         "threshold": (schema.PARAM, thr, {"long_name": "magnitude threshold"})},
        coords={**coords, schema.PARAM: names},
    )
    out.attrs = {"keep": keep, "scope": scope, "n_weights": n_valid,
                 "excluded_nan": int(pid.size - n_valid)}
    return out


def _histograms(w: xr.DataArray, thr: np.ndarray) -> np.ndarray:
    """Counts of weights by the snapshot from which they stay above / below (3, T + 1).

    Rows: active-from, inactive-from, and (row 2, column 0) the non-finite weights. The
    snapshot from which a weight stays above is one past the last snapshot where it was
    below: a max-reduction over time, so every stored chunk is read once, in place, with no
    rechunking (memory is a few chunks, whatever the run's length).
    """
    data = w.data
    n_steps = data.shape[0]
    if not isinstance(data, da.Array):
        return _histogram(_block_last(np.asarray(data), thr[None, :])[0], n_steps)
    thr_d = da.from_array(thr[None, :], chunks=((1,), data.chunks[1]))
    last = da.map_blocks(_block_last, data, thr_d, dtype=np.int64, new_axis=1,
                         chunks=((1,) * len(data.chunks[0]), (3,), data.chunks[1]))
    settled = last.max(axis=0)  # (3, weight): last snapshot below / above / non-finite flag
    hists = da.map_blocks(_histogram, settled, n_steps, dtype=np.int64,
                          chunks=((3,), (n_steps + 1,) * len(data.chunks[1])))
    return hists.reshape(3, len(data.chunks[1]), n_steps + 1).sum(axis=1).compute()


def _block_last(x: np.ndarray, thr: np.ndarray,
                block_info: dict | None = None) -> np.ndarray:
    """For a (step, weight) block: 1 + the last snapshot below / above, and a NaN flag."""
    t0 = 0 if block_info is None else block_info[0]["array-location"][0][0]
    stamp = np.arange(t0 + 1, t0 + 1 + x.shape[0], dtype=np.int64)[:, None]
    mag = np.abs(x)
    below = np.where(mag < thr, stamp, 0).max(axis=0)
    above = np.where(mag >= thr, stamp, 0).max(axis=0)
    bad = (~np.isfinite(x)).any(axis=0).astype(np.int64)
    return np.stack([below, above, bad])[None]


def _histogram(settled: np.ndarray, n_steps: int) -> np.ndarray:
    """Histogram of the active-from / inactive-from snapshots of the finite weights."""
    below, above, bad = settled
    ok = bad == 0
    out = np.zeros((3, n_steps + 1), dtype=np.int64)
    out[0] = np.bincount(below[ok], minlength=n_steps + 1)  # active from 1 + last below
    out[1] = np.bincount(above[ok], minlength=n_steps + 1)  # inactive from 1 + last above
    out[2, 0] = int((~ok).sum())
    return out
