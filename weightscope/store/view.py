"""A read-only view of a run store that shows every array at its committed length.

A writer grows the arrays that share ``step`` (``w``, ``step``, ``mask``) or ``iteration`` one
after another (one metadata object each), so a reader, or a run killed in between, can see
them at different capacities. :class:`CommittedView` rewrites the shape in the metadata of those
arrays to the committed lengths (``valid_steps``, ``valid_iterations``) as it is read: the
arrays then agree, whatever moment of a write the store was caught at, and nothing past the
committed prefix is ever read. The view needs no extra request (it edits the metadata objects
it is given) and pickles with its store, so dask workers read through it too.

It is also the one place where every chunk a reader gets is checked before zarr decodes it
(:func:`weightscope.store.integrity.check_chunk`: checksum, length, missing chunks), and where a
local key that is not a regular file (a FIFO, a device) is refused before it is opened, so a
damaged or hostile store raises :class:`~weightscope.errors.CorruptRunError` instead of
returning wrong numbers, crashing a decompressor or hanging.

Examples
--------
>>> import json, zarr
>>> from zarr.storage import MemoryStore
>>> from weightscope import schema
>>> store = MemoryStore()
>>> root = zarr.open_group(store, mode="w")
>>> _ = root.create_array("w", shape=(64, 3), chunks=(8, 3), dtype="f4",
...                       dimension_names=("step", "weight"))
>>> _ = root.create_array("step", shape=(32,), chunks=(32,), dtype="i8",
...                       dimension_names=("step",))   # caught between two resizes
>>> view = CommittedView(store, {schema.STEP: 5})
>>> g = zarr.open_group(view, mode="r")
>>> g["w"].shape, g["step"].shape
((5, 3), (5,))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, WrapperStore

from ..errors import CorruptRunError
from .files import is_regular_file
from .integrity import ChunkSpec, check_chunk, chunk_array

__all__ = ["CommittedView"]

_META = "zarr.json"


class CommittedView(WrapperStore[Store]):
    """Read-only view of ``store`` whose arrays stop at the committed lengths.

    Parameters
    ----------
    store : zarr.abc.store.Store
        The run's store (local directory or fsspec).
    lengths : mapping of str to int
        Committed length of each leading dimension, e.g. ``{"step": 12, "iteration": 120}``.
        An array whose first dimension is named here is shown with at most that length.
    """

    def __init__(self, store: Store, lengths: Mapping[str, int]) -> None:
        super().__init__(store.with_read_only(True) if not store.read_only else store)
        self.lengths = {str(k): int(v) for k, v in lengths.items()}
        self._specs: dict[str, ChunkSpec | None] = {}  # array path -> what check_chunk needs

    def _with_store(self, store: Store) -> CommittedView:
        return type(self)(store, self.lengths)

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and self.lengths == other.lengths  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CommittedView({self._store!r}, {self.lengths})"

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        """The object at ``key``; array metadata with its shape cut to the committed length,
        a chunk checked (raises :class:`CorruptRunError` if it is damaged)."""
        self._check_file(key)
        buf = await self._store.get(key, prototype, byte_range)
        if byte_range is not None:
            return buf
        if not _is_metadata(key):
            array = chunk_array(key)
            spec = None if array is None else await self._spec(array, prototype)
            if spec is not None:
                check_chunk(spec, key, None if buf is None else buf.as_numpy_array())
            return buf
        if buf is None:
            return buf
        meta = json.loads(buf.to_bytes())
        self._remember(key[: -len(_META)].rstrip("/"), meta)
        if not self._trim(meta):
            return buf
        return prototype.buffer.from_bytes(json.dumps(meta).encode())

    def _check_file(self, key: str) -> None:
        """Refuse a local key that exists but is not a regular file (before it is opened)."""
        if isinstance(self._store, LocalStore) and is_regular_file(
                self._store.root / key) is False:
            raise CorruptRunError(
                f"'{key}' in the run at '{self._store.root}' is not a regular file (a FIFO, "
                "device or directory is in its place). Remove it and restore the run from a "
                "backup.")

    def _remember(self, array: str, meta: dict[str, Any]) -> None:
        if meta.get("node_type") == "array":
            self._specs[array] = ChunkSpec.from_metadata(array.rpartition("/")[2], meta)

    async def _spec(self, array: str, prototype: BufferPrototype) -> ChunkSpec | None:
        """The checks' view of ``array``'s metadata (read once, e.g. in a dask worker)."""
        if array not in self._specs:
            key = f"{array}/{_META}" if array else _META
            buf = await self._store.get(key, prototype)
            self._specs[array] = None
            if buf is not None:
                self._remember(array, json.loads(buf.to_bytes()))
        return self._specs[array]

    async def _get_many(self, requests: Any) -> Any:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    def _trim(self, meta: dict[str, Any]) -> bool:
        """Cut ``meta["shape"][0]`` to its committed length; whether anything changed."""
        names = meta.get("dimension_names") or ()
        if meta.get("node_type") != "array" or not names or names[0] not in self.lengths:
            return False
        shape = list(meta["shape"])
        cut = min(shape[0], self.lengths[names[0]])
        if cut == shape[0]:
            return False
        meta["shape"] = [cut, *shape[1:]]
        return True


def _is_metadata(key: str) -> bool:
    return key == _META or key.endswith("/" + _META)
