"""Opening run locations: local directories and fsspec URLs (``s3://``, ``gs://``, ``memory://``).

URLs go through fsspec (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``), so credentials and
endpoints come from the usual environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``AWS_ENDPOINT_URL``; ``GOOGLE_APPLICATION_CREDENTIALS``; fsspec's
``FSSPEC_<PROTOCOL>_<OPTION>`` variables) or from ``storage_options``, passed to fsspec as is
(e.g. ``{"client_kwargs": {"endpoint_url": "http://localhost:9000"}}``, ``{"anon": True}``).

Object stores replace each object atomically (an S3 PUT is all or nothing), which is all the
writer needs: data objects are written before the metadata object that commits them. Listing
caches are cleared whenever a run is opened for reading, so reopening a live run sees it grow.

Failures of the storage itself become weightscope errors, never a raw client traceback:
a missing bucket or path is a :class:`~weightscope.errors.RunNotFoundError`, denied access a
:class:`StorageAccessError` (bad input, exit code 2), and an unreachable endpoint or network
failure a :class:`StorageError` (exit code 1).

Examples
--------
>>> is_url("s3://bucket/run.zarr"), is_url("runs/run.zarr"), is_url("file:///tmp/run.zarr")
(True, False, False)
>>> exists("memory://paths-doc/none.zarr")
False
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zarr
import zarr.storage

from .. import schema
from ..errors import (
    CorruptRunError,
    NotARunError,
    RunNotFoundError,
    StorageAccessError,
    StorageError,
    WeightscopeError,
)
from .files import is_regular_file

__all__ = ["StorageAccessError", "StorageError", "exists", "is_url", "last_write",
           "local_path", "open_group", "run_size_bytes", "storage_errors"]

PathLike = str | os.PathLike[str]

#: Packages whose exceptions mean the storage (not weightscope) failed, for URLs only.
_CLIENT_PACKAGES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "adlfs",
                    "azure", "requests", "urllib3")
_BUCKETS = {"s3", "s3a", "gs", "gcs", "abfs", "az", "adl", "oss"}
_NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError")


def is_url(path: PathLike) -> bool:
    """Whether ``path`` is an fsspec URL rather than a local path (``file://`` is local)."""
    return "://" in str(path) and not str(path).startswith("file://")


def local_path(path: PathLike) -> Path:
    """The local ``Path`` of a path that is not a URL (a ``file://`` prefix removed)."""
    text = str(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def _fs(path: PathLike, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(str(path), **(storage_options or {}))


@contextmanager
def storage_errors(path: PathLike) -> Iterator[None]:
    """Turn failures of the storage behind ``path`` into weightscope errors.

    ``PermissionError`` (and missing credentials) become :class:`StorageAccessError`; for URLs,
    other ``OSError`` and errors of the storage client packages (botocore, aiohttp...)
    become :class:`StorageError`. ``FileNotFoundError`` and weightscope errors pass through.

    Examples
    --------
    >>> with storage_errors("s3://bucket/run.zarr"):
    ...     raise PermissionError("Forbidden")
    Traceback (most recent call last):
    ...
    weightscope.errors.StorageAccessError: access to 's3://bucket/run.zarr' was denied...
    """
    try:
        yield
    except (WeightscopeError, FileNotFoundError):
        raise
    except Exception as err:
        if isinstance(err, PermissionError) or type(err).__name__ in _NO_CREDENTIALS:
            raise StorageAccessError(
                f"access to '{path}' was denied ({_reason(err)}). Give credentials allowed to "
                "use it: the usual environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
                "AWS_PROFILE for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://) or "
                "storage_options=."
            ) from None
        client = type(err).__module__.split(".")[0] in _CLIENT_PACKAGES
        if not is_url(path) or not (isinstance(err, OSError) or client):
            raise
        raise StorageError(
            f"the storage of '{path}' failed ({_reason(err)}). Check the endpoint and the "
            "network (AWS_ENDPOINT_URL, or storage_options={'client_kwargs': {'endpoint_url': "
            "...}}), then retry."
        ) from None


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def _store(path: PathLike, mode: str, storage_options: dict[str, Any] | None) -> Any:
    if is_url(path):
        store = zarr.storage.FsspecStore.from_url(
            str(path), storage_options=storage_options, read_only=mode == "r")
        if hasattr(store.fs, "invalidate_cache"):
            store.fs.invalidate_cache()  # fsspec caches listings: see a live run grow
        return store
    return zarr.storage.LocalStore(local_path(path).absolute(), read_only=mode == "r")


def exists(path: PathLike, storage_options: dict[str, Any] | None = None) -> bool:
    """Whether anything exists at ``path`` (a local file or directory, objects under a URL)."""
    if not is_url(path):
        return local_path(path).exists()
    with storage_errors(path):
        fs, root = _fs(path, storage_options)
        fs.invalidate_cache()
        return bool(fs.exists(root))


def _missing(path: PathLike, storage_options: dict[str, Any] | None) -> str:
    """Why nothing is at ``path``: its bucket is missing, or the path itself."""
    if is_url(path):
        fs, root = _fs(path, storage_options)
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        bucket = root.strip("/").split("/")[0]
        if protocols & _BUCKETS and bucket != root.strip("/") and not fs.exists(bucket):
            return (f"the bucket '{bucket}' does not exist (or is not visible with these "
                    "credentials)")
    return "the path does not exist"


def _check_metadata_file(meta: Path) -> None:
    """Refuse a group metadata file that is not a regular file (a FIFO would block the read)."""
    if is_regular_file(meta) is False:
        raise CorruptRunError(
            f"'{meta}' is not a regular file (a FIFO, device, directory or symlink loop is in "
            "its place). Remove it and restore the run from a backup.")


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
        Nothing exists at ``path`` (modes "r" and "r+"), or its bucket does not exist.
    NotARunError
        ``path`` exists but is not a zarr v3 group.
    StorageAccessError, StorageError
        The storage denied access, or failed.
    """
    with storage_errors(path):
        if mode != "w" and not exists(path, storage_options):
            raise RunNotFoundError(
                f"no run at '{path}': {_missing(path, storage_options)}. Check the path, or "
                "record a run there with weightscope.Recorder."
            )
        if mode != "w" and not is_url(path):
            _check_metadata_file(local_path(path) / "zarr.json")
        try:
            return zarr.open_group(_store(path, mode, storage_options), mode=mode,
                                   zarr_format=3)
        except FileNotFoundError as err:
            if mode == "w":
                raise RunNotFoundError(
                    f"cannot create a run at '{path}': {_missing(path, storage_options)} "
                    f"({_reason(err)}). Create the bucket (or parent) first, or fix the URL."
                ) from None
            raise NotARunError(_not_a_group(path, err)) from None
        except (zarr.errors.GroupNotFoundError, KeyError, ValueError) as err:
            raise NotARunError(_not_a_group(path, err)) from None


def _not_a_group(path: PathLike, err: BaseException) -> str:
    return (f"'{path}' is not a weightscope run: it is not a zarr v3 group ({err}). "
            "Give the directory a Recorder wrote (e.g. run.zarr).")


def is_run(group: zarr.Group) -> bool:
    """Whether ``group`` carries the weightscope format attribute."""
    return schema.FORMAT_ATTR in group.attrs


def run_size_bytes(path: PathLike, storage_options: dict[str, Any] | None = None) -> int:
    """Bytes the run occupies in its storage (sum of its files or objects)."""
    if is_url(path):
        with storage_errors(path):
            fs, root = _fs(path, storage_options)
            return int(fs.du(root, total=True))
    total = 0
    for dirpath, _, files in os.walk(local_path(path)):
        total += sum(_file_bytes(os.path.join(dirpath, f)) for f in files)
    return total


def _file_bytes(path: str) -> int:
    """A file's own size (a symlink's, never its target's: a dangling one is no error);
    0 for one a live writer renamed away meanwhile."""
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def last_write(path: PathLike, storage_options: dict[str, Any] | None = None) -> float | None:
    """Seconds since the run last committed (its group metadata changed), or None if unknown.

    Examples
    --------
    >>> last_write("memory://paths-doc/none.zarr") is None
    True
    """
    meta = f"{str(path).rstrip('/')}/zarr.json"
    try:
        if not is_url(path):
            return max(0.0, time.time() - os.path.getmtime(local_path(meta)))
        with storage_errors(path):
            fs, root = _fs(meta, storage_options)
            stamp = fs.modified(root)
    except (OSError, NotImplementedError, WeightscopeError):
        return None
    return max(0.0, time.time() - stamp.timestamp())
