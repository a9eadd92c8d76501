"""Exploration outputs of the command line (issue 16).

``weightscope analyze`` on sparse runs: ``exploration.<format>``
(:func:`weightscope.plot.exploration_figure`, one line per sparse run) and the numbers of
:func:`weightscope.analyze.exploration_summary` under ``"exploration"`` in ``summary.json``.
Dense runs are left out without a word; when every run is dense nothing is written.

``weightscope plot-sweep`` on results that carry the runs' exploration: ``NAME-explored.png``
and ``.pdf`` (error against explored fraction, :func:`weightscope.plot.sweeps.explored_figure`)
and ``NAME-explored.json`` (:func:`weightscope.analyze.sweeps.exploration_trend`).

Examples
--------
>>> import numpy as np, tempfile
>>> from pathlib import Path
>>> from weightscope.testing import synthetic_run
>>> dense = synthetic_run(np.ones((3, 4)))
>>> write_exploration({"dense": dense}, Path(tempfile.mkdtemp()), "png")
([], {})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from weightscope import schema
from weightscope.analyze import exploration, exploration_summary
from weightscope.analyze.figure1 import _plain
from weightscope.analyze.sweeps import exploration_trend
from weightscope.errors import AnalysisError
from weightscope.plot import exploration_figure
from weightscope.plot.sweeps import explored_figure
from weightscope.store import open_run

from .outputs import name_metric, run_labels, save_figure, write_text
from .progress import phases

__all__ = ["explore_runs", "print_exploration", "sparse_explorations", "write_exploration",
           "write_sweep_exploration"]


def sparse_explorations(runs: Mapping[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """:func:`~weightscope.analyze.exploration` of each sparse run (dense runs left out);
    runs recorded before the per-step counts get their mask distance alone."""
    out = {}
    for label, ds in runs.items():
        if schema.MASK not in ds and schema.FLIPS not in ds:
            continue  # dense: nothing to explore
        try:
            out[label] = exploration(ds, require_counts=False)
        except AnalysisError:
            if schema.FLIPS in ds:
                raise
            continue  # a mask that is 1 everywhere: no sparse layer
    return out


def explore_runs(runs: list[str], out: Path, fmt: str,
                 storage_options: dict[str, Any] | None = None
                 ) -> tuple[list[Path], dict[str, Any]]:
    """Open ``runs`` (labelled as :func:`~weightscope_cli.outputs.run_labels` does) and
    :func:`write_exploration` them."""
    datasets = [open_run(r, storage_options=storage_options) for r in runs]
    return write_exploration(dict(zip(run_labels(runs), datasets)), out, fmt)


def write_exploration(runs: Mapping[str, xr.Dataset], out: Path, fmt: str
                      ) -> tuple[list[Path], dict[str, Any]]:
    """Write ``exploration.<fmt>`` of the sparse ``runs`` into ``out`` (atomically).

    Returns the paths written and ``{"exploration": {label: summary}}`` for ``summary.json``
    (both empty when every run is dense).
    """
    with phases("exploration of the sparse runs"):
        explored = sparse_explorations(runs)
        if not explored:
            return [], {}
        numbers = {label: exploration_summary(ex) for label, ex in explored.items()}
        fig = exploration_figure(explored)
    out.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, out / f"exploration.{fmt}")], {"exploration": numbers}


def write_sweep_exploration(directory: Path, name: str, table: xr.Dataset,
                            metric: str = "test error") -> list[Path]:
    """``NAME-explored.png``, ``.pdf`` and ``.json`` in ``directory`` when ``table`` carries
    a finite ``explored_fraction`` (else nothing: older results, or dense-only sweeps).
    ``metric`` names what the table's means measure (the y axis)."""
    if "explored_fraction" not in table or not np.isfinite(
            table["explored_fraction"].values).any():
        return []
    fig = name_metric(explored_figure(table), metric)
    written = [save_figure(fig, directory / f"{name}-explored.{fmt}") for fmt in ("png", "pdf")]
    trend = {"sweep": name, "metric": metric, **exploration_trend(table),
             "note": f"Spearman rho of mean {metric} against mean explored fraction across "
                     "the sparse series, within each x (model size d) and pooled; negative: "
                     "wider search, lower error"}
    text = json.dumps(_plain(trend), indent=1) + "\n"
    return [*written, write_text(directory / f"{name}-explored.json", text)]


def print_exploration(numbers: dict[str, Any]) -> None:
    """A table of each sparse run's exploration numbers (nothing without any)."""
    runs = numbers.get("exploration") or {}
    if not runs:
        return
    table = Table(title="Exploration of the sparse runs", title_justify="left")
    for col in ("run", "explored (final)", "flip rate (mean)", "mask settled at"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for label, s in runs.items():
        settled = s["mask_distance"]["settled_at_progress"]
        table.add_row(escape(label), _num(s["final_explored_fraction"], ".3f"),
                      _num(s["mean_flip_rate"], ".2e"),
                      "not settled" if settled is None else f"{settled:.0%}")
    Console().print(table)


def _num(value: float | None, spec: str) -> str:
    return "not recorded" if value is None else format(value, spec)
