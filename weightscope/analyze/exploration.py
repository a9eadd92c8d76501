"""Search-space exploration of a sparse run (paper section 3; In-Time Over-Parameterization).

Three measurements of how much of the weight space a sparse run searched:

* ``explored_fraction`` (iteration): elements that have participated (mask 1) at any step
  so far, over all elements of the sparse layers (ITOP's ``R_s``), from the ``explored``
  counts the Recorder stores every optimizer step;
* ``flip_rate`` (iteration): elements whose mask changed at that step (``flips``) over the
  elements participating when the step began (up to 2 when every participating element is
  swapped for another);
* ``mask_distance`` (step): the Hamming distance of each snapshot's mask to the final
  snapshot's, over the recorded elements of the sparse layers (the early-bird criterion: it
  reaches 0 once the mask has settled), from the stored ``mask`` snapshots.

A *sparse layer* is a recorded parameter with a mask: one whose ``flips`` are recorded (not
NaN), or, in a run recorded before ``flips`` existed, one whose stored mask is 0 somewhere.

*Participating* counts (the flip rate's denominator) come from the stored masks: the number
of set mask elements of the latest snapshot taken before the step (at step ``s - 1`` or
earlier; the first snapshot for steps before it). Every method of :mod:`weightscope.sparse`
keeps that number fixed per layer, so the count is exact; ``attrs["participating"]`` says
``"exact"`` when every snapshot agrees and every element is recorded, and otherwise how the
count was estimated (a sampled run scales the recorded mask to ``numel``).

Examples
--------
>>> import numpy as np
>>> from weightscope.testing import synthetic_run
>>> mask = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]]           # steps 0, 1, 2
>>> ds = synthetic_run(np.ones((3, 4)), mask=mask, flips=[[2], [0]], explored=[[3], [3]])
>>> ex = exploration(ds)
>>> ex.explored_fraction.values.tolist(), ex.flip_rate.values.tolist()
([0.75, 0.75], [1.0, 0.0])
>>> ex.mask_distance.values.tolist()
[0.5, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import AnalysisError, ConfigError, arg, hint
from ._common import param_names, progress
from ._mask_kernel import run_mask_counts
from .figure1 import _plain

__all__ = ["SCOPES", "SETTLED_TOLERANCE", "exploration", "exploration_summary"]

SCOPES = ("all", "param")
#: Mask distance below which :func:`exploration_summary` calls the mask settled.
SETTLED_TOLERANCE = 0.01

_ATTRS = {
    "explored_fraction": {"long_name": "explored fraction (ever participated)",
                          "units": "fraction of weights"},
    "flip_rate": {"long_name": "mask flip rate",
                  "units": "flips per participating weight per step"},
    "mask_distance": {"long_name": "mask distance to the final mask",
                      "units": "fraction of recorded weights"},
}


def exploration(ds: xr.Dataset, scope: str = "all", require_counts: bool = True
                ) -> xr.Dataset:
    """Explored fraction, flip rate and mask distance of a sparse run.

    Parameters
    ----------
    ds : xarray.Dataset
        A sparse run as returned by :func:`weightscope.open_run`.
    scope : {"all", "param"}
        The sparse layers together (default) or one curve per sparse layer (dim ``param``).
    require_counts : bool, default True
        Raise when the run lacks the per-step ``flips``/``explored`` counts (recorded before
        they existed). With False such a run gets ``mask_distance`` alone
        (``attrs["counts_recorded"]`` is False).

    Returns
    -------
    xarray.Dataset
        ``explored_fraction`` and ``flip_rate`` (iteration[, param]) with an
        ``iteration_progress`` coordinate (iteration / last iteration), ``mask_distance``
        (step[, param]) with ``step_progress`` (step / last step); ``attrs``: ``scope``,
        ``sparse_params``, ``counts_recorded``, ``participating``. The masks are read block
        by block (dask), once; ``explored_fraction`` and ``flip_rate`` are lazy when ``ds``
        is dask-backed.

    Raises
    ------
    AnalysisError
        The run has no sparse layer (a dense run), no snapshot, or (with
        ``require_counts=True``) no ``flips``/``explored`` counts.
    """
    if scope not in SCOPES:
        raise ConfigError(f"{arg('scope')} must be one of {SCOPES}; got {scope!r}. "
                          f"Pass {hint('scope', 'all')}.")
    has_counts = schema.FLIPS in ds and schema.EXPLORED in ds
    if schema.MASK not in ds and not has_counts:
        raise AnalysisError(_DENSE)
    if not has_counts and require_counts:
        raise AnalysisError(_OLD_RUN)
    masks = _MaskCounts.of(ds)
    sparse = _sparse_params(ds, masks, has_counts)
    out = xr.Dataset({"mask_distance": masks.distance(sparse, scope)})
    if has_counts:
        out = out.merge(_counts(ds, masks, sparse, scope))
    out.attrs = {"scope": scope, "sparse_params": [n for n, s in zip(param_names(ds), sparse)
                                                   if s],
                 "counts_recorded": has_counts, "participating": masks.note}
    return out


_DENSE = ("exploration needs a sparse run (a model sparsified with weightscope.sparse.sparsify "
          "before its Recorder was created); this run has no sparse layer (no 'mask' and no "
          "'flips'). Record a sparse run, or analyze this one with search_distance and "
          "active_sets.")
_OLD_RUN = ("exploration needs the per-step 'flips' and 'explored' counts; this sparse run was "
            "recorded without them (an older weightscope). Pass "
            f"{hint('require_counts', False)} to get its mask_distance alone, or record the "
            "run again.")


class _MaskCounts:
    """The run's mask counts per snapshot and parameter (one pass over ``mask``)."""

    def __init__(self, ds: xr.Dataset, counts: np.ndarray) -> None:
        names = param_names(ds)
        self.steps = np.asarray(ds[schema.STEP].values)
        self.numel = np.asarray(ds[schema.NUMEL].values, dtype=np.float64)
        self.recorded = np.bincount(np.asarray(ds[schema.PARAM_ID].values),
                                    minlength=len(names)).astype(np.float64)
        self.names = names
        self.differ, self.ones = counts[:, 0], counts[:, 1]  # (snapshots, params)
        self.note = ""

    @classmethod
    def of(cls, ds: xr.Dataset) -> _MaskCounts:
        steps = np.asarray(ds[schema.STEP].values)
        if steps.size == 0 or schema.MASK not in ds:
            where = "no snapshot yet" if steps.size == 0 else "no 'mask' snapshots"
            raise AnalysisError(f"exploration reads the stored masks; this run has {where}. "
                                "Record some steps (snapshots store the masks) first.")
        pid = np.asarray(ds[schema.PARAM_ID].values)
        n = ds.sizes[schema.PARAM]
        return cls(ds, run_mask_counts(ds[schema.MASK].data, int(np.argmax(steps)), pid, n))

    def distance(self, sparse: np.ndarray, scope: str) -> xr.DataArray:
        """Hamming distance to the final mask over the recorded elements."""
        differ, recorded = self.differ[:, sparse], self.recorded[sparse]
        if scope == "all":
            values, dims = differ.sum(axis=1) / recorded.sum(), (schema.STEP,)
        else:
            values, dims = differ / recorded, (schema.STEP, schema.PARAM)
        coords = _coords(self.names, sparse, scope, schema.STEP, self.steps)
        return xr.DataArray(values, dims=dims, coords=coords, name="mask_distance",
                            attrs=_ATTRS["mask_distance"])

    def participating(self, iterations: np.ndarray, sparse: np.ndarray, scope: str
                      ) -> np.ndarray:
        """Set mask elements of the sparse layers when each step began: (iterations[, params])."""
        ones, recorded, numel = self.ones[:, sparse], self.recorded[sparse], self.numel[sparse]
        scaled = ones * (numel / np.maximum(recorded, 1))
        if scope == "all":
            scaled = scaled.sum(axis=1)
        order = np.argsort(self.steps, kind="stable")
        row = np.searchsorted(self.steps[order], iterations - 1, side="right") - 1
        constant = bool((ones == ones[:1]).all())
        full = bool((recorded == numel).all())
        self.note = "exact" if constant and full else "; ".join(
            [*([] if constant else ["the latest snapshot's count (it changes between "
                                    "snapshots)"]),
             *([] if full else ["scaled from the recorded sample of the mask to numel"])])
        return scaled[order[np.maximum(row, 0)]]


