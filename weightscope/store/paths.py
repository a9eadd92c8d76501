"""Opening run locations: local directories and fsspec URLs (``s3://``, ``memory://``...).

Examples
--------
>>> is_url("s3://bucket/run.zarr"), is_url("runs/run.zarr")
(True, False)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zarr
import zarr.storage

from .. import schema
from ..errors import NotARunError, RunNotFoundError

__all__ = ["exists", "is_url", "open_group", "run_size_bytes"]

PathLike = str | os.PathLike[str]


def is_url(path: PathLike) -> bool:
    """Whether ``path`` is an fsspec URL rather than a local path."""
    return "://" in str(path) and not str(path).startswith("file://")


def _local(path: PathLike) -> Path:
    text = str(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def _store(path: PathLike, mode: str, storage_options: dict[str, Any] | None) -> Any:
    if is_url(path):
        read_only = mode == "r"
        return zarr.storage.FsspecStore.from_url(
            str(path), storage_options=storage_options, read_only=read_only
        )
    return zarr.storage.LocalStore(_local(path), read_only=mode == "r")


def exists(path: PathLike, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether anything exists at ``path`` (a local file/directory or a zarr node)."""
    if not is_url(path):
        return _local(path).exists()
    try:
        zarr.open_group(_store(path, "r", storage_options), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError):
        return False
    return True


def open_group(
    path: PathLike, mode: str = "r", storage_options: dict[str, Any] | None = None
) -> zarr.Group:
    """Open the zarr group of a run, mapping failures to weightscope errors.

    Parameters
    ----------
    path : str or os.PathLike
        Local directory or fsspec URL.
    mode : {"r", "r+", "w"}
        Read only, read/write an existing run, or create (replacing what is there).
    storage_options : dict, optional
        Passed to fsspec for URLs (credentials, endpoint...).

    Raises
    ------
    RunNotFoundError
        Nothing exists at ``path`` (modes "r" and "r+").
    NotARunError
        ``path`` exists but is not a zarr v3 group.
    """
    if mode != "w" and not exists(path, storage_options):
        raise RunNotFoundError(
            f"no run at '{path}': the path does not exist. Check the path, or record a run "
            "there with weightscope.Recorder."
        )
    try:
        return zarr.open_group(_store(path, mode, storage_options), mode=mode, zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError) as err:
        raise NotARunError(
            f"'{path}' is not a weightscope run: it is not a zarr v3 group ({err}). "
            "Give the directory a Recorder wrote (e.g. run.zarr)."
        ) from None


def is_run(group: zarr.Group) -> bool:
    """Whether ``group`` carries the weightscope format attribute."""
    return schema.FORMAT_ATTR in group.attrs


def run_size_bytes(path: PathLike, storage_options: dict[str, Any] | None = None) -> int:
    """Bytes the run occupies in its storage (sum of its files or objects)."""
    if is_url(path):
        import fsspec

        fs, root = fsspec.core.url_to_fs(str(path), **(storage_options or {}))
        return int(fs.du(root, total=True))
    total = 0
    for dirpath, _, files in os.walk(_local(path)):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total
