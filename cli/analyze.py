"""``weightscope analyze RUN [RUN ...]``: Figure 1 and summary.json of recorded runs.

``--follow`` re-renders while runs are recorded (:mod:`weightscope_cli.follow`),
``--scheduler`` computes on a dask cluster (:mod:`weightscope_cli.cluster`) and
``--storage-option`` passes fsspec options for URL runs (:mod:`weightscope_cli.storage`).
"""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from weightscope.analyze import Figure1Data, figure1_data
from weightscope.errors import ConfigError
from weightscope.store import open_run
from weightscope.store.paths import is_url

from .base import app, handle_errors
from .cluster import check_cluster_paths, scheduler_client
from .exploration import explore_runs, print_exploration
from .follow import follow as follow_runs
from .outputs import check_out, print_summary, run_labels, write_outputs
from .progress import phases
from .storage import StorageOption, parse_storage_options


class Format(str, Enum):
    png = "png"
    pdf = "pdf"
    svg = "svg"


@app.command()
@handle_errors
def analyze(
    runs: Annotated[list[str], typer.Argument(help="Run directories (or URLs); several runs of "
                                                   "one architecture make the middle panel.")],
    out: Annotated[Path, typer.Option(help="Directory for figure1.<format> and summary.json.")]
    = Path("."),
    keep: Annotated[float, typer.Option(help="Fraction of weights kept (active set threshold).")]
    = 0.25,
    param: Annotated[str | None, typer.Option(help="Parameter of the decay panel (default: the "
                                                   "largest recorded).")] = None,
    bins: Annotated[int, typer.Option(help="Equal-count bins of final |w|.")] = 20,
    fmt: Annotated[Format, typer.Option("--format", help="Figure file format.")] = Format.png,
    scope: Annotated[str, typer.Option(help="Threshold per 'param' or 'global'.")] = "param",
    follow: Annotated[bool, typer.Option(help="Re-render as the runs grow, until they are "
                                              "complete (or Ctrl-C).")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks with --follow.")] = 2.0,
    scheduler: Annotated[str | None, typer.Option(
        envvar="DASK_SCHEDULER_ADDRESS", help="Address of a dask scheduler to compute on "
        "(tcp://HOST:8786).")] = None,
    storage_option: StorageOption = None,
) -> None:
    """Render the paper's Figure 1 and write the numbers behind it."""
    options = parse_storage_options(storage_option)
    check_distinct(runs)
    check_out(out)
    kwargs: dict[str, Any] = {"keep": keep, "param": param, "bins": bins, "scope": scope}
    if scheduler:
        check_cluster_paths(runs)
    with scheduler_client(scheduler):
        if follow:
            data = follow_runs(runs, out, fmt.value, interval=interval, storage_options=options,
                               echo=lambda line: typer.echo(line, err=True), **kwargs)
            if data is None:  # --follow stopped before any run had enough snapshots
                return
            paths = [out / f"figure1.{fmt.value}", out / "summary.json"]
            numbers = json.loads(paths[1].read_text())  # the last render's summary
        else:
            data = analyze_runs(runs, storage_options=options, **kwargs)
            explored, extra = explore_runs(runs, out, fmt.value, storage_options=options)
            paths, numbers = write_outputs(data, out, fmt.value, extra=extra)
            paths += explored
    print_exploration(numbers)
    print_summary(numbers, paths)


def analyze_runs(runs: list[str], labels: list[str] | None = None,
                 storage_options: dict[str, Any] | None = None, **kwargs: Any) -> Figure1Data:
    """Open ``runs`` and compute Figure 1 with a progress display.

    A run too short for decay times gets the left and middle panels (``decay_missing`` says
    why; :func:`~weightscope_cli.outputs.print_summary` prints it as a warning).
    """
    with phases("opening runs") as phase:
        datasets = [open_run(r, storage_options=storage_options) for r in runs]
        return figure1_data(datasets, labels=labels or run_labels(runs), on_phase=phase,
                            require_decay=False, **kwargs)


def check_distinct(runs: list[str]) -> None:
    """Refuse a run given twice (the same directory or URL, however spelled).

    >>> check_distinct(["a.zarr", "b.zarr"])
    >>> check_distinct(["a.zarr", "./a.zarr"])
    Traceback (most recent call last):
    ...
    weightscope.errors.ConfigError: each RUN must be given once; 'a.zarr' and './a.zarr' are \
the same run. Pass it once.
    """
    seen: dict[str, str] = {}
    for run in runs:
        key = run.rstrip("/") if is_url(run) else os.path.realpath(run)
        if key in seen:
            raise ConfigError(f"each RUN must be given once; '{seen[key]}' and '{run}' are the "
                              "same run. Pass it once.")
        seen[key] = run
