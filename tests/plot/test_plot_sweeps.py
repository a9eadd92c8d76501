"""Sweep figures: one panel per sweep from its table, error bars, reference line, no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from weightscope.errors import ConfigError
from weightscope.plot.sweeps import OKABE_ITO, SWEEP_PLOTS, plot_sweep, sweep_figure


def _table(sweep: str, rows: list[tuple[str, float, float, float]]) -> xr.Dataset:
    return xr.Dataset(
        {"mean": ("row", [r[2] for r in rows]), "std": ("row", [r[3] for r in rows]),
         "n": ("row", [3] * len(rows))},
        coords={"series": ("row", [r[0] for r in rows]), "x": ("row", [r[1] for r in rows])},
        attrs={"sweep": sweep})


def _grid(sweep: str, series: list[str], xs: list[float]) -> xr.Dataset:
    rng = np.random.default_rng(0)
    rows = [(s, x, 0.03 + 0.02 * rng.random(), 0.005) for s in series for x in xs]
    return _table(sweep, [*rows, ("REGULAR", 1.0, 0.03, 0.002)])


TABLES = {
    "rewire": _grid("rewire", ["d=0.5", "d=0.25", "d=0.1"], [1, 4, 16, 64]),
    "grad-scale": _grid("grad-scale", ["d=0.5", "d=0.1"], [0.0, 0.5, 1.0]),
    "reset": _grid("reset", ["d=0.1"], [1, 16, 256, np.inf]),
    "exploit": _grid("exploit", ["NO EXPLORE", "NO EXPLOIT", "FIX", "RESET", "REGULARIZE"],
                     [0.5, 0.25, 0.1]),
    "methods": _grid("methods", ["SEARCH", "LOTTERY", "SET", "RIGL", "REDUCE"],
                     [0.5, 0.25, 0.1]),
    "longer": _table("longer", [(s, t, 0.05 / t, 0.003) for s in ("REGULAR", "d=0.1")
                                for t in (1.0, 2.0, 4.0)]),
    "blocks": _table("blocks", [("REDUCE", 0.5, 0.04, 0.004), ("b=1", 0.5, 0.03, 0.002),
                                ("b=8", 0.5, 0.035, 0.003), ("2:4", 0.5, 0.031, 0.002),
                                ("REGULAR", 1.0, 0.03, 0.001)]),
    "capacity": _table("capacity", [("f", 0.5, 0.2, 0.9), ("gap", 0.5, 0.001, 0.004),
                                    ("f", 0.1, 0.8, 0.1), ("gap", 0.1, 0.05, 0.004)]),
}


@pytest.mark.parametrize("name", sorted(SWEEP_PLOTS))
def test_every_sweep_has_a_panel(name: str) -> None:
    table = TABLES[name]
    ax = plot_sweep(table)
    assert isinstance(ax, Axes) and ax.get_title()
    fig = sweep_figure(table)
    assert isinstance(fig, Figure) and len(fig.axes) == 1


@pytest.mark.parametrize("name", ["rewire", "grad-scale", "reset", "exploit", "methods",
                                  "longer"])
def test_lines_have_error_bars_of_the_table(name: str) -> None:
    table = TABLES[name]
    ax = plot_sweep(table)
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    lines = {s for s in table["series"].values
             if s != "REGULAR" or (table["series"].values == "REGULAR").sum() > 1}
    assert len(bars) == len(lines)
    first = bars[0]
    sel = table["series"].values == first.get_label()
    np.testing.assert_allclose(np.sort(first.lines[0].get_ydata()),
                               np.sort(table["mean"].values[sel]))
    segments = first.lines[2][0].get_segments()  # vertical error bars: mean ± std
    heights = sorted(seg[1, 1] - seg[0, 1] for seg in segments)
    np.testing.assert_allclose(heights, sorted(2 * table["std"].values[sel]))
    assert bars[0].get_label() != "REGULAR" or name == "longer"


def test_reference_line_and_colours() -> None:
    ax = plot_sweep(TABLES["rewire"])
    ref = [line for line in ax.get_lines() if line.get_label() == "REGULAR"]
    assert len(ref) == 1 and ref[0].get_ydata()[0] == pytest.approx(0.03)
    colours = {c.lines[0].get_color() for c in ax.containers}
    assert colours <= set(OKABE_ITO)


def test_infinite_reset_interval_is_drawn_at_the_right_end() -> None:
    ax = plot_sweep(TABLES["reset"])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-1] == "∞" and labels[0] == "1"


def test_capacity_marks_ill_defined_points_hollow() -> None:
    ax = plot_sweep(TABLES["capacity"])
    hollow = [line for line in ax.get_lines() if line.get_label().startswith("f (REDUCE")]
    assert hollow[0].get_xdata().tolist() == [0.5]  # gap 0.001 < 2 * 0.004 / sqrt(3)


def test_collapsed_runs_switch_to_a_log_axis() -> None:
    table = _table("rewire", [("d=0.1", 1.0, 0.03, 0.0), ("d=0.1", 64.0, 0.9, 0.0)])
    assert plot_sweep(table).get_yscale() == "log"
    assert plot_sweep(TABLES["rewire"]).get_yscale() == "linear"


def test_unknown_sweep_and_given_axes() -> None:
    with pytest.raises(ConfigError, match=r"table.attrs\['sweep'\] must name a sweep"):
        plot_sweep(TABLES["rewire"].assign_attrs(sweep="nope"))
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_sweep(TABLES["blocks"], ax=ax) is ax
    assert sweep_figure(TABLES["blocks"], fig=Figure()).axes


def test_plot_sweeps_does_not_import_torch() -> None:
    code = "import weightscope.plot.sweeps, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _methods_runs(explored: bool = True) -> xr.Dataset:
    """Runs of a methods sweep: two seeds per (method, d); wider search, lower error."""
    rows = []
    for point, (series, d, frac) in enumerate(
            [(s, d, f * d) for d in (0.5, 0.1) for s, f in
             (("SEARCH", 1.8), ("SET", 1.4), ("RIGL", 1.2), ("LOTTERY", 1.0))]
            + [("REGULAR", 1.0, np.nan)]):
        for seed in (0, 1):
            rows.append((point, series, d, seed, 0.2 - frac / 10 + 0.001 * seed, frac + 0.01 * seed,
                         0.01 * frac))
    cols = list(zip(*rows))
    data = {"point": ("run", list(cols[0])), "series": ("run", list(cols[1])),
            "x": ("run", list(cols[2])), "seed": ("run", list(cols[3])),
            "test_error": ("run", list(cols[4]))}
    if explored:
        data |= {"explored_fraction": ("run", list(cols[5])), "flip_rate": ("run", list(cols[6]))}
    return xr.Dataset(data, attrs={"sweep": "methods"})


def test_tables_carry_exploration_means_when_runs_do() -> None:
    from weightscope.analyze.sweeps import exploration_trend, sweep_table, table_columns

    table = sweep_table(_methods_runs())
    row = (table["series"].values == "SET") & (table["x"].values == 0.5)
    assert table["explored_fraction"].values[row] == pytest.approx(0.705)  # mean of 2 seeds
    assert np.isnan(table["flip_rate"].values[table["series"].values == "REGULAR"]).all()
    assert table_columns(table)[-2:] == ["explored_fraction", "flip_rate"]
    trend = exploration_trend(table)
    assert trend["spearman_within_x"] == {0.5: -1.0, 0.1: -1.0} and trend["points"] == 8
    old = sweep_table(_methods_runs(explored=False))  # results from before issue 16
    assert "explored_fraction" not in old and table_columns(old) == [
        "series", "x", "mean", "std", "n"]


def test_error_vs_explored_chart() -> None:
    from weightscope.analyze.sweeps import sweep_table
    from weightscope.plot.sweeps import explored_figure, plot_error_vs_explored

    table = sweep_table(_methods_runs())
    ax = plot_error_vs_explored(table)
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 8  # 4 methods x 2 d; REGULAR is the reference line
    assert ax.get_xlabel().startswith("explored fraction") and "ρ within d: -1.00" in \
        ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:4] == ["SEARCH", "SET", "RIGL", "LOTTERY"] and "d=0.1" in labels
    assert len(explored_figure(table).axes) == 1
    with pytest.raises(ConfigError, match="needs a table with 'explored_fraction'"):
        plot_error_vs_explored(sweep_table(_methods_runs(explored=False)))