def _sparse_params(ds: xr.Dataset, masks: _MaskCounts, has_counts: bool) -> np.ndarray:
    """Which parameters are sparse layers (see the module docstring)."""
    if has_counts and ds.sizes[schema.ITERATION]:
        sparse = np.asarray(np.isfinite(ds[schema.FLIPS]).any(schema.ITERATION).values)
    else:
        sparse = (masks.ones < masks.recorded).any(axis=0)
    if not sparse.any():
        raise AnalysisError(_DENSE)
    return sparse


def _coords(names: list[str], sparse: np.ndarray, scope: str, dim: str,
            values: np.ndarray) -> dict[str, Any]:
    coords: dict[str, Any] = {dim: values, f"{dim}_progress": (dim, progress(values))}
    if scope == "param":
        coords[schema.PARAM] = [n for n, s in zip(names, sparse) if s]
    return coords


def _counts(ds: xr.Dataset, masks: _MaskCounts, sparse: np.ndarray, scope: str
            ) -> xr.Dataset:
    """``explored_fraction`` and ``flip_rate`` from the per-step counts (lazy when ``ds`` is
    dask-backed: a long run's counts are never read whole)."""
    iterations = np.asarray(ds[schema.ITERATION].values)
    take = {schema.PARAM: np.flatnonzero(sparse)}
    flips = ds[schema.FLIPS].isel(take).astype(np.float64)
    explored = ds[schema.EXPLORED].isel(take).astype(np.float64)
    numel = xr.DataArray(masks.numel[sparse], dims=schema.PARAM)
    dims: tuple[str, ...] = (schema.ITERATION, schema.PARAM)
    if scope == "all":
        flips, explored = (a.sum(schema.PARAM, skipna=False) for a in (flips, explored))
        numel, dims = numel.sum(), (schema.ITERATION,)
    part = xr.DataArray(masks.participating(iterations, sparse, scope), dims=dims)
    values = {"explored_fraction": explored / numel,
              "flip_rate": (flips / part.where(part > 0)).transpose(*dims)}
    coords = _coords(masks.names, sparse, scope, schema.ITERATION, iterations)
    return xr.Dataset({k: xr.DataArray(v.data, dims=dims, coords=coords, attrs=_ATTRS[k])
                       for k, v in values.items()})


