"""The paper's Figure 1 in one call: ``figure1(runs)`` returns a matplotlib Figure.

Examples
--------
>>> import os, tempfile, torch, weightscope as ws
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> model = torch.nn.Linear(32, 32)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> with ws.Recorder(path, model, every=1) as rec:
...     _ = rec.attach(opt)
...     for _ in range(12):
...         opt.zero_grad(); model(torch.randn(8, 32)).pow(2).mean().backward(); opt.step()
>>> fig = figure1([ws.open_run(path)], bins=4)
>>> len(fig.axes)
3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr
from matplotlib.figure import Figure

from ..analyze.figure1 import Figure1Data, figure1_data, sets_at
from .panels import (
    plot_active_sets,
    plot_decay,
    plot_decay_missing,
    plot_distance_curve,
    plot_distance_family,
)
from .style import FIGURE1_SIZE, fit_titles, new_figure, paper_style

__all__ = ["figure1", "settling"]


def figure1(runs: Sequence[xr.Dataset] | xr.Dataset | Figure1Data, fig: Figure | None = None,
            **kwargs: Any) -> Figure:
    """Draw the three panels of Figure 1.

    Parameters
    ----------
    runs : Dataset, sequence of Dataset, or Figure1Data
        One run, a family of runs of one architecture, or precomputed data
        (:func:`weightscope.analyze.figure1_data`).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (its content is kept; three axes are added). Default: a new
        Figure of paper width at 200 dpi (``fig.savefig(path)`` writes 1400 x 480 pixels), not
        registered with pyplot (nothing to close).
    **kwargs
        ``keep``, ``scope``, ``param``, ``bins``, ``labels``, ``require_decay`` for
        :func:`figure1_data`. Runs too short for decay times are drawn without them by default
        (``require_decay=False``): the right panel says why.
    """
    if isinstance(runs, xr.Dataset):
        runs = [runs]
    if not isinstance(runs, Figure1Data):
        runs = figure1_data(runs, **{"require_decay": False, **kwargs})
    data = runs
    with paper_style():
        fig = fig if fig is not None else new_figure(FIGURE1_SIZE)
        left, middle, right = fig.subplots(1, 3)
        plot_active_sets(data.sets, ax=left)
        left.set_title(f"{left.get_title()}\n{settling(data.sets)}")
        if data.family is not None:
            plot_distance_family(data.family, ax=middle)
        else:
            plot_distance_curve(data.distance, ax=middle)
        if data.decay is None:
            plot_decay_missing(data.decay_missing, ax=right)
        else:
            plot_decay(data.decay, ax=right)
        fit_titles(fig, [left, middle, right])
    return fig


def settling(sets: xr.Dataset) -> str:
    """The left panel's caption lines: active and inactive fractions at step 0 and at 25 %.

    Examples
    --------
    >>> import xarray as xr
    >>> sets = xr.Dataset({"active": ("step", [0.01, 0.21]), "inactive": ("step", [0.25, 0.65])},
    ...                   coords={"progress": ("step", [0.0, 1.0])})
    >>> print(settling(sets))
    step 0: active 0.01, inactive 0.25
    25%: active 0.06, inactive 0.35
    """
    act, inact = sets_at(sets, "active", (0.0, 0.25)), sets_at(sets, "inactive", (0.0, 0.25))
    return (f"step 0: active {act['0%']:.2f}, inactive {inact['0%']:.2f}\n"
            f"25%: active {act['25%']:.2f}, inactive {inact['25%']:.2f}")
