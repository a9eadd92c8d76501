"""Tables behind the sweep figures: mean and std over seeds, and the search capacity f.

Pure functions of the runs of a sweep (``SweepStore.to_dataset()``, an ``xarray.Dataset`` over
``run`` with ``series``, ``x``, ``seed``, ``point`` and ``test_error``); torch-free. Runs that
carry their exploration (``explored_fraction`` and ``flip_rate``, NaN for dense runs) add the
means over seeds of both to the table (:data:`EXPLORATION`), and :func:`exploration_trend`
tests the paper's "wider search, lower error" on them; older results simply lack them.

Examples
--------
>>> import xarray as xr
>>> runs = xr.Dataset({"series": ("run", ["d=0.1", "d=0.1"]), "x": ("run", [4.0, 4.0]),
...                    "point": ("run", [0, 0]), "test_error": ("run", [0.25, 0.75])},
...                   attrs={"sweep": "rewire"})
>>> table = summarize(runs)
>>> float(table["mean"][0]), int(table["n"][0]), table.attrs["sweep"]
(0.5, 2, 'rewire')
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["EXPLORATION", "TABLE_COLUMNS", "capacity", "exploration_trend", "summarize",
           "sweep_table", "table_columns"]

#: Per-run exploration columns whose mean over seeds a table carries when the runs have them.
EXPLORATION = ("explored_fraction", "flip_rate")
#: Columns of every table (its CSV), before the :data:`EXPLORATION` ones.
TABLE_COLUMNS = ("series", "x", "mean", "std", "n")


def summarize(runs: xr.Dataset) -> xr.Dataset:
    """Mean, std (ddof=1; 0 for one seed) and count of ``test_error`` per ``(series, x)``.

    Rows follow the sweep's point order (the ``point`` column). Runs with
    :data:`EXPLORATION` columns holding a finite value add their means over seeds (NaN where
    every seed is NaN: dense series).
    """
    runs = runs.isel(run=np.argsort(runs["point"].values, kind="stable"))
    series = runs["series"].values.tolist()
    xs = runs["x"].values.astype(float).tolist()
    errors = runs["test_error"].values.astype(float)
    order: dict[tuple[str, float], list[int]] = {}
    for i, group in enumerate(zip(series, xs)):
        order.setdefault(group, []).append(i)
    rows = [(s, x, errors[idx]) for (s, x), idx in order.items()]
    table = _table(rows, runs.attrs.get("sweep", ""))
    for col in EXPLORATION:
        values = runs[col].values.astype(float) if col in runs else np.zeros(0)
        if np.isfinite(values).any():  # stores from before issue 16 read NaN: no column
            table[col] = ("row", np.array([_nanmean(values[idx]) for idx in order.values()]))
    return table


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def table_columns(table: xr.Dataset) -> list[str]:
    """The columns of ``table`` in CSV order: :data:`TABLE_COLUMNS`, then the exploration
    means it carries."""
    return [*TABLE_COLUMNS, *(c for c in EXPLORATION if c in table)]


def exploration_trend(table: xr.Dataset) -> dict[str, object]:
    """Does wider search go with lower error? Spearman correlation of mean test error with
    mean explored fraction across the sparse series, within each ``x`` (e.g. density d, so
    methods are compared at equal size) and pooled over all sparse rows.

    Returns ``{"spearman_within_x": {x: rho}, "mean_spearman_within_x": rho,
    "spearman_pooled": rho, "points": n}``; a rho is None where it is undefined (fewer than 2
    points, constant values). Negative: wider search, lower error. Needs ``explored_fraction``.
    """
    from .figure1 import _spearman  # one definition of the statistic

    explored, error = table["explored_fraction"].values, table["mean"].values
    ok = np.isfinite(explored) & np.isfinite(error)
    xs = table["x"].values
    within = {float(x): _spearman(explored[ok & (xs == x)], error[ok & (xs == x)])
              for x in dict.fromkeys(xs[ok].tolist())}
    defined = [r for r in within.values() if r is not None]
    return {"spearman_within_x": within,
            "mean_spearman_within_x": float(np.mean(defined)) if defined else None,
            "spearman_pooled": _spearman(explored[ok], error[ok]), "points": int(ok.sum())}


def sweep_table(runs: xr.Dataset) -> xr.Dataset:
    """The table behind a sweep's figure: :func:`summarize`, plus the :func:`capacity` rows
    (series ``"f"`` and ``"gap"``) for the ``capacity`` sweep."""
    table = summarize(runs)
    if runs.attrs.get("sweep") == "capacity":
        extra = capacity(runs)
        for col in EXPLORATION:
            if col in table:
                extra[col] = ("row", np.full(extra.sizes["row"], np.nan))
        table = xr.concat([table, extra], dim="row")
        table.attrs["sweep"] = "capacity"
    return table


def capacity(runs: xr.Dataset) -> xr.Dataset:
    """Search capacity ``f = (REDUCE - SEARCH) / (REDUCE - REGULAR)`` in test error per ``d``.

    In accuracy this is ``(SEARCH - REDUCE) / (REGULAR - REDUCE)``: 1 means SEARCH matches the
    dense model's free search, 0 means no better than the narrower REDUCE model (the meaning
    the paper's appendix F describes; its printed formula has SEARCH and REGULAR swapped). ``f``
    is computed per seed (runs of equal seed paired) and summarized like :func:`summarize`;
    where REDUCE and REGULAR are within noise of each other ``f`` is meaningless (the ``gap``
    rows give ``REDUCE - REGULAR``).
    """
    def by(series: str) -> dict[tuple[float, int], float]:
        sel = runs["series"].values == series
        return {(float(x), int(s)): float(e) for x, s, e in zip(
            runs["x"].values[sel], runs["seed"].values[sel], runs["test_error"].values[sel])}

    search, reduce_, regular = by("SEARCH"), by("REDUCE"), by("REGULAR")
    dense = {seed: err for (_, seed), err in regular.items()}
    rows = []
    for d in sorted({x for x, _ in search}, reverse=True):
        seeds = sorted(s for x, s in search if x == d and (d, s) in reduce_ and s in dense)
        gap = np.array([reduce_[d, s] - dense[s] for s in seeds])
        gain = np.array([reduce_[d, s] - search[d, s] for s in seeds])
        with np.errstate(divide="ignore", invalid="ignore"):
            rows += [("f", d, gain / gap), ("gap", d, gap)]
    return _table(rows, runs.attrs.get("sweep", "capacity"))


def _table(rows: list[tuple[str, float, np.ndarray]], sweep: str) -> xr.Dataset:
    mean = [float(np.mean(v)) if len(v) else np.nan for _, _, v in rows]
    std = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for _, _, v in rows]
    return xr.Dataset(
        {"mean": ("row", np.array(mean, dtype=float)), "std": ("row", np.array(std)),
         "n": ("row", np.array([len(v) for _, _, v in rows], dtype=np.int64))},
        coords={"series": ("row", np.array([s for s, _, _ in rows], dtype=object)),
                "x": ("row", np.array([x for _, x, _ in rows], dtype=float))},
        attrs={"sweep": sweep})
