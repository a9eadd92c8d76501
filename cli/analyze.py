"""``weightscope analyze RUN [RUN ...]``: Figure 1 and summary.json of recorded runs.

``--follow`` re-renders while runs are recorded (:mod:`weightscope_cli.follow`),
``--scheduler`` computes on a dask cluster (:mod:`weightscope_cli.cluster`) and
``--storage-option`` passes fsspec options for URL runs (:mod:`weightscope_cli.storage`).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from weightscope.analyze import Figure1Data, figure1_data, summary
from weightscope.plot import figure1
from weightscope.store import open_run

from .base import app, handle_errors
from .cluster import check_cluster_paths, scheduler_client
from .progress import phases
from .storage import HELP as STORAGE_HELP
from .storage import parse_storage_options


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
    storage_option: Annotated[list[str] | None, typer.Option(help=STORAGE_HELP)] = None,
) -> None:
    """Render the paper's Figure 1 and write the numbers behind it."""
    options = parse_storage_options(storage_option)
    kwargs: dict[str, Any] = {"keep": keep, "param": param, "bins": bins, "scope": scope}
    if scheduler:
        check_cluster_paths(runs)
    with scheduler_client(scheduler):
        if follow:
            from .follow import follow as follow_runs

            data = follow_runs(runs, out, fmt.value, interval=interval, storage_options=options,
                               echo=lambda line: typer.echo(line, err=True), **kwargs)
            paths = [out / f"figure1.{fmt.value}", out / "summary.json"]
        else:
            data = analyze_runs(runs, storage_options=options, **kwargs)
            paths = write_outputs(data, out, fmt.value)
    if data is not None:  # None: --follow stopped before any run had enough snapshots
        print_summary(summary(data), paths)


def analyze_runs(runs: list[str], labels: list[str] | None = None,
                 storage_options: dict[str, Any] | None = None, **kwargs: Any) -> Figure1Data:
    """Open ``runs`` and compute Figure 1 with a progress display."""
    with phases("opening runs") as phase:
        datasets = [open_run(r, storage_options=storage_options) for r in runs]
        return figure1_data(datasets, labels=labels or run_labels(runs), on_phase=phase,
                            **kwargs)


def run_labels(runs: list[str]) -> list[str]:
    """Short unique names of runs (their directory names without ``.zarr``)."""
    names = [Path(r.rstrip("/")).name.removesuffix(".zarr") or r for r in runs]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def write_outputs(data: Figure1Data, out: Path, fmt: str,
                  extra: dict[str, Any] | None = None) -> list[Path]:
    """Write ``figure1.<fmt>`` and ``summary.json`` (plus ``extra`` fields) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with phases("rendering Figure 1"):
        fig = figure1(data)
        fig_path = out / f"figure1.{fmt}"
        fig.savefig(fig_path)
    json_path = out / "summary.json"
    json_path.write_text(json.dumps({**summary(data), **(extra or {})}, indent=1) + "\n")
    return [fig_path, json_path]


def print_summary(s: dict[str, Any], paths: list[Path]) -> None:
    """A short table of the trends behind each panel."""
    sets, dec, dist = s["active_sets"], s["decay"], s["distance"]
    table = Table(title=f"Figure 1 of {s['primary']}", title_justify="left")
    table.add_column("panel")
    table.add_column("measure")
    table.add_column("value", justify="right")
    at = sets["active_at_progress"]
    table.add_row("left", f"active at 10% / 50% / 90% (keep={sets['keep']:g})",
                  f"{at['10%']:.3f} / {at['50%']:.3f} / {at['90%']:.3f}")
    table.add_row("left", "final active / inactive",
                  f"{sets['final_active']:.3f} / {sets['final_inactive']:.3f}")
    fam = dist.get("family")
    if fam:
        table.add_row("middle", "Spearman(total distance, weights added)",
                      f"{fam['spearman_total_vs_added']:+.2f}")
    rho = dec["spearman_median_vs_magnitude"]
    table.add_row("right", f"Spearman(median Δ, final |w|) over {dec['bins']} bins of "
                  f"{dec['param']}", "n/a" if rho is None else f"{rho:+.2f}")
    excluded = sets["excluded_nan"]
    if excluded:
        table.add_row("all", "weights excluded (NaN/Inf)", str(excluded))
    console = Console()
    console.print(table)
    for p in paths:
        console.print(f"wrote {p}")
