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

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

from .style import PALETTE, new_axes, paper_style

__all__ = ["plot_active_sets", "plot_decay", "plot_distance_curve", "plot_distance_family"]


def plot_active_sets(sets: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Fraction of weights in the active and inactive sets against training progress."""
    with paper_style():
        ax = new_axes(ax)
        x = sets["progress"].values
        ax.plot(x, sets["active"].values, color=PALETTE["active"], label="active")
        ax.plot(x, sets["inactive"].values, color=PALETTE["inactive"], label="inactive")
        keep = float(sets.attrs.get("keep", np.nan))
        for level in (keep, 1 - keep):
            ax.axhline(level, color=PALETTE["reference"], lw=0.8, ls=":")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="training progress (fraction of steps)",
               ylabel="fraction of weights", title=f"active / inactive sets (keep={keep:g})")
        ax.legend(frameon=False, loc="center right")
    return ax


def plot_distance_curve(curve: xr.DataArray, ax: Axes | None = None) -> Axes:
    """Normalized cumulative search distance of one run against training progress."""
    with paper_style():
        ax = new_axes(ax)
        ax.plot(curve["progress"].values, curve.values, color=PALETTE["distance"])
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="training progress (fraction of steps)",
               ylabel="cumulative distance / max", title="search distance")
    return ax


def plot_distance_family(family: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Total search distance (normalized by the largest) against weights added."""
    with paper_style():
        ax = new_axes(ax)
        ax.plot(family["added"].values, family["normalized_distance"].values, marker="o",
                ms=3.5, color=PALETTE["distance"])
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set(ylim=(0, 1.05), xlabel="weights added", ylabel="total distance / max",
               title="search distance vs weights added")
    return ax


def plot_decay(binned: xr.DataArray, ax: Axes | None = None) -> Axes:
    """Median decay time (interquartile band) per bin of final ``|w|``."""
    with paper_style():
        ax = new_axes(ax)
        x = binned["magnitude"].values
        ax.fill_between(x, binned["q25"].values, binned["q75"].values, color=PALETTE["decay"],
                        alpha=0.25, lw=0, label="interquartile range")
        ax.plot(x, binned.values, marker="o", ms=3, color=PALETTE["decay"], label="median")
        param = binned.attrs.get("param", "")
        ax.set(xlabel="final |w| (bin median)", ylabel="Δ (fraction of training)",
               title=f"decorrelation time ({param})")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, loc="best")
    return ax