def exploration_summary(ex: xr.Dataset, tolerance: float = SETTLED_TOLERANCE
                        ) -> dict[str, Any]:
    """The numbers behind an :func:`exploration` of ``scope="all"``, as plain JSON types.

    ``final_explored_fraction``, ``mean_flip_rate`` (over steps), and of the mask distance:
    its first value, its values at 10 / 25 / 50 / 75 % of training, and
    ``settled_at_progress``, the training progress from which it stays <= ``tolerance``
    (None where counts or snapshots are missing). NaN becomes None.

    Examples
    --------
    >>> import numpy as np
    >>> from weightscope.testing import synthetic_run
    >>> ds = synthetic_run(np.ones((3, 2)), mask=[[1, 0], [0, 1], [0, 1]],
    ...                    flips=[[2], [0]], explored=[[2], [2]])
    >>> s = exploration_summary(exploration(ds))
    >>> s["final_explored_fraction"], s["mean_flip_rate"], s["mask_distance"]["settled_at_progress"]
    (1.0, 1.0, 0.5)
    """
    if ex.attrs.get("scope") != "all":
        raise ConfigError(f"exploration_summary needs exploration(..., scope='all'); got "
                          f"scope={ex.attrs.get('scope')!r}. Pass the default scope.")
    dist = ex["mask_distance"]
    prog, d = dist["step_progress"].values, dist.values
    above = np.flatnonzero(~(d <= tolerance))
    settled = (None if above.size and above[-1] == d.size - 1 else
               float(prog[above[-1] + 1]) if above.size else float(prog[0]))
    out: dict[str, Any] = {
        "sparse_params": list(ex.attrs.get("sparse_params", [])),
        "counts_recorded": bool(ex.attrs.get("counts_recorded", False)),
        "participating": ex.attrs.get("participating", ""),
        "final_explored_fraction": None, "mean_flip_rate": None,
        "mask_distance": {
            "initial": float(d[0]), "tolerance": tolerance, "settled_at_progress": settled,
            "at_progress": {f"{int(p * 100)}%": float(np.interp(p, prog, d))
                            for p in (0.1, 0.25, 0.5, 0.75)}}}
    if "explored_fraction" in ex and ex.sizes[schema.ITERATION]:
        out["final_explored_fraction"] = float(ex["explored_fraction"].values[-1])
        rate = ex["flip_rate"].values
        out["mean_flip_rate"] = float(np.nanmean(rate)) if np.isfinite(rate).any() else None
    return _plain(out)

