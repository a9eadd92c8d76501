"""Figures of the paper's sweeps (Figures 3, 4, 5, 6, 14 and Table 3) from their summary tables.

Every function takes the table of one sweep, an ``xarray.Dataset`` over ``row`` with coordinates
``series`` (str) and ``x`` (float) and variables ``mean``, ``std`` and ``n`` (test error over
seeds; :func:`weightscope.analyze.sweeps.sweep_table` builds it) whose ``attrs["sweep"]``
names the sweep. Panel functions take ``ax=None`` and return the Axes; :func:`sweep_figure`
takes ``fig=None`` and returns the Figure. Error bars are one standard deviation over seeds. A
``REGULAR`` series with a single row is drawn as the dense reference line (with its band).
Tables that carry the runs' exploration (``explored_fraction``) also get
:func:`plot_error_vs_explored`: test error against explored fraction across methods.

Examples
--------
>>> import numpy as np, xarray as xr
>>> table = xr.Dataset(
...     {"mean": ("row", [0.05, 0.07, 0.04]), "std": ("row", [0.01, 0.01, 0.005]),
...      "n": ("row", [3, 3, 3])},
...     coords={"series": ("row", ["d=0.1", "d=0.1", "REGULAR"]),
...             "x": ("row", [1.0, 16.0, 1.0])}, attrs={"sweep": "rewire"})
>>> ax = plot_sweep(table)
>>> ax.get_xlabel(), [t.get_text() for t in ax.get_legend().get_texts()]
('rewiring interval r (steps)', ['REGULAR', 'd=0.1'])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, PercentFormatter

from weightscope.analyze.sweeps import exploration_trend
from weightscope.errors import ConfigError

from .style import PALETTE, PANEL_SIZE, fit_titles, new_axes, new_figure, paper_style

__all__ = ["OKABE_ITO", "SWEEP_PLOTS", "explored_figure", "plot_blocks", "plot_capacity",
           "plot_error_vs_explored", "plot_exploit", "plot_grad_scale", "plot_longer",
           "plot_methods", "plot_reset", "plot_rewire", "plot_sweep", "sweep_figure"]

#: Okabe & Ito (2008) colours without black and yellow (too light on white), in line order.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _rows(table: xr.Dataset, series: str) -> tuple[np.ndarray, ...]:
    """``x, mean, std, n`` of one series, sorted by x."""
    sel = table["series"].values == series
    x = table["x"].values[sel].astype(float)
    order = np.argsort(x, kind="stable")
    return (x[order], *(table[v].values[sel][order] for v in ("mean", "std", "n")))


def _series(table: xr.Dataset) -> list[str]:
    return list(dict.fromkeys(table["series"].values.tolist()))


def _reference(ax: Axes, table: xr.Dataset, series: str = "REGULAR") -> None:
    """Dense reference: a dashed line at its mean error and a band of one std."""
    _, mean, std, _ = _rows(table, series)
    if len(mean) != 1:
        return
    ax.axhline(mean[0], color=PALETTE["reference"], ls="--", lw=1.0, label=series)
    ax.axhspan(mean[0] - std[0], mean[0] + std[0], color=PALETTE["reference"], alpha=0.15,
               lw=0)


def _lines(table: xr.Dataset, ax: Axes | None, xlabel: str, title: str,
           xscale: str = "linear", infinity: bool = False) -> Axes:
    with paper_style():
        ax = new_axes(ax)
        lines = [s for s in _series(table) if s != "REGULAR" or len(_rows(table, s)[0]) > 1]
        xs = np.concatenate([_rows(table, s)[0] for s in lines]) if lines else np.zeros(0)
        finite = xs[np.isfinite(xs)]
        inf_at = float(finite.max()) * 4 if infinity and finite.size else np.inf
        for i, series in enumerate(lines):
            x, mean, std, _ = _rows(table, series)
            color = PALETTE["reference"] if series == "REGULAR" else OKABE_ITO[i % 6]
            ax.errorbar(np.where(np.isinf(x), inf_at, x), mean, yerr=std, color=color,
                        marker=_MARKERS[i % 6], ms=3.5, capsize=2, label=series)
        _reference(ax, table)
        ax.set_xscale(xscale)
        ticks = np.unique(np.where(np.isinf(xs), inf_at, xs))
        if xscale == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(ticks, [("∞" if t == inf_at and infinity else f"{t:g}") for t in ticks])
        _error_axis(ax, table["mean"].values)
        ax.set(xlabel=xlabel, title=title)
        ax.legend(frameon=False, fontsize=6)
    return ax


def _error_axis(ax: Axes, means: np.ndarray) -> None:
    """Percent y axis, logarithmic when errors span more than a factor 5 (collapsed runs)."""
    finite = means[np.isfinite(means) & (means > 0)]
    if finite.size and finite.max() > 5 * finite.min():
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
        ax.yaxis.set_minor_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    else:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("test error" + (" (log scale)" if ax.get_yscale() == "log" else ""))


def _vs_density(table: xr.Dataset, ax: Axes | None, title: str) -> Axes:
    ax = _lines(table, ax, "model size d (fraction of weights)", title, xscale="log")
    ax.invert_xaxis()
    return ax


def plot_rewire(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 3 left: test error against the rewiring interval r, one line per d."""
    return _lines(table, ax, "rewiring interval r (steps)", "rewiring (Fig. 3 left)", "log")


