"""Checks of stored chunks before zarr decodes them: nothing damaged reaches a decompressor.

:func:`check_chunk` is called by the reader's :class:`~weightscope.store.view.CommittedView` on
every chunk it returns (and so by :func:`~weightscope.store.verify_run`). A chunk is refused
with :class:`~weightscope.errors.CorruptRunError`, naming the array and chunk key, when

- its ``crc32c`` checksum (every array of a run written since the checksums came) does not
  match its bytes;
- an uncompressed chunk is not exactly as long as the chunk's values (plus the checksum);
- a blosc chunk's header disagrees with its length or with the chunk's size (a truncated chunk
  would send the decompressor past its buffer);
- it is missing from a checksummed array whose chunks the writer always stores
  (:data:`REQUIRED`): zarr would read it as the fill value, a silently wrong number (runs
  written before the checksums left chunks of fill values unwritten: there a missing chunk
  reads as the fill value, as it always did).

Examples
--------
>>> spec = ChunkSpec.from_metadata("step", {"shape": [4], "data_type": "int64",
...     "chunk_grid": {"configuration": {"chunk_shape": [4]}},
...     "chunk_key_encoding": {"name": "default"}, "codecs": [{"name": "bytes"}]})
>>> check_chunk(spec, "step/c/0", b"12345")
Traceback (most recent call last):
...
weightscope.errors.CorruptRunError: chunk 'step/c/0' of array 'step' is damaged: it holds 5 bytes...
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import google_crc32c
import numpy as np

from .. import schema
from ..errors import CorruptRunError, WeightscopeError

__all__ = ["REQUIRED", "ChunkSpec", "check_chunk", "chunk_array", "corrupt_errors"]

#: Arrays every chunk of which the writer stores (``loss``/``lr`` start with their first
#: known value: their earlier chunks are legitimately absent, read as NaN).
REQUIRED = frozenset({schema.W, schema.MASK, schema.STEP, schema.PARAM, schema.NUMEL,
                      schema.PARAM_ID, schema.INDEX, schema.ITERATION, schema.DISTANCE})
_FIX = ("Run weightscope.store.verify_run on the run to list every damaged chunk; restore "
        "the run from a backup or re-record it")


@dataclass(frozen=True)
class ChunkSpec:
    """What the checks need of one array's metadata (``zarr.json``)."""

    name: str
    chunk_values: int  # values in one chunk
    itemsize: int | None  # bytes per value (None: variable-length strings)
    codecs: tuple[str, ...]

    @classmethod
    def from_metadata(cls, name: str, meta: dict[str, Any]) -> ChunkSpec | None:
        """The spec of an array (None for a layout these checks do not know)."""
        try:
            chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
            codecs = tuple(str(c["name"]) for c in meta["codecs"])
            if meta["chunk_key_encoding"]["name"] != "default":
                return None
        except (KeyError, TypeError):
            return None
        try:
            itemsize: int | None = np.dtype(str(meta["data_type"])).itemsize
        except (TypeError, ValueError):
            itemsize = None
        return cls(name, math.prod(int(c) for c in chunks), itemsize, codecs)

    @property
    def chunk_bytes(self) -> int | None:
        """Bytes of one chunk's values (None for variable-length strings)."""
        return None if self.itemsize is None else self.chunk_values * self.itemsize


def chunk_array(key: str) -> str | None:
    """The array path of a chunk key (``"w/c/0/3"`` -> ``"w"``), None if it is no chunk key."""
    head, sep, _ = key.rpartition("/c/")
    if sep:
        return head
    return "" if key.startswith("c/") else None


def check_chunk(spec: ChunkSpec, key: str, data: Any) -> None:
    """Raise :class:`CorruptRunError` if the chunk ``key`` (its bytes, None when absent) is
    damaged (see the module docstring)."""
    checksummed = bool(spec.codecs) and spec.codecs[-1] == "crc32c"
    if data is None:
        # runs written before the checksums left chunks of fill values unwritten
        if spec.name in REQUIRED and checksummed:
            _damaged(spec, key, "it is missing (the writer stores every chunk of this array)")
        return
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if checksummed:
        if len(raw) < 4 or np.uint32(google_crc32c.value(raw[:-4])).tobytes() != bytes(raw[-4:]):
            _damaged(spec, key, "its crc32c checksum does not match its bytes")
        raw = raw[:-4]
    inner = [c for c in spec.codecs if c not in ("bytes", "crc32c")]
    size = spec.chunk_bytes
    if not inner and size is not None and len(raw) != size:
        _damaged(spec, key, f"it holds {len(raw)} bytes, not the {size} of its values")
    if inner == ["blosc"]:
        _check_blosc(spec, key, raw)


def _check_blosc(spec: ChunkSpec, key: str, raw: np.ndarray) -> None:
    """A blosc frame's header: its compressed size is the chunk's length, its decompressed
    size the chunk's size."""
    if len(raw) < 16:
        _damaged(spec, key, f"its blosc header is cut short ({len(raw)} bytes)")
    nbytes, cbytes = (int(v) for v in raw[4:16].view("<u4")[[0, 2]])
    if cbytes != len(raw):
        _damaged(spec, key, f"its blosc header says {cbytes} bytes, the chunk holds {len(raw)}")
    if spec.chunk_bytes is not None and nbytes != spec.chunk_bytes:
        _damaged(spec, key, f"it decompresses to {nbytes} bytes, not the {spec.chunk_bytes} "
                            "of its values")


def _damaged(spec: ChunkSpec, key: str, reason: str) -> None:
    raise CorruptRunError(f"chunk '{key}' of array '{spec.name}' is damaged: {reason}. {_FIX}.")


@contextmanager
def corrupt_errors(where: str) -> Iterator[None]:
    """Turn what zarr raises on a damaged store into one :class:`CorruptRunError`.

    zarr (and its codecs, json, asyncio) raise many types on a damaged store (``ValueError``,
    ``KeyError``, ``UnknownCodecError``, ``ZeroDivisionError``...); weightscope errors,
    ``OSError`` (the storage itself: see :mod:`~weightscope.store.paths`) and
    ``MemoryError`` pass through.
    """
    try:
        yield
    except (WeightscopeError, OSError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:
        _settle_zarr_tasks()
        text = " ".join(str(err).split())[:300]
        raise CorruptRunError(f"{where} cannot be read: {type(err).__name__}: {text}. "
                              f"{_FIX}.") from err


def _settle_zarr_tasks(timeout: float = 2.0) -> None:
    """Let zarr's IO loop finish the sibling tasks of a failed read.

    ``asyncio.gather`` leaves them running when one fails (a group whose member ``zarr.json``
    is invalid); at interpreter exit they are destroyed pending and asyncio prints "Task was
    destroyed but it is pending!" after the CLI's one-line error (found by
    ``bench/faults.py``). Only the error path waits, at most ``timeout`` seconds.
    """
    try:
        from zarr.core import sync as zarr_sync

        loop, thread = zarr_sync.loop[0], zarr_sync.iothread[0]
    except (ImportError, AttributeError, IndexError):
        return
    if loop is None or not loop.is_running() or thread is threading.current_thread():
        return

    async def settle() -> None:
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=timeout)

    try:
        asyncio.run_coroutine_threadsafe(settle(), loop).result(timeout + 1)
    except Exception:  # best effort: the CorruptRunError follows regardless
        pass
