"""Exploration of sparse runs compared on one axis: ``exploration_figure(runs)``.

Three panels against training progress (fraction of each run's steps, so runs of different
lengths compare), one line per run: the explored fraction (elements that ever participated),
the flip rate (a moving mean over :data:`SMOOTH` of training, since methods rewire at
different intervals) and the mask distance to the final mask (the early-bird criterion).
Panel functions take ``ax=None`` and return the Axes; they take a mapping ``{label: run}``
whose values are runs (:func:`weightscope.open_run`) or their
:func:`weightscope.analyze.exploration` (scope ``"all"``). A run recorded without the
per-step counts appears in the mask distance panel only.

Examples
--------
>>> import numpy as np
>>> from weightscope.testing import synthetic_run
>>> mask = [[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]]
>>> run = synthetic_run(np.ones((3, 4)), mask=mask, flips=[[2], [0]], explored=[[3], [3]])
>>> fig = exploration_figure({"SET": run})
>>> [ax.get_ylabel() for ax in fig.axes]
['explored fraction', 'flip rate (per step)', 'mask distance to final']
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..analyze.exploration import exploration
from .style import FIGURE1_SIZE, PALETTE, fit_titles, new_axes, new_figure, paper_style
from .sweeps import OKABE_ITO

__all__ = ["SMOOTH", "exploration_figure", "plot_explored_fraction", "plot_flip_rate",
           "plot_mask_distance"]

#: Width of the flip rate's moving mean, as a fraction of each run's steps.
SMOOTH = 0.02
_PROGRESS = "training progress (fraction of steps)"
_DASHES = ("-", "--", "-.", ":")


def _explored(runs: Mapping[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """Each run's exploration (computed unless given; old runs: mask distance alone)."""
    return {label: ds if "mask_distance" in ds else exploration(ds, require_counts=False)
            for label, ds in runs.items()}


def _styles(labels: list[str]) -> dict[str, dict[str, str]]:
    """Colour and dash of each run (dashes tell apart runs whose lines coincide)."""
    return {label: {"color": OKABE_ITO[i % len(OKABE_ITO)], "ls": _DASHES[i % len(_DASHES)]}
            for i, label in enumerate(labels)}


def _moving_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the finite values among the last ``width`` (fewer at the start)."""
    ok = np.isfinite(values)
    total = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
    count = np.concatenate([[0], np.cumsum(ok)])
    hi = np.arange(1, values.size + 1)
    lo = np.maximum(hi - width, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (total[hi] - total[lo]) / (count[hi] - count[lo])


def _curves(runs: Mapping[str, xr.Dataset], var: str, ax: Axes | None, ylabel: str,
            title: str, smooth: bool = False) -> Axes:
    data = _explored(runs)
    styles = _styles(list(data))
    with paper_style():
        ax, own = new_axes(ax), ax is None
        for label, ex in data.items():
            if var not in ex:
                continue
            curve = ex[var]
            values = curve.values.astype(np.float64)
            if smooth:
                values = _moving_mean(values, max(1, round(SMOOTH * values.size)))
            x = curve[f"{curve.dims[0]}_progress"].values
            ax.plot(x, values, label=label, **styles[label])
        ax.set(xlim=(0, 1), xlabel=_PROGRESS, ylabel=ylabel, title=title)
        top = ax.get_ylim()[1]
        ax.set_ylim(-0.02 * top, top)  # lines at 0 (STATIC's flips) stay visible
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=6)
        else:
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center",
                    va="center", color=PALETTE["reference"])
    if own:
        fit_titles(ax.figure)
    return ax


def plot_explored_fraction(runs: Mapping[str, xr.Dataset], ax: Axes | None = None) -> Axes:
    """Fraction of the sparse layers' weights that have participated so far, per run."""
    return _curves(runs, "explored_fraction", ax, "explored fraction",
                   "search space explored")


def plot_flip_rate(runs: Mapping[str, xr.Dataset], ax: Axes | None = None) -> Axes:
    """Mask flips per participating weight per step (moving mean over :data:`SMOOTH`)."""
    return _curves(runs, "flip_rate", ax, "flip rate (per step)",
                   f"mask flips (mean over {SMOOTH:.0%} of training)", smooth=True)


def plot_mask_distance(runs: Mapping[str, xr.Dataset], ax: Axes | None = None) -> Axes:
    """Hamming distance of each snapshot's mask to the final one (fraction of weights)."""
    return _curves(runs, "mask_distance", ax, "mask distance to final",
                   "mask distance (early bird)")


def exploration_figure(runs: Mapping[str, xr.Dataset], fig: Figure | None = None) -> Figure:
    """Explored fraction, flip rate and mask distance of sparse runs, one line per run.

    Parameters
    ----------
    runs : mapping of str to xarray.Dataset
        ``{label: run}`` of sparse runs (or their :func:`~weightscope.analyze.exploration`),
        e.g. SEARCH, SET, RIGL, STATIC and LOTTERY runs compared on one axis.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (three axes are added). Default: a new Figure of paper width at
        200 dpi, not registered with pyplot (nothing to close).

    Raises
    ------
    AnalysisError
        A run is dense (no sparse layer) or has no snapshot.
    """
    data = _explored(runs)  # once for the three panels
    with paper_style():
        fig = fig if fig is not None else new_figure(FIGURE1_SIZE)
        axes = fig.subplots(1, 3)
        for draw, ax in zip((plot_explored_fraction, plot_flip_rate, plot_mask_distance), axes):
            draw(data, ax=ax)
        for ax in axes[:2]:  # one legend: the mask distance panel shows every run
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fit_titles(fig, list(axes))
    return fig
