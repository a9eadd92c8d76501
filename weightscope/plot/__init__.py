"""Matplotlib figures of the paper's Figure 1 and of sparse runs' exploration (never shows,
saves or closes anything).

Panel functions take ``ax=None`` and return the Axes; :func:`figure1` takes ``fig=None`` and
returns the Figure. Without an ``ax``/``fig`` they draw on a new ``matplotlib.figure.Figure``
that is not registered with pyplot, so nothing needs closing, and that carries its own
200 dpi, so ``fig.savefig(path)`` writes print-quality pixels.
"""

from .exploration import (
    exploration_figure,
    plot_explored_fraction,
    plot_flip_rate,
    plot_mask_distance,
)
from .figure1 import figure1
from .panels import (
    plot_active_sets,
    plot_decay,
    plot_decay_missing,
    plot_distance_curve,
    plot_distance_family,
)
from .style import PALETTE, paper_style

__all__ = ["PALETTE", "exploration_figure", "figure1", "paper_style", "plot_active_sets",
           "plot_decay", "plot_decay_missing", "plot_distance_curve", "plot_distance_family",
           "plot_explored_fraction", "plot_flip_rate", "plot_mask_distance"]
