"""One function per panel of Figure 1; each takes ``ax=None`` and returns the Axes.

Examples
--------
>>> import numpy as np, xarray as xr
>>> sets = xr.Dataset({"active": ("step", [0.0, 0.1, 0.25]),
...                    "inactive": ("step", [0.2, 0.5, 0.75])},
...                   coords={"step": [0, 5, 10], "progress": ("step", [0.0, 0.5, 1.0])},
...                   attrs={"keep": 0.25})
>>> ax = plot_active_sets(sets)
>>> ax.get_xlabel()
'training progress (fraction of steps)'
"""

from __future__ import annotations

import textwrap

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

from ..analyze.figure1 import censored_bins, decay_cap
from .style import PALETTE, fit_titles, new_axes, paper_style

__all__ = ["plot_active_sets", "plot_decay", "plot_decay_missing", "plot_distance_curve",
           "plot_distance_family"]


def plot_active_sets(sets: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Fraction of weights in the active and inactive sets against training progress."""
    with paper_style():
        ax, own = new_axes(ax), ax is None
        x = sets["progress"].values
        ax.plot(x, sets["active"].values, color=PALETTE["active"], label="active")
        ax.plot(x, sets["inactive"].values, color=PALETTE["inactive"], label="inactive")
        keep = float(sets.attrs.get("keep", np.nan))
        for level, label in ((keep, "keep, 1 − keep"), (1 - keep, "_nolegend_")):
            ax.axhline(level, color=PALETTE["reference"], lw=0.8, ls=":", label=label)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="training progress (fraction of steps)",
               ylabel="fraction of weights", title=f"active / inactive sets (keep={keep:g})")
        ax.legend(frameon=False, loc="center right")
    return _fitted(ax, own)


def plot_distance_curve(curve: xr.DataArray, ax: Axes | None = None) -> Axes:
    """Normalized cumulative search distance of one run against training progress.

    Steps of unknown distance (NaN: a weight was not finite there) are shaded grey across
    the panel, with their count in the legend; the curve counts the known steps only.

    Examples
    --------
    >>> curve = xr.DataArray([0.2, np.nan, 0.6, 1.0], dims="iteration",
    ...                      coords={"progress": ("iteration", [0.25, 0.5, 0.75, 1.0])})
    >>> [t.get_text() for t in plot_distance_curve(curve).get_legend().get_texts()]
    ['distance unknown (1 step: non-finite weights)']
    """
    with paper_style():
        ax, own = new_axes(ax), ax is None
        x, y = curve["progress"].values, curve.values
        ax.plot(x, y, color=PALETTE["distance"])
        gaps = np.isnan(y)
        for i, (start, stop) in enumerate(_runs_of(gaps)):
            n = int(gaps.sum())
            ax.axvspan(x[max(start - 1, 0)], x[min(stop, x.size - 1)], color=PALETTE["reference"],
                       alpha=0.35, lw=0, label="_nolegend_" if i else
                       f"distance unknown ({n} step{'s' * (n != 1)}: non-finite weights)")
        if gaps.any():
            ax.legend(frameon=False, loc="upper left", fontsize=6)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="training progress (fraction of steps)",
               ylabel="cumulative distance / max", title="search distance")
    return _fitted(ax, own)


def plot_distance_family(family: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Total search distance (normalized by the largest) against weights added.

    A run with steps of unknown distance (``unknown_steps`` > 0: non-finite weights) gets a
    hollow marker: its total counts the known steps only, a lower bound.
    """
    with paper_style():
        ax, own = new_axes(ax), ax is None
        x, y = family["added"].values, family["normalized_distance"].values
        ax.plot(x, y, marker="o", ms=3.5, color=PALETTE["distance"])
        if "unknown_steps" in family and (lower := family["unknown_steps"].values > 0).any():
            ax.scatter(x[lower], y[lower], s=14, marker="o", facecolors="white", zorder=3,
                       edgecolors=PALETTE["distance"], linewidths=1.0,
                       label="lower bound: steps of unknown distance")
            ax.legend(frameon=False, loc="lower right", fontsize=6)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set(ylim=(0, 1.05), xlabel="weights added", ylabel="total distance / max",
               title="search distance vs weights added")
    return _fitted(ax, own)


def plot_decay(binned: xr.DataArray, ax: Axes | None = None) -> Axes:
    """Median decay time (interquartile band) per bin of final ``|w|``.

    Bins whose median is censored (more than half of their weights never decorrelated within
    the longest lag tried, so the median is only a lower bound: Δ ≥ cap) get hollow markers,
    and the region above the cap, which the run cannot measure, is hatched. The legend sits
    in that region, above every value.
    """
    with paper_style():
        ax, own = new_axes(ax), ax is None
        x, median = binned["magnitude"].values, binned.values
        ax.fill_between(x, binned["q25"].values, binned["q75"].values, color=PALETTE["decay"],
                        alpha=0.25, lw=0, label="IQR")
        ax.plot(x, median, marker="o", ms=3, color=PALETTE["decay"], label="median")
        cap = decay_cap(binned)
        censored = censored_bins(binned)
        if censored.any():
            ax.scatter(x[censored], median[censored], s=14, marker="o", facecolors="white",
                       edgecolors=PALETTE["decay"], linewidths=1.0, zorder=3,
                       label="censored: Δ ≥ cap")
        top = 1.45 * cap if np.isfinite(cap) and cap > 0 else None
        if top is not None:
            ax.axhspan(cap, top, facecolor="none", edgecolor=PALETTE["reference"], lw=0,
                       hatch="////", alpha=0.5, label=f"cap = {cap:.2g}")
        ax.set(xlabel="final |w| (bin median)", ylabel="Δ (fraction of training)",
               title=f"decorrelation time Δ\n{binned.attrs.get('param', '')}")
        ax.set_ylim(0, top)
        ax.legend(loc="upper center", ncols=2, fontsize=6, borderaxespad=0.1, borderpad=0.3,
                  handlelength=1.4, columnspacing=0.8, frameon=True, facecolor="white",
                  edgecolor="none", framealpha=0.9)
    return _fitted(ax, own)


def plot_decay_missing(reason: str, ax: Axes | None = None) -> Axes:
    """The decay panel of a run too short for decay times: ``reason`` where the data would be."""
    with paper_style():
        ax, own = new_axes(ax), ax is None
        ax.set(xticks=[], yticks=[], title="decorrelation time Δ\n(not available)")
        ax.spines[:].set_visible(False)
        ax.text(0.5, 0.5, textwrap.fill(reason, 34), transform=ax.transAxes, ha="center",
                va="center", fontsize=7, color=PALETTE["black"])
    return _fitted(ax, own)


def _runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of consecutive True values in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _fitted(ax: Axes, own: bool) -> Axes:
    """Fit the titles of a Figure this module made (a caller's figure is left to its layout)."""
    if own:
        fit_titles(ax.figure)
    return ax
