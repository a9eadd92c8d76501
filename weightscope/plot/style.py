"""Figure style: paper column width, small fonts, a colour-blind-safe palette (Okabe-Ito).

Figures made here carry their resolution (:data:`DPI`) themselves, so ``fig.savefig(path)``
writes print-quality pixels wherever and whenever it is called (the ``savefig.dpi`` setting of
:func:`paper_style` applies only to a ``savefig`` inside the context). Titles are shortened
with a middle ellipsis to the width of their axes (:func:`fit_titles`), so long parameter
names never run into the next panel.

Examples
--------
>>> PALETTE["active"]
'#0072B2'
>>> ellipsize("bert.encoder.layer.0.intermediate.dense.weight", 32)
'bert…intermediate.dense.weight'
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

__all__ = ["DPI", "FIGURE1_SIZE", "PALETTE", "PANEL_SIZE", "ellipsize", "fit_titles",
           "new_axes", "new_figure", "paper_style"]

#: Okabe & Ito (2008) colours, distinguishable with every common colour-vision deficiency.
PALETTE = {
    "active": "#0072B2",  # blue
    "inactive": "#D55E00",  # vermillion
    "distance": "#009E73",  # bluish green
    "decay": "#CC79A7",  # reddish purple
    "reference": "#999999",  # grey
    "black": "#000000",
}
#: Width x height (inches) of one panel at a paper's column width, and of the 3-panel figure.
PANEL_SIZE = (3.3, 2.4)
FIGURE1_SIZE = (7.0, 2.4)
#: Dots per inch of every figure made here (Figure 1: 1400 x 480 pixels).
DPI = 200
_TEXT = TextToPath()
_GAP_PT = 8.0  # points kept free between neighbouring titles and at the figure's edges

_RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Matplotlib settings of weightscope's figures (fonts sized for print)."""
    with mpl.rc_context(_RC):
        yield


def new_figure(size: tuple[float, float]) -> Figure:
    """A Figure of ``size`` inches at :data:`DPI`, constrained layout, unknown to pyplot."""
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def new_axes(ax: Axes | None) -> Axes:
    """``ax``, or the axes of a new panel-sized Figure (not registered with pyplot)."""
    if ax is not None:
        return ax
    return new_figure(PANEL_SIZE).add_subplot()


def ellipsize(text: str, max_chars: int) -> str:
    """``text``, or its head and tail joined by "…" in at most ``max_chars`` characters (>= 3).

    A dotted name keeps its first component and as many whole last components as fit
    (``bert…intermediate.dense.weight``), unless that keeps less than 3/5 of the room; then
    the cut falls between characters, the tail keeping more than the head (the end of a
    parameter name is its most specific part).
    """
    if len(text) <= max_chars:
        return text
    parts = text.split(".")
    for k in range(len(parts) - 2, 0, -1):
        if parts[-k].isdigit():  # "layer.0.x" keeps "layer" with its index, or neither
            continue
        short = f"{parts[0]}…{'.'.join(parts[-k:])}"
        if len(short) <= max_chars:
            if len(short) * 5 >= max_chars * 3:
                return short
            break
    keep = max(max_chars, 3) - 1
    head = keep * 2 // 5
    return f"{text[:head]}…{text[len(text) - (keep - head):]}"


def fit_titles(fig: Figure, axes: Sequence[Axes] | None = None) -> Figure:
    """Shorten each line of the titles of ``axes`` (default: all) to fit their cells.

    A title's cell reaches halfway to the neighbouring axes of the same row (or to the
    figure's edge), so titles of adjacent panels never touch. Lines too wide are cut in the
    middle (:func:`ellipsize`); a title wider than its axes is moved off their centre as far
    as it must to stay in its cell. Positions are those of the figure's layout, run here (a
    title's width does not change a constrained layout).
    """
    axes = list(fig.axes if axes is None else axes)
    fig.draw_without_rendering()
    boxes = [ax.get_position() for ax in fig.axes]
    points = fig.get_figwidth() * 72  # figure width in points
    for ax in axes:
        box = ax.get_position()
        row = [b for b in boxes if b.y0 < box.y1 and b.y1 > box.y0 and b is not box]
        edge = _GAP_PT / 2 / points  # a full gap at the figure's edges
        left = max([(b.x1 + box.x0) / 2 for b in row if b.x1 <= box.x0], default=edge)
        right = min([(box.x1 + b.x0) / 2 for b in row if b.x0 >= box.x1], default=1 - edge)
        left, right = left + _GAP_PT / 2 / points, right - _GAP_PT / 2 / points
        prop = ax.title.get_fontproperties()
        lines = [_fit_line(line, (right - left) * points, prop)
                 for line in ax.title.get_text().split("\n")]
        ax.title.set_text("\n".join(lines))
        half = max(_width(line, prop) for line in lines) / points / 2
        center = min(max((box.x0 + box.x1) / 2, left + half), right - half)
        ax.title.set_x((center - box.x0) / box.width)
    return fig


def _width(text: str, prop: FontProperties) -> float:
    """Width in points of ``text`` rendered in ``prop``."""
    return _TEXT.get_text_width_height_descent(text, prop, ismath=False)[0]


def _fit_line(line: str, width: float, prop: FontProperties) -> str:
    """``line`` ellipsized to the most characters whose rendered width is <= ``width`` points."""
    def fits(text: str) -> bool:
        return _width(text, prop) <= width

    if fits(line):
        return line
    low, high = 3, len(line) - 1  # fits(ellipsize(line, low)) is assumed
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(ellipsize(line, mid)) else (low, mid - 1)
    return ellipsize(line, low)

