r"""``weightscope info RUN``: what a run holds, and how far a run being recorded has come.

For a run that is not complete a ``recording`` line gives its committed snapshots, last
snapshot step, optimizer steps and the time since its last write (a crashed run's last write
grows old; a live one's stays within the Recorder's ``flush_seconds``).

A parameter reached under several names (tied weights) is listed as ``name (= alias, ...)``.
Text read from the run (names, attributes) is shown inert: control characters as their
escape (``\x1b``) and rich markup as written, never interpreted.

Examples
--------
>>> print(inert("fc[bold]\x1b[31m"))
fc\[bold]\x1b[31m
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from weightscope import schema
from weightscope.store import open_run, run_size_bytes
from weightscope.store.paths import last_write

from .base import app, handle_errors
from .storage import RunArgument, StorageOption, parse_storage_options


@app.command()
@handle_errors
def info(
    run: RunArgument,
    storage_option: StorageOption = None,
) -> None:
    """Show a run's steps, parameters, size on disk and whether it is complete."""
    options = parse_storage_options(storage_option)
    ds = open_run(run, storage_options=options)
    console = Console()
    console.print(_overview(ds, run, options))
    console.print(_param_table(ds))


def _progress(ds: Any, run: str, options: dict[str, Any] | None) -> str:
    """One line on a run still being written: what is stored and how fresh it is."""
    n = ds.sizes[schema.STEP]
    text = f"{n} snapshot{'s' if n != 1 else ''}"
    if n:
        text += f", last step {int(ds[schema.STEP].values[-1])}"
    age = last_write(run, options)
    return text + ("" if age is None else f", last write {age:.0f} s ago")


def _overview(ds: Any, run: str, options: dict[str, Any] | None = None) -> Table:
    attrs = ds.attrs
    steps = ds.step.values
    table = Table(title=f"run {inert(run)}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    status = "yes" if attrs.get(schema.COMPLETE) else "no (still recording, or crashed)"
    table.add_row("complete", status)
    if not attrs.get(schema.COMPLETE):
        table.add_row("recording", _progress(ds, run, options))
    grid = f"{len(steps)} (every {attrs.get(schema.EVERY)} steps"
    grid += f"; {steps[0]} .. {steps[-1]})" if len(steps) else ")"
    table.add_row("snapshots", grid)
    table.add_row("optimizer steps", str(attrs.get(schema.TOTAL_STEPS) or ds.sizes.get(
        schema.ITERATION, 0)))
    table.add_row("weights recorded", f"{ds.sizes[schema.WEIGHT]:,} of {int(ds.numel.sum()):,}")
    table.add_row("size on disk", _human(run_size_bytes(run, options)))
    table.add_row("recorded", ", ".join(v for v in (schema.DISTANCE, schema.LOSS, schema.LR,
                                                     schema.MASK) if v in ds) or "weights only")
    if attrs.get(schema.NONFINITE):
        table.add_row("non-finite values", inert(attrs[schema.NONFINITE]))
    if attrs.get(schema.SPARSE):
        table.add_row("sparse", inert(attrs[schema.SPARSE]))
    table.add_row("created", inert(attrs.get(schema.CREATED)))
    versions = attrs.get(schema.VERSIONS, {})
    table.add_row("with", inert(", ".join(f"{k} {v}" for k, v in versions.items())))
    return table


def _param_table(ds: Any) -> Table:
    counts = np.bincount(ds.param_id.values, minlength=ds.sizes[schema.PARAM])
    shapes = ds.attrs.get(schema.PARAM_SHAPES, {})
    aliases = ds.attrs.get(schema.ALIASES) or {}
    table = Table(title="parameters", title_justify="left")
    for col in ("name", "shape", "recorded", "elements"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for name, count, numel in zip(ds.param.values, counts, ds.numel.values):
        name = str(name)
        others = aliases.get(name) or []
        shown = f"{name} (= {', '.join(map(str, others))})" if others else name
        table.add_row(inert(shown), inert(tuple(shapes.get(name, ()))), f"{count:,}",
                      f"{int(numel):,}")
    return table


def inert(value: object) -> str:
    """``str(value)`` shown as is by rich: control characters as their escape, markup
    escaped."""
    text = "".join(repr(c)[1:-1] if unicodedata.category(c).startswith("C") else c
                   for c in str(value))
    return escape(text)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"
