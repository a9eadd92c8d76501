"""exploration_figure: runs of different lengths on one progress axis, one line per run."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from weightscope.analyze import exploration
from weightscope.errors import AnalysisError
from weightscope.plot import (
    exploration_figure,
    plot_explored_fraction,
    plot_flip_rate,
    plot_mask_distance,
)
from weightscope.plot.exploration import _moving_mean
from weightscope.testing import synthetic_run

matplotlib.use("Agg")


def _run(n_steps: int, flips_per_step: float, counts: bool = True):
    """A one-layer sparse run of 4 weights, half participating, every step a snapshot."""
    mask = np.zeros((n_steps + 1, 4), bool)
    mask[:, :2] = True
    mask[: n_steps // 2, 1:3] = [False, True]  # settles at half of training
    kw = {}
    if counts:
        kw = {"flips": np.full((n_steps, 1), flips_per_step),
              "explored": np.linspace(2, 3, n_steps)[:, None]}
    return synthetic_run(np.ones((n_steps + 1, 4)), mask=mask, **kw)


def test_figure_compares_runs_of_different_lengths():
    runs = {"SEARCH": _run(40, 1.0), "STATIC": _run(10, 0.0), "OLD": _run(20, 0, counts=False)}
    fig = exploration_figure(runs)
    explored, flips, distance = fig.axes
    assert [line.get_label() for line in explored.lines] == ["SEARCH", "STATIC"]
    assert [line.get_label() for line in distance.lines] == ["SEARCH", "STATIC", "OLD"]
    for ax in fig.axes:
        assert ax.get_xlim() == (0, 1) and "progress" in ax.get_xlabel()
        assert all(line.get_xdata()[-1] == 1.0 for line in ax.lines)
    np.testing.assert_allclose(flips.lines[0].get_ydata(), 0.5)  # 1 flip / 2 participating
    np.testing.assert_allclose(explored.lines[1].get_ydata()[-1], 0.75)
    assert distance.get_legend() is not None and explored.get_legend() is None


def test_panels_on_given_axes_and_precomputed():
    fig, axes = plt.subplots(1, 3)
    try:
        ex = {"SET": exploration(_run(8, 1.0))}
        for draw, ax in zip((plot_explored_fraction, plot_flip_rate, plot_mask_distance), axes):
            assert draw(ex, ax=ax) is ax and len(ax.lines) == 1
    finally:
        plt.close(fig)


def test_new_figures_are_not_pyplot_figures():
    before = plt.get_fignums()
    ax = plot_flip_rate({"OLD": _run(6, 0, counts=False)})  # no counts: says so
    assert "not recorded" in [t.get_text() for t in ax.texts]
    given = plt.figure()
    try:
        assert exploration_figure({"a": _run(6, 1.0)}, fig=given) is given
        assert len(given.axes) == 3
    finally:
        plt.close(given)
    assert plt.get_fignums() == before


def test_dense_run_raises():
    with pytest.raises(AnalysisError, match="no sparse layer"):
        exploration_figure({"dense": synthetic_run(np.ones((3, 4)))})


def test_moving_mean_against_loop():
    values = np.array([1.0, np.nan, 3.0, 0.0, 2.0, np.nan, np.nan])
    got = _moving_mean(values, 3)
    for i in range(values.size):
        window = values[max(0, i - 2): i + 1]
        want = np.nanmean(window) if np.isfinite(window).any() else np.nan
        np.testing.assert_equal(got[i], want)
