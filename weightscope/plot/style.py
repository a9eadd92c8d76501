"""Figure style: paper column width, small fonts, a colour-blind-safe palette (Okabe-Ito).

Examples
--------
>>> PALETTE["active"]
'#0072B2'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["FIGURE1_SIZE", "PALETTE", "PANEL_SIZE", "new_axes", "paper_style"]

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
    "savefig.dpi": 200,
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Matplotlib settings of weightscope's figures (fonts sized for print)."""
    with mpl.rc_context(_RC):
        yield


def new_axes(ax: Axes | None) -> Axes:
    """``ax``, or the axes of a new panel-sized Figure (not registered with pyplot)."""
    if ax is not None:
        return ax
    fig = Figure(figsize=PANEL_SIZE, layout="constrained")
    return fig.add_subplot()
