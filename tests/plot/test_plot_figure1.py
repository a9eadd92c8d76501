"""Plots: each panel returns its Axes (on a given ax or a new Figure); figure1 has 3 panels."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
from runs import record_tiny

import weightscope as ws
from weightscope.analyze import figure1_data
from weightscope.plot import (
    figure1,
    plot_active_sets,
    plot_decay,
    plot_distance_curve,
    plot_distance_family,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot")
    runs = [ws.open_run(record_tiny(root / f"r{i}.zarr", steps=60, seed=i)) for i in range(2)]
    return runs, figure1_data(runs, bins=5)


def test_panels_draw_on_given_axes_and_label_units(data):
    _, d = data
    fig, axes = plt.subplots(1, 4)
    try:
        assert plot_active_sets(d.sets, ax=axes[0]) is axes[0]
        assert plot_distance_curve(d.distance, ax=axes[1]) is axes[1]
        assert plot_distance_family(d.family, ax=axes[2]) is axes[2]
        assert plot_decay(d.decay, ax=axes[3]) is axes[3]
        assert "fraction" in axes[0].get_xlabel() and "fraction" in axes[3].get_ylabel()
        assert axes[2].get_xlabel() == "weights added"
        assert len(axes[3].lines) == 1 and len(axes[0].lines) == 4  # 2 sets + 2 reference
    finally:
        plt.close(fig)


def test_panels_without_ax_do_not_touch_pyplot(data):
    _, d = data
    before = plt.get_fignums()
    ax = plot_decay(d.decay)
    assert ax.figure is not None and plt.get_fignums() == before


def test_figure1_from_runs_data_and_given_figure(data):
    runs, d = data
    before = plt.get_fignums()
    fig = figure1(runs, bins=5)
    assert len(fig.axes) == 3 and plt.get_fignums() == before
    assert fig.axes[1].get_xlabel() == "weights added"
    single = figure1(runs[0], bins=5)
    assert "progress" in single.axes[1].get_xlabel()
    given = plt.figure()
    try:
        assert figure1(d, fig=given) is given and len(given.axes) == 3
    finally:
        plt.close(given)


def test_left_title_states_the_sets_at_step_0_and_25_percent(data):
    """The caption line of the left panel and the summary give the same two points."""
    from weightscope.analyze import summary

    _, d = data
    title = figure1(d).axes[0].get_title()
    s = summary(d)["active_sets"]
    act, inact = s["active_at_progress"], s["inactive_at_progress"]
    assert (act["0%"], inact["0%"]) == (d.sets.active.values[0], d.sets.inactive.values[0])
    assert title.split("\n")[1:] == [  # whole lines: they fit the panel (no ellipsis)
        f"step 0: active {act['0%']:.2f}, inactive {inact['0%']:.2f}",
        f"25%: active {act['25%']:.2f}, inactive {inact['25%']:.2f}"]
