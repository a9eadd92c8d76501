"""What ``weightscope analyze`` (and ``demo``, ``--follow``) leave behind: ``figure1.<format>``,
``summary.json`` and the summary table printed at the end.

The numbers of :func:`weightscope.analyze.summary` are computed once per rendering: the same
dict is written to ``summary.json`` and given to :func:`print_summary`.

Examples
--------
>>> run_labels(["runs/a.zarr", "other/a.zarr", "s3://bucket/b.zarr/"])
['a#0', 'a#1', 'b']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from weightscope.analyze import Figure1Data, summary
from weightscope.plot import figure1

from .progress import phases

__all__ = ["print_summary", "run_labels", "write_outputs"]


def run_labels(runs: list[str]) -> list[str]:
    """Short unique names of runs (their directory names without ``.zarr``)."""
    names = [Path(r.rstrip("/")).name.removesuffix(".zarr") or r for r in runs]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def write_outputs(data: Figure1Data, out: Path, fmt: str,
                  extra: dict[str, Any] | None = None) -> tuple[list[Path], dict[str, Any]]:
    """Write ``figure1.<fmt>`` and ``summary.json`` (plus ``extra`` fields) into ``out``.

    Returns the paths written and the numbers of ``summary.json`` (for :func:`print_summary`).
    """
    out.mkdir(parents=True, exist_ok=True)
    with phases("rendering Figure 1"):
        fig = figure1(data)
        fig_path = out / f"figure1.{fmt}"
        fig.savefig(fig_path)
    numbers = {**summary(data), **(extra or {})}
    json_path = out / "summary.json"
    json_path.write_text(json.dumps(numbers, indent=1) + "\n")
    return [fig_path, json_path], numbers


def print_summary(s: dict[str, Any], paths: list[Path]) -> None:
    """A short table of the trends behind each panel (and a warning line on stderr when the
    decay panel is missing: the run is too short)."""
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
    _decay_rows(table, dec)
    excluded = sets["excluded_nan"]
    if excluded:
        table.add_row("all", "weights excluded (NaN/Inf)", str(excluded))
    console = Console()
    console.print(table)
    if dec.get("note") and not dec.get("missing"):
        console.print(f"note: {dec['note']}")
    for p in paths:
        console.print(f"wrote {p}")


def _decay_rows(table: Table, dec: dict[str, Any]) -> None:
    """The right panel's rows; a run too short for it gets a warning line on stderr."""
    if dec.get("missing"):
        typer.echo(f"warning: no decay panel: {dec['missing']}", err=True)
        table.add_row("right", "decay time Δ", "missing (run too short)")
        return
    rho = dec["spearman_median_vs_magnitude"]
    table.add_row("right", f"Spearman(median Δ, final |w|) over {dec['bins']} bins of "
                  f"{dec['param']}", "n/a" if rho is None else f"{rho:+.2f}")
    if dec.get("censored_fraction"):
        frac = dec["censored_fraction"]
        table.add_row("right", f"censored (Δ ≥ cap {dec['cap']:.2g}): weights per bin, medians",
                      f"{min(frac):.0%}-{max(frac):.0%}, {sum(dec['censored_median'])} of "
                      f"{dec['bins']}")