def plot_grad_scale(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 3 middle: test error against the gradient scale s of non-participating weights."""
    return _lines(table, ax, "gradient scale s of non-participating weights",
                  "gradient scale (Fig. 3 middle)")


def plot_reset(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 3 right: test error against the reset interval z (``inf``: never reset)."""
    return _lines(table, ax, "reset interval z (steps)", "reset (Fig. 3 right)", "log",
                  infinity=True)


def plot_exploit(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 4: exploration/exploitation strategies against model size d."""
    return _vs_density(table, ax, "exploration vs exploitation (Fig. 4)")


def plot_methods(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 5: SEARCH against LOTTERY, SET, RIGL and REDUCE by model size d."""
    return _vs_density(table, ax, "methods (Fig. 5)")


def plot_longer(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 6 left: test error against the training-length multiplier t."""
    ax = _lines(table, ax, "training length t (x base steps)", "longer training (Fig. 6)",
                "log")
    return ax


def plot_capacity(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Figure 14: search capacity f against d (0 = REDUCE, 1 = REGULAR); hollow markers where
    REDUCE - REGULAR is within two standard errors of zero (f is then ill-defined)."""
    with paper_style():
        ax = new_axes(ax)
        x, f, f_std, _ = _rows(table, "f")
        _, gap, gap_std, n = _rows(table, "gap")
        weak = gap <= 2 * gap_std / np.sqrt(np.maximum(n, 1))
        ax.errorbar(x, f, yerr=f_std, color=OKABE_ITO[0], marker="", capsize=2)
        ax.plot(x[~weak], f[~weak], "o", color=OKABE_ITO[0], ms=4, label="f")
        ax.plot(x[weak], f[weak], "o", mfc="white", color=OKABE_ITO[0], ms=4,
                label="f (REDUCE ≈ REGULAR)")
        for level in (0.0, 1.0):
            ax.axhline(level, color=PALETTE["reference"], lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.invert_xaxis()
        ax.set(xlabel="model size d (fraction of weights)",
               ylabel="f  (0 = REDUCE, 1 = REGULAR)", title="search capacity (Fig. 14)")
        ax.legend(frameon=False, fontsize=6)
    return ax


def plot_blocks(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Table 3 as bars: REGULAR, REDUCE, block sizes b and the 2:4 structures at d = 0.5."""
    with paper_style():
        ax = new_axes(ax)
        names = _series(table)
        names = [s for s in ("REGULAR", "REDUCE") if s in names] + [
            s for s in names if s not in ("REGULAR", "REDUCE")]
        stats = [_rows(table, s) for s in names]
        mean = [row[1][0] for row in stats]
        std = [row[2][0] for row in stats]
        colors = [PALETTE["reference"] if s == "REGULAR" else OKABE_ITO[1] if s == "REDUCE"
                  else OKABE_ITO[2] if s.startswith("2:4") else OKABE_ITO[0] for s in names]
        ax.bar(range(len(names)), mean, yerr=std, color=colors, capsize=2, width=0.7)
        _reference(ax, table)
        ax.set_xticks(range(len(names)), names, rotation=30)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax.set(ylabel="test error", title="structures at d = 0.5 (Table 3)")
    return ax


#: The plot function of each sweep name.
SWEEP_PLOTS: dict[str, Callable[..., Axes]] = {
    "rewire": plot_rewire, "grad-scale": plot_grad_scale, "reset": plot_reset,
    "exploit": plot_exploit, "methods": plot_methods, "capacity": plot_capacity,
    "longer": plot_longer, "blocks": plot_blocks}


def plot_sweep(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """The panel of the sweep named in ``table.attrs["sweep"]``."""
    name = table.attrs.get("sweep")
    if name not in SWEEP_PLOTS:
        raise ConfigError(f"table.attrs['sweep'] must name a sweep ({', '.join(SWEEP_PLOTS)}); "
                         f"got {name!r}.")
    return SWEEP_PLOTS[name](table, ax=ax)


def sweep_figure(table: xr.Dataset, fig: Figure | None = None) -> Figure:
    """A one-panel Figure of the sweep (a new, pyplot-free Figure at 200 dpi when ``fig`` is
    None)."""
    fig = new_figure((PANEL_SIZE[0] * 1.2, PANEL_SIZE[1] * 1.3)) if fig is None else fig
    fit_titles(fig, [plot_sweep(table, ax=fig.add_subplot())])
    return fig


def plot_error_vs_explored(table: xr.Dataset, ax: Axes | None = None) -> Axes:
    """Mean test error against mean explored fraction, one colour per series (method) and
    one marker per ``x`` (model size d): "wider search, lower error" across methods.

    Rows without an explored fraction (dense series) are left out; a single-row ``REGULAR``
    is the dense reference line. The title gives Spearman's rho within each d, averaged
    (:func:`weightscope.analyze.sweeps.exploration_trend`).
    """
    if "explored_fraction" not in table:
        raise ConfigError("plot_error_vs_explored needs a table with 'explored_fraction' (runs "
                          "recorded with their exploration); this one has only "
                          f"{sorted(map(str, table.data_vars))}. Run the sweep again.")
    explored = table["explored_fraction"].values
    ok = np.isfinite(explored)
    xs = list(dict.fromkeys(table["x"].values[ok].tolist()))
    with paper_style():
        ax = new_axes(ax)
        for i, series in enumerate(_series(table)):
            sel = ok & (table["series"].values == series)
            for x in table["x"].values[sel]:
                row = sel & (table["x"].values == x)
                ax.errorbar(explored[row], table["mean"].values[row],
                            yerr=table["std"].values[row], color=OKABE_ITO[i % 6], ls="none",
                            marker=_MARKERS[xs.index(x) % 6], ms=4, capsize=2)
            if sel.any():
                ax.plot([], [], "o", color=OKABE_ITO[i % 6], ms=4, label=series)
        for j, x in enumerate(xs):
            ax.plot([], [], _MARKERS[j % 6], color=PALETTE["reference"], ms=4, label=f"d={x:g}")
        _reference(ax, table)
        _error_axis(ax, table["mean"].values[ok])
        rho = exploration_trend(table)["mean_spearman_within_x"]
        ax.set(xlabel="explored fraction (mean over seeds)",
               title="error vs explored fraction" + ("" if rho is None else
                                                     f" (Spearman ρ within d: {rho:+.2f})"))
        ax.legend(frameon=False, fontsize=6, ncols=2)
    return ax


def explored_figure(table: xr.Dataset, fig: Figure | None = None) -> Figure:
    """A one-panel Figure of :func:`plot_error_vs_explored` (a new, pyplot-free Figure at 200
    dpi when ``fig`` is None)."""
    fig = new_figure((PANEL_SIZE[0] * 1.2, PANEL_SIZE[1] * 1.3)) if fig is None else fig
    fit_titles(fig, [plot_error_vs_explored(table, ax=fig.add_subplot())])
    return fig
