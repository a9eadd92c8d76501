"""Rich progress display of the command line (the library itself never prints)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["bar", "phases"]


def _console() -> Console:
    return Console(stderr=True, force_terminal=None if sys.stderr.isatty() else False)


@contextmanager
def phases(first: str) -> Iterator[Callable[[str], None]]:
    """A spinner naming the current phase; yields ``phase(description)`` to move on."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=_console(), transient=True) as progress:
        task = progress.add_task(first, total=None)
        yield lambda text: progress.update(task, description=text)


@contextmanager
def bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar with ETA; yields ``advance(n=1, description=None)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=_console(),
            transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            progress.update(task, advance=n, **({"description": description}
                                                if description else {}))

        yield advance
