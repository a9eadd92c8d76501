"""Rich progress display of the command line (the library itself never prints).

:func:`phases` names the phase an analysis is in. Where its work is countable, a bar with the
count and an ETA replaces the spinner: each dask computation on the local scheduler (the
analyzers' chunk reads and decay blocks) reports its number of tasks when it starts and each
task as it ends (:class:`dask.callbacks.Callback`). Work of unknown size (opening runs,
drawing, a computation on a ``--scheduler`` cluster) keeps the spinner. On a console that is
not a terminal a transient display draws nothing and leaves nothing behind (rich's
``Progress.stop`` prints an empty line there, which put a blank line before error messages).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dask.callbacks import Callback
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["Phases", "bar", "phases"]


def _console() -> Console:
    return Console(stderr=True, force_terminal=None if sys.stderr.isatty() else False)


class _Progress(Progress):
    """``Progress`` that ends the line of its final render on a console that is not
    interactive only where it drew one (not transient): no empty line after a spinner."""

    def stop(self) -> None:
        if not self.disable:
            self.live.stop()
            if not self.live.transient and not self.console.is_interactive:
                self.console.print()


class _Counted(ProgressColumn):
    """``column`` (after ``label``) for a task with a total; for one without, nothing or
    ``unknown``."""

    def __init__(self, column: ProgressColumn | None, label: str = "",
                 unknown: ProgressColumn | None = None) -> None:
        super().__init__()
        self.column, self.label, self.unknown = column, label, unknown

    def render(self, task: Task) -> RenderableType:
        column = self.column if task.total is not None else self.unknown
        if column is None:
            return Text("")
        shown = column.render(task)
        return Text.assemble(self.label, shown) if self.label and isinstance(shown, Text) \
            else shown


class Phases:
    """The phase display: call it with a description to move on to the next phase.

    Each phase and each counted computation is a task of ``progress`` (earlier ones hidden):
    a task with a ``total`` is drawn as a bar with ``completed/total`` and an ETA.
    """

    def __init__(self, progress: Progress, first: str) -> None:
        self.progress, self.description = progress, first
        self.task: TaskID = progress.add_task(first, total=None)

    def __call__(self, description: str) -> None:
        self.description = description
        self._next(None)

    def count(self, total: int) -> None:
        """Countable work of ``total`` units starts (a bar from 0)."""
        self._next(total)

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def _next(self, total: int | None) -> None:
        self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(self.description, total=total)


class _DaskTasks(Callback):
    """Reports each local dask computation's tasks to a :class:`Phases` display."""

    def __init__(self, display: Phases) -> None:
        super().__init__()
        self.display = display

    def _start_state(self, dsk: Any, state: dict[str, Any]) -> None:
        pending = sum(len(state[k]) for k in ("ready", "waiting", "running"))
        self.display.count(pending + len(state["finished"]))

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.display.advance()


@contextmanager
def phases(first: str) -> Iterator[Phases]:
    """A transient display naming the current phase, with a bar while work is countable."""
    with _Progress(_Counted(None, unknown=SpinnerColumn()), TextColumn("{task.description}"),
                   _Counted(BarColumn()), _Counted(MofNCompleteColumn()), TimeElapsedColumn(),
                   _Counted(TimeRemainingColumn(), label="ETA "), console=_console(),
                   transient=True) as progress:
        display = Phases(progress, first)
        with _DaskTasks(display):
            yield display


@contextmanager
def bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar with ETA; yields ``advance(n=1, description=None)``.

    The bar stays on screen when the block ends normally; an exception removes it (on a
    console that is not a terminal it is never drawn), so an error message stands alone.
    """
    with _Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=_console(),
            transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            progress.update(task, advance=n, **({"description": description}
                                                if description else {}))

        try:
            yield advance
        except BaseException:  # the error is the only line left behind: no final bar
            progress.live.transient = True
            raise
