"""Everything behind the paper's Figure 1, computed once for the plot and the summary.

Left: active/inactive sets of the largest run. Middle: with one run, its normalized
cumulative search distance against training progress; with several runs of one architecture,
total distance (normalized by the largest) against weights added. Right: median decay time
(with interquartile range) per equal-count bin of final ``|w|`` of one parameter of the
largest run. A bin's median is censored (a lower bound, :func:`censored_bins`) when most of its
weights never decorrelated within the longest lag the run allows (:func:`decay_cap`); the
summary counts them and says how to measure them. With ``require_decay=False`` a run too short
for decay times still gets the left and middle panels (``decay`` is None and
``decay_missing`` says why).

Examples
--------
>>> import os, tempfile, torch, weightscope as ws
>>> from weightscope.analyze import figure1_data, summary
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> model = torch.nn.Linear(32, 32)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> with ws.Recorder(path, model, every=1) as rec:
...     _ = rec.attach(opt)
...     for _ in range(12):
...         opt.zero_grad(); model(torch.randn(8, 32)).pow(2).mean().backward(); opt.step()
>>> data = figure1_data([ws.open_run(path)], bins=4)
>>> summary(data)["active_sets"]["final_active"]
0.25
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from ..errors import AnalysisError, IncompleteRunWarning
from ..schema import MIN_SNAPSHOTS  # re-exported: the rule is the schema's
from ._common import finite_prefix, largest_param, param_weights, validate_bins, validate_keep
from .decay import decay_by_magnitude, grid_indices
from .distance import distance_vs_weights, participating_weights, search_distance, unknown_steps
from .sets import active_sets

__all__ = ["MIN_SNAPSHOTS", "SET_PROGRESS", "Figure1Data", "censored_bins", "decay_cap",
           "figure1_data", "sets_at", "summary"]

#: Training progress at which the summary gives the active and inactive fractions.
SET_PROGRESS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
#: Fewest snapshots of a run drawn without its decay panel (``require_decay=False``).
MIN_SNAPSHOTS_PARTIAL = 2


@dataclass(frozen=True)
class Figure1Data:
    """The numbers behind the three panels (see the module docstring)."""

    labels: tuple[str, ...]
    primary: str
    sets: xr.Dataset
    distance: xr.DataArray
    family: xr.Dataset | None
    decay: xr.DataArray | None
    keep: float
    incomplete: tuple[str, ...]
    decay_missing: str = ""
    diverged: tuple[str, ...] = ()


def figure1_data(runs: Sequence[xr.Dataset], keep: float = 0.25, scope: str = "param",
                 param: str | None = None, bins: int = 20,
                 labels: Sequence[str] | None = None,
                 on_phase: Callable[[str], None] | None = None,
                 require_decay: bool = True) -> Figure1Data:
    """Compute the three panels of Figure 1 for one run or a family of runs.

    Parameters
    ----------
    runs : sequence of xarray.Dataset
        Runs opened with :func:`weightscope.open_run`; several runs must share one
        architecture (they make the middle panel).
    keep, scope : float, str
        Threshold of the active/inactive sets (:func:`active_sets`).
    param : str, optional
        Parameter of the right panel (default: the largest recorded one).
    bins : int
        Equal-count bins of final ``|w|`` in the right panel.
    labels : sequence of str, optional
        Run names (default ``run0``...).
    on_phase : callable, optional
        Called with a short description before each phase (for progress displays).
    require_decay : bool, default True
        False: a run with fewer than :data:`MIN_SNAPSHOTS` uniformly spaced snapshots (but at
        least :data:`MIN_SNAPSHOTS_PARTIAL`) gets ``decay=None`` and ``decay_missing`` (why)
        instead of an AnalysisError.

    Warns
    -----
    IncompleteRunWarning
        For a run that was not closed: it is analyzed up to its last stored snapshot.
    DivergedRunWarning
        For a run that diverged: it is analyzed up to its last all-finite snapshot
        (:func:`~weightscope.analyze._common.finite_prefix`).
    """
    keep = validate_keep(keep)
    validate_bins(bins)
    phase = on_phase or (lambda _: None)
    labels = tuple(labels) if labels is not None else tuple(f"run{i}" for i in range(len(runs)))
    cut = [finite_prefix(ds, lab) for ds, lab in zip(runs, labels)]
    diverged = tuple(lab for ds, c, lab in zip(runs, cut, labels) if c is not ds)
    runs = cut
    _check_runs(runs, labels, MIN_SNAPSHOTS if require_decay else MIN_SNAPSHOTS_PARTIAL)
    incomplete = tuple(lab for ds, lab in zip(runs, labels) if not ds.attrs.get(schema.COMPLETE))
    for lab in incomplete:
        warnings.warn(f"run {lab!r} is incomplete (still recording, or crashed); analyzing "
                      "it up to its last stored snapshot.", IncompleteRunWarning, stacklevel=2)
    big = int(np.argmax([participating_weights(ds) for ds in runs]))
    ds = runs[big]
    if param is not None:
        param_weights(ds, param, none="the largest")  # validates before any long computation
    phase("search distance")
    family = distance_vs_weights(runs, labels) if len(runs) > 1 else None
    curve = search_distance(ds).compute()
    phase("active and inactive sets")
    sets = active_sets(ds, keep, scope)
    phase("decay times")
    missing = "" if require_decay else _decay_missing(ds, labels[big])
    decay = None if missing else decay_by_magnitude(ds, param or largest_param(ds), bins)
    return Figure1Data(
        labels=labels, primary=labels[big], sets=sets,
        distance=_normalized(curve), family=family, decay=decay, keep=keep,
        incomplete=incomplete, decay_missing=missing, diverged=diverged)


def _normalized(curve: xr.DataArray) -> xr.DataArray:
    """A cumulative curve over its largest known value (its gaps stay NaN)."""
    peak = float(curve.max(skipna=True)) if curve.size else float("nan")
    return curve / peak if peak > 0 else curve


def _decay_missing(ds: xr.Dataset, label: str) -> str:
    """Why the run has no decay times (too few uniformly spaced snapshots), or ""."""
    n = int(grid_indices(ds).size)
    if n >= MIN_SNAPSHOTS:
        return ""
    return (f"run {label!r} has {n} uniformly spaced snapshot(s); the decay time Δ needs at "
            f"least {MIN_SNAPSHOTS}. Train longer or record with a smaller every=.")


def decay_cap(decay: xr.DataArray) -> float:
    """Largest decay time the run can measure (its longest lag), in fraction of training.

    NaN when ``decay`` lacks the attrs of :func:`~weightscope.analyze.decay_time`.
    """
    attrs = decay.attrs
    if not {"max_lag", schema.EVERY, "last_grid_step"} <= set(attrs):
        return float("nan")
    return float(attrs["max_lag"]) * float(attrs[schema.EVERY]) / float(attrs["last_grid_step"])


def censored_bins(decay: xr.DataArray) -> np.ndarray:
    """Bins of :func:`~weightscope.analyze.decay_by_magnitude` whose median is censored.

    More than half of a bin's weights never decorrelated: its median is the cap, a lower
    bound (``Δ >= cap``).
    """
    if "censored" not in decay.coords:
        return np.zeros(decay.size, dtype=bool)
    return 2 * decay["censored"].values > decay["count"].values


def _check_runs(runs: Sequence[xr.Dataset], labels: Sequence[str], minimum: int) -> None:
    if not runs:
        raise AnalysisError("Figure 1 needs at least one run; got none.")
    if len(labels) != len(runs):
        raise AnalysisError(f"got {len(labels)} labels for {len(runs)} runs; pass one per run.")
    for ds, lab in zip(runs, labels):
        n = ds.sizes[schema.STEP]
        if n < minimum:
            raise AnalysisError(
                f"run {lab!r} has {n} snapshot(s); Figure 1 needs at least {minimum} "
                "(the decay time compares windows of >= 3). Train longer or record with a "
                "smaller every="
                + ("." if minimum == MIN_SNAPSHOTS else
                   "; without the decay panel it needs a snapshot after step 0.")
            )


def sets_at(sets: xr.Dataset, name: str,
            progress: Sequence[float] = SET_PROGRESS) -> dict[str, float]:
    """Fraction of weights in set ``name`` ("active" or "inactive") at each training progress
    (linear between snapshots), keyed ``"0%"``, ``"25%"``...: when the sets settle.

    Examples
    --------
    >>> import xarray as xr
    >>> sets = xr.Dataset({"active": ("step", [0.0, 0.2])}, coords={"progress": ("step", [0, 1])})
    >>> sets_at(sets, "active", (0.0, 0.25))
    {'0%': 0.0, '25%': 0.05}
    """
    prog = sets.progress.values
    return {f"{round(p * 100)}%": float(np.interp(p, prog, sets[name].values)) for p in progress}


def summary(data: Figure1Data) -> dict[str, Any]:
    """The numbers behind every panel, plus the trend statistics, as plain JSON types."""
    sets = data.sets
    at = sets_at(sets, "active")
    out: dict[str, Any] = {
        "runs": list(data.labels), "primary": data.primary, "incomplete": list(data.incomplete),
        "diverged": list(data.diverged),
        "active_sets": {
            "keep": data.keep, "scope": sets.attrs["scope"],
            "final_active": float(sets.active.values[-1]),
            "final_inactive": float(sets.inactive.values[-1]),
            "active_at_progress": at, "inactive_at_progress": sets_at(sets, "inactive"),
            "excluded_nan": sets.attrs["excluded_nan"],
            "step": sets.step.values.tolist(), "active": sets.active.values.tolist(),
            "inactive": sets.inactive.values.tolist()},
        "decay": _decay_summary(data),
        "distance": _distance_summary(data),
    }
    return _plain(out)


def _decay_summary(data: Figure1Data) -> dict[str, Any]:
    """The right panel's numbers, its censored bins, and a note on what limits them."""
    dec = data.decay
    if dec is None:
        return {"param": None, "bins": 0, "spearman_median_vs_magnitude": None,
                "excluded_nan": 0, "missing": data.decay_missing, "note": data.decay_missing}
    censored = censored_bins(dec)
    count = dec["count"].values
    rho = _spearman(dec.magnitude.values, dec.values)
    notes = []
    if censored.any():
        notes.append(
            f"{int(censored.sum())} of {dec.size} bins have a censored median: most of their "
            f"weights never decorrelated within the run (Δ >= cap = {decay_cap(dec):.3g}), so "
            "their median is a lower bound. Record longer, or more snapshots (smaller every=), "
            "to measure them.")
    if rho is None:
        notes.append("Spearman(median Δ, final |w|) is undefined: the medians (or magnitudes) "
                     "are equal in every bin.")
    return {
        "param": dec.attrs["param"], "bins": dec.attrs["bins"],
        "spearman_median_vs_magnitude": rho, "excluded_nan": dec.attrs["excluded_nan"],
        "magnitude": dec.magnitude.values.tolist(), "median": dec.values.tolist(),
        "q25": dec.q25.values.tolist(), "q75": dec.q75.values.tolist(),
        "censored": dec.censored.values.tolist(), "count": count.tolist(),
        "cap": decay_cap(dec),
        "censored_fraction": (dec.censored.values / np.maximum(count, 1)).tolist(),
        "censored_median": censored.tolist(), "note": " ".join(notes) or None}


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho, or None where it is undefined (fewer than 2 points, a constant input)."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy import stats  # a heavy import, made on first use

    return float(stats.spearmanr(x, y).statistic)


def _distance_summary(data: Figure1Data) -> dict[str, Any]:
    curve = data.distance
    out: dict[str, Any] = {"progress": curve.progress.values[:: max(1, curve.size // 200)]
                           .tolist(),
                           "normalized": curve.values[:: max(1, curve.size // 200)].tolist(),
                           "unknown_steps": unknown_steps(curve)}
    fam = data.family
    if fam is not None:
        rho = _spearman(fam.added.values, fam.total_distance.values)
        out["family"] = {"run": fam.run.values.tolist(), "weights": fam.weights.values.tolist(),
                         "added": fam.added.values.tolist(),
                         "total": fam.total_distance.values.tolist(),
                         "normalized": fam.normalized_distance.values.tolist(),
                         "spearman_total_vs_added": rho,
                         "unknown_steps": fam.unknown_steps.values.tolist(),
                         "increasing": bool(np.all(np.diff(fam.total_distance.values) > 0))}
    return out


def _plain(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
