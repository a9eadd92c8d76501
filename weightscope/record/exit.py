"""What happens to Recorders still open when the interpreter exits: a loud exit.

When the main script ends, every Recorder that was not closed is aborted: what it holds is
stored and its run stays incomplete (resumable). If that fails (most often a writer error kept
since a disk filled up), the error is printed as one line on stderr and the process exits with
status 1, so a script that ends without ``close()`` never reports success over a run that lost
snapshots. Inside a script, ``close()`` (or a ``with`` block) raises the error where it
happens instead. A child made by ``os.fork`` leaves its parent's Recorders alone.

When: the abort runs among the threading module's exit calls (``threading._register_atexit``,
CPython's hook that :mod:`concurrent.futures` uses too), before thread pools refuse new work;
at :mod:`atexit` time the store's chunk pool no longer accepts writes, so nothing could be
stored there. While another non-daemon thread of the program still runs (it may still
record), the abort waits for :mod:`atexit`, as before, where a failure is as loud. Python
fixes a script's exit status before its exit handlers run, so the only way to change it is
:func:`os._exit`, called from an :mod:`atexit` handler after the standard streams and
:mod:`logging` are flushed; exit handlers registered before weightscope was imported (they
run after this one) are skipped in that case only.

Examples
--------
>>> class Fine:
...     path = "run.zarr"
...     def abort(self):
...         pass
>>> abort_all([Fine()])
[]
>>> class Full(Fine):
...     def abort(self):
...         raise OSError(28, "No space left on device")
>>> print(*abort_all([Full()]))
weightscope: error: the Recorder of 'run.zarr' was not closed and could not store what it
held: [Errno 28] No space left on device
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # its exit call is registered before ours: runs after it
import os
import sys
import threading
from collections.abc import Iterable, MutableSet
from typing import Any, Protocol

__all__ = ["abort_all", "register_exit"]

#: Failure lines of the Recorders aborted at exit (the atexit handler exits 1 when any).
_FAILURES: list[str] = []


class _Abortable(Protocol):
    path: Any

    def abort(self) -> None: ...


def register_exit(recorders: MutableSet[Any]) -> None:
    """At exit, abort the Recorders in ``recorders`` (a live set) and exit 1 if one fails."""
    forget_in_children(recorders)
    atexit.register(_exit_status)  # runs last: after the late abort below
    atexit.register(_abort_at_exit, recorders)  # whatever the early abort left
    register = getattr(threading, "_register_atexit", None)
    if register is not None:  # CPython: early, while thread pools accept work
        register(_abort_early, recorders)


def forget_in_children(recorders: MutableSet[Any]) -> None:
    """Empty ``recorders`` in a child made by ``os.fork``: the parent's Recorders are not the
    child's to store (at its exit it would commit the parent's run and release its lock).
    """
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=recorders.clear)


def abort_all(recorders: Iterable[_Abortable]) -> list[str]:
    """Abort each of ``recorders``; the one-line message of each failure, in order."""
    failures = []
    for rec in list(recorders):
        try:
            rec.abort()
        except Exception as err:
            failures.append(f"weightscope: error: the Recorder of '{rec.path}' was not closed "
                            f"and could not store what it held: {_one_line(err)}")
    return failures


def _abort_early(recorders: Iterable[_Abortable]) -> None:
    """Abort unless a thread of the program still runs (it may be using a Recorder: those
    are aborted at :mod:`atexit` time, once threads are joined, as before)."""
    workers = getattr(concurrent.futures.thread, "_threads_queues", {})
    if not any(t is not threading.current_thread() and not t.daemon and t.is_alive()
               and t not in workers for t in threading.enumerate()):
        _abort_at_exit(recorders)


def _abort_at_exit(recorders: Iterable[_Abortable]) -> None:
    failures = abort_all(recorders)
    for line in failures:
        print(line, file=sys.stderr, flush=True)
    _FAILURES.extend(failures)


def _exit_status() -> None:
    if _FAILURES:
        _flush()
        os._exit(1)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _flush() -> None:
    """What the skipped end of the interpreter's shutdown would have flushed."""
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
