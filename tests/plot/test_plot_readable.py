"""Figures a reader can print: 200 dpi files, titles that fit, censoring shown, short runs drawn."""

from __future__ import annotations

import dataclasses
import itertools
import struct

import numpy as np
import pytest
import torch
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from runs import record_tiny
from testutil import train

import weightscope as ws
from weightscope.analyze import figure1_data, summary
from weightscope.errors import AnalysisError
from weightscope.plot import figure1, plot_active_sets, plot_decay
from weightscope.plot.style import DPI, FIGURE1_SIZE, ellipsize, fit_titles, new_figure
from weightscope.plot.sweeps import sweep_figure

LONG = "bert.encoder.layer.0.intermediate.dense.weight"


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


class _Dense(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(16, 48)


class _Bertish(torch.nn.Module):
    """Parameter names as long as a Hugging Face BERT's."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        layer = torch.nn.Module()
        layer.intermediate = _Dense()
        self.bert = torch.nn.Module()
        self.bert.encoder = torch.nn.Module()
        self.bert.encoder.layer = torch.nn.ModuleList([layer])
        self.head = torch.nn.Linear(48, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.bert.encoder.layer[0].intermediate.dense(x)
        return self.head(torch.relu(hidden))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("readable")
    model = _Bertish()
    with ws.Recorder(root / "bert.zarr", model, every=1) as rec:
        train(model, 10, after_step=lambda s, loss, o: rec.step(loss=loss))
    return {"full": ws.open_run(record_tiny(root / "full.zarr", steps=60)),
            "short": ws.open_run(record_tiny(root / "short.zarr", steps=6, every=3)),
            "bert": ws.open_run(root / "bert.zarr")}


def test_figures_save_at_200_dpi_outside_any_style(runs, tmp_path):
    path = tmp_path / "figure1.png"
    figure1(runs["full"], bins=4).savefig(path)
    assert _png_size(path) == (FIGURE1_SIZE[0] * DPI, FIGURE1_SIZE[1] * DPI) == (1400, 480)
    table = xr.Dataset({"mean": ("row", [0.1, 0.2]), "std": ("row", [0.0, 0.0]),
                        "n": ("row", [1, 1])},
                       coords={"series": ("row", ["d=0.1", "d=0.1"]), "x": ("row", [1.0, 4.0])},
                       attrs={"sweep": "rewire"})
    sweep_figure(table).savefig(tmp_path / "sweep.png")
    width, _ = _png_size(tmp_path / "sweep.png")
    assert width >= 3.3 * DPI
    plot_decay(figure1_data([runs["full"]], bins=4).decay).figure.savefig(tmp_path / "p.png")
    assert _png_size(tmp_path / "p.png")[0] == 3.3 * DPI


def test_ellipsize_keeps_head_and_tail() -> None:
    assert ellipsize("short", 10) == "short"
    assert ellipsize(LONG, 32) == "bert…intermediate.dense.weight"  # whole components
    assert ellipsize(LONG, 10) == "ber…weight"  # components would keep too little
    assert ellipsize("averyveryverylongname", 10) == "ave…ngname"
    assert len(ellipsize(LONG, 1)) == 3


def _title_boxes(fig):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [ax.title.get_window_extent(renderer) for ax in fig.axes]


def test_long_parameter_names_fit_their_panel(runs):
    fig = figure1(runs["bert"], param=LONG, bins=4)
    title = fig.axes[2].get_title()
    assert title.startswith("decorrelation time Δ\n") and "…" in title
    name = title.split("\n")[1]
    assert name.startswith("bert") and name.endswith("dense.weight")
    boxes = _title_boxes(fig)
    width = fig.bbox.width
    assert all(0 <= b.x0 and b.x1 <= width for b in boxes)
    assert all(a.x1 < b.x0 for a, b in itertools.pairwise(boxes))  # titles never touch
    left = fig.axes[0].get_title().split("\n")
    assert left[0] == "active / inactive sets (keep=0.25)"  # short: untouched
    assert left[1].startswith("step 0: active ") and left[2].startswith("25%: active ")


def test_fit_titles_on_a_single_panel():
    fig = new_figure((2.0, 2.0))
    ax = fig.add_subplot()
    ax.set_title(LONG * 2)
    fit_titles(fig)
    (box,) = _title_boxes(fig)
    assert "…" in ax.get_title() and 0 <= box.x0 and box.x1 <= fig.bbox.width


def _binned(censored: list[int], count: int = 10) -> xr.DataArray:
    n = len(censored)
    median = [0.9 if 2 * c > count else 0.3 for c in censored]
    return xr.DataArray(
        median, dims="bin",
        coords={"bin": np.arange(n), "magnitude": ("bin", np.linspace(0.1, 1, n)),
                "q25": ("bin", np.full(n, 0.2)), "q75": ("bin", np.full(n, 0.9)),
                "count": ("bin", np.full(n, count)), "censored": ("bin", censored)},
        attrs={"param": "fc.weight", "max_lag": 9, "every": 10, "last_grid_step": 100,
               "bins": n, "excluded_nan": 0})


def _censored_markers(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)
            and c.get_label() == "censored: Δ ≥ cap"]


def test_censored_bins_get_hollow_markers_and_a_legend_entry():
    ax = plot_decay(_binned([0, 5, 6, 10]))
    (markers,) = _censored_markers(ax)
    np.testing.assert_allclose(markers.get_offsets()[:, 0], [0.7, 1.0])  # 6 and 10 of 10
    assert (markers.get_facecolors()[:, :3] == 1).all()  # white inside: hollow
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "censored: Δ ≥ cap" in labels and "cap = 0.9" in labels
    assert not _censored_markers(plot_decay(_binned([0, 1, 5])))


def test_legends_stay_off_the_data(runs):
    fig = figure1(runs["bert"], param=LONG, bins=4)
    FigureCanvasAgg(fig).draw()
    left, _, right = fig.axes
    assert "keep, 1 − keep" in [t.get_text() for t in left.get_legend().get_texts()]
    legend = right.get_legend().get_window_extent()
    cap_y = right.transData.transform((0, figure1_data([runs["bert"]], param=LONG, bins=4)
                                       .decay["q75"].values.max()))[1]
    assert legend.y0 >= cap_y  # the legend sits in the band above every value
    assert len(plot_active_sets(figure1_data([runs["full"]], bins=4).sets).lines) == 4


def test_short_run_gets_left_and_middle_panels(runs):
    short = runs["short"]
    with pytest.raises(AnalysisError, match=r"has 3 snapshot.*needs at least 4"):
        figure1_data([short])
    fig = figure1(short)
    left, middle, right = fig.axes
    assert len(left.lines) == 4 and len(middle.lines) == 1
    assert middle.lines[0].get_ydata()[-1] == pytest.approx(1.0)
    (note,) = right.texts
    text = note.get_text().replace("\n", " ")
    assert "3 uniformly spaced snapshot" in text and "needs at least 4" in text
    data = figure1_data([short], require_decay=False)
    assert data.decay is None
    s = summary(data)["decay"]
    assert "needs at least 4" in s["missing"] and s["spearman_median_vs_magnitude"] is None


def test_summary_counts_censored_bins_and_says_what_to_do(runs):
    real = summary(figure1_data([runs["bert"]], param=LONG, bins=4))["decay"]
    assert real["cap"] == pytest.approx(0.8)  # max_lag T - 3 = 8 of 10 steps
    assert real["censored_fraction"] == pytest.approx(
        [c / n for c, n in zip(real["censored"], real["count"])])
    data = dataclasses.replace(figure1_data([runs["full"]], bins=4),
                               decay=_binned([0, 5, 6, 10]))
    s = summary(data)["decay"]
    assert s["censored_fraction"] == [0.0, 0.5, 0.6, 1.0]
    assert s["censored_median"] == [False, False, True, True]
    assert "2 of 4 bins have a censored median" in s["note"] and "Record longer" in s["note"]
    flat = summary(dataclasses.replace(data, decay=_binned([10, 10])))["decay"]
    assert flat["spearman_median_vs_magnitude"] is None and "undefined" in flat["note"]
