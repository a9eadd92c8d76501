"""Creating a run so that it appears only complete: built beside its path, then renamed.

A local run is built in ``.<name>.<pid>.creating`` beside its path (group, arrays, coordinates
and attributes) and renamed to its path only then: a process killed at any moment of creation
leaves no run (a leftover build directory, which the next creation of that run removes under
the run's lock) or a complete, resumable one. Replacing a run (``overwrite=True``) renames the
old one aside (``.<name>.<pid>.replaced``), renames the new one in and removes the old one.
Object stores have no rename: there the run is created in place (its group metadata first,
the weightscope attributes last), as documented in ``docs/store-guarantees.md``.

Examples
--------
>>> staging_path("runs/run.zarr").name.startswith(".run.zarr.")
True
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .. import schema
from ..errors import NotARunError, RunExistsError, RunNotFoundError
from . import paths

__all__ = ["check_target", "publish", "remove_leftovers", "staging_path"]

_BUILD, _OLD = "creating", "replaced"


def _aside(path: paths.PathLike, kind: str) -> Path:
    local = Path(os.path.abspath(paths.local_path(path)))
    return local.with_name(f".{local.name}.{os.getpid()}.{kind}")


def staging_path(path: paths.PathLike) -> Path:
    """Where the local run ``path`` is built before it is renamed into place."""
    return _aside(path, _BUILD)


def remove_leftovers(path: paths.PathLike) -> None:
    """Remove build and replaced directories of ``path`` left by killed creations (call with
    the run's lock held: no live writer is creating it)."""
    local = Path(os.path.abspath(paths.local_path(path)))
    for kind in (_BUILD, _OLD):
        for left in local.parent.glob(f".{_glob_escape(local.name)}.*.{kind}"):
            if left.is_dir() and not left.is_symlink():
                shutil.rmtree(left, ignore_errors=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def publish(build: Path, path: paths.PathLike) -> None:
    """Rename the built run ``build`` to ``path`` (replacing the run or empty directory
    there, which :func:`check_target` allowed)."""
    target = Path(os.path.abspath(paths.local_path(path)))
    old = None
    if os.path.lexists(target):
        old = _aside(path, _OLD)
        os.rename(target, old)
    os.rename(build, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_target(path: paths.PathLike, overwrite: bool,
                 storage_options: dict[str, Any] | None) -> None:
    """Refuse to create a run at ``path`` unless nothing is there, or ``overwrite`` and a run
    (or an empty directory) is there."""
    if not paths.exists(path, storage_options):
        return
    if not overwrite:
        if paths.is_url(path) and _interrupted_creation(path, storage_options):
            raise RunExistsError(
                f"'{path}' holds a zarr group without weightscope's attributes: the creation "
                "of a run there was interrupted (object stores create runs in place); pass "
                "overwrite=True to replace it, or choose another path.")
        raise RunExistsError(
            f"a run already exists at '{path}'; pass overwrite=True to replace it, "
            "resume=True to continue it, or choose another path."
        )
    if not _is_empty_dir(path) and not _is_zarr_group(path, storage_options):
        raise RunExistsError(
            f"'{path}' exists and is not a weightscope run; overwrite=True only replaces runs. "
            "Choose another path or remove it yourself."
        )


def _interrupted_creation(path: paths.PathLike,
                          storage_options: dict[str, Any] | None) -> bool:
    """Whether ``path`` is a zarr group without the weightscope format attribute (what a
    creation killed in an object store leaves)."""
    try:
        group = paths.open_group(path, "r", storage_options)
    except (RunNotFoundError, NotARunError):
        return False
    return schema.FORMAT_ATTR not in group.attrs


def _is_empty_dir(path: paths.PathLike) -> bool:
    local = paths.local_path(path)
    return not paths.is_url(path) and local.is_dir() and not any(local.iterdir())


def _is_zarr_group(path: paths.PathLike, storage_options: dict[str, Any] | None) -> bool:
    try:
        paths.open_group(path, "r", storage_options)
    except (RunNotFoundError, NotARunError):
        return False
    return True
