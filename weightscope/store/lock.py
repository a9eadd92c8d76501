"""One writer per run: a lock the live writer holds on a local run.

The lock is an ``fcntl.flock`` on the file ``<run>.lock`` beside the run directory (beside, not
inside: a run being created or replaced does not exist yet, and its lock must). The file
records the holder (pid, host, start time) for the message a second writer gets, a
:class:`~weightscope.errors.RunLockedError`. The OS releases a ``flock`` when its holder dies
(even by ``kill -9``), so a lock left by a dead process is free: the next writer takes it
over (the stale holder it found is kept in :attr:`RunLock.previous`). A released lock's file
is removed; a writer that opened the file just before then finds that the name now leads to
another file (or none) and opens it again, so two writers never hold two files.

Within one process, a newer writer of the same run takes the lock over from the older one
(a closed Recorder whose writer was not released yet must not block the next one); the older
writer's next write raises :class:`~weightscope.errors.RunLockedError`.

Object stores (fsspec URLs) have no lock: :meth:`RunLock.acquire` returns None there, and
one writer per run is the user's to ensure (documented in ``docs/store-guarantees.md``).

Examples
--------
>>> import tempfile, os
>>> run = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> lock = RunLock.acquire(run)
>>> lock.held, os.path.exists(run + ".lock")
(True, True)
>>> lock.release()
>>> lock.held, os.path.exists(run + ".lock")
(False, False)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from ..errors import RunLockedError
from . import paths

try:
    import fcntl
except ImportError:  # not POSIX: no lock (documented with the object stores')
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "RunLock", "lock_path"]

LOCK_SUFFIX = ".lock"
_OPEN = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_HELD: dict[str, RunLock] = {}  # lock file -> the lock this process holds on it
_REGISTRY = threading.Lock()


def lock_path(run: paths.PathLike) -> Path:
    """The lock file of the local run ``run``: ``<run>.lock`` beside it."""
    local = Path(os.path.abspath(paths.local_path(run)))
    return local.with_name(local.name + LOCK_SUFFIX)


class RunLock:
    """The lock a writer holds on a local run (see the module docstring)."""

    def __init__(self, run: paths.PathLike, path: Path, fd: int,
                 previous: dict[str, Any] | None = None) -> None:
        self.run, self.path, self._fd = run, path, fd
        #: The holder recorded in the lock file when it was taken over (a dead process).
        self.previous = previous
        self._superseded = False

    @classmethod
    def acquire(cls, run: paths.PathLike) -> RunLock | None:
        """Lock ``run`` for this writer (None for a URL or on Windows: no lock there).

        Raises
        ------
        RunLockedError
            Another live process holds the lock.
        """
        if paths.is_url(run) or fcntl is None:
            return None
        path = lock_path(run)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _REGISTRY:
            older = _HELD.get(str(path))
            if older is not None and older._fd is not None:  # this process: take it over
                lock = cls(run, path, older._fd, _holder(older._fd))
                older._fd, older._superseded = None, True
            else:
                lock = cls(run, path, *_lock_file(run, path))
            _HELD[str(path)] = lock
        _record_holder(lock._fd)
        return lock

    @property
    def held(self) -> bool:
        """Whether this lock is still held (not released, not taken over)."""
        return self._fd is not None

    def check(self) -> None:
        """Raise :class:`RunLockedError` if a newer writer of this process took the lock."""
        if self._superseded:
            raise RunLockedError(
                f"a newer writer of this process took over the run '{self.run}'; this one may "
                "not write to it any more. Close the older Recorder before opening the run "
                "again.")

    def release(self) -> None:
        """Give the lock up and remove its file (idempotent)."""
        with _REGISTRY:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if _HELD.get(str(self.path)) is self:
                del _HELD[str(self.path)]
            try:
                if _same_file(fd, self.path):
                    os.unlink(self.path)
            finally:
                os.close(fd)  # releases the flock

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the OS releases it anyway
            pass


def _lock_file(run: paths.PathLike, path: Path) -> tuple[int, dict[str, Any] | None]:
    """Open and flock the lock file ``path``: ``(descriptor, stale holder or None)``."""
    while True:
        fd = os.open(path, _OPEN, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunLockedError(_locked_message(run, path, holder)) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd, _holder(fd)
        os.close(fd)  # released and removed meanwhile: lock the file now at that name


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _holder(fd: int) -> dict[str, Any] | None:
    """The holder recorded in the lock file (None if empty or unreadable)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _locked_message(run: paths.PathLike, path: Path, holder: dict[str, Any] | None) -> str:
    who = ("an unknown process" if holder is None else
           f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}")
    return (f"the run '{run}' is being written by another writer ({who}; lock file '{path}'); "
            "a run has one writer at a time. Wait for that writer to close (or stop it) and "
            "retry, or record to another path; a lock of a process that died is released by "
            "the OS and taken over by the next writer.")
