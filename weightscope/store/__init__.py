"""Torch-free zarr I/O of run stores: :func:`open_run` to read, :class:`RunWriter` to write.

Runs live in local directories or behind fsspec URLs (``s3://``, ``gs://``, ``memory://``,
``file://``; see :mod:`weightscope.store.paths` for credentials and storage errors).

Examples
--------
>>> from weightscope.store import open_run
>>> open_run("does/not/exist.zarr")
Traceback (most recent call last):
...
weightscope.errors.RunNotFoundError: no run at 'does/not/exist.zarr': the path does not exist...
"""

from .direct import aligned_bytes
from .layout import Layout, plan_chunks
from .paths import StorageAccessError, StorageError, run_size_bytes
from .reader import open_run
from .verify import Damage, VerifyReport, verify_run
from .writer import DEFAULT_BUFFER_BYTES, RunWriter

__all__ = ["DEFAULT_BUFFER_BYTES", "Damage", "Layout", "RunWriter", "StorageAccessError",
           "StorageError", "VerifyReport", "aligned_bytes", "open_run", "plan_chunks",
           "run_size_bytes", "verify_run"]
