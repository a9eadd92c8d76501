"""Storing rows of a run's arrays: one interface, two implementations.

:class:`ChunkWriter` is what :class:`~weightscope.store.RunWriter` needs of an array: store
rows ``[start, start + len(values))`` from a host buffer. :class:`ZarrRows` does it through
zarr (any store, any codec); :class:`~weightscope.store.direct.DirectRows` writes the chunk
files of a local, uncompressed array itself (no codec pipeline or event loop, around the page
cache where the OS allows). The writer picks one per array; both leave the same bytes in the
store (``tests/store/test_store_chunk_writer.py`` holds them to that contract).

Examples
--------
>>> import numpy as np, zarr
>>> a = zarr.open_group(zarr.storage.MemoryStore(), mode="w").create_array(
...     "step", shape=(8,), chunks=(4,), dtype="int64", fill_value=-1)
>>> rows: ChunkWriter = ZarrRows(a)
>>> rows.write(2, np.array([7, 8, 9]))
>>> a[:6]
array([-1, -1,  7,  8,  9, -1])
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import zarr

__all__ = ["ChunkWriter", "ZarrRows"]

#: Chunks along the width that zarr encodes at once (each needs ~3 chunk-sized buffers).
CHUNKS_IN_FLIGHT = 8


class ChunkWriter(Protocol):
    """Stores rows of one 1-D or 2-D zarr array (``array``) from host memory.

    Rows may start anywhere and span several chunk rows; the chunk files left behind are
    those zarr writes for the same assignment with ``write_empty_chunks=True``. Not
    thread-safe: one thread writes an array.
    """

    array: zarr.Array

    def write(self, start: int, values: np.ndarray) -> None:
        """Store ``values`` (``(rows,)`` or ``(rows, array width)``) as rows ``start`` on."""
        ...


class ZarrRows:
    """:class:`ChunkWriter` through zarr: ``array[start:stop] = values``.

    A 2-D array is assigned in column blocks of :data:`CHUNKS_IN_FLIGHT` chunks, so encoding
    a wide snapshot block needs a bounded amount of memory.
    """

    def __init__(self, array: zarr.Array) -> None:
        self.array = array

    def write(self, start: int, values: np.ndarray) -> None:
        """Store ``values`` as rows ``start`` on (see :class:`ChunkWriter`)."""
        stop = start + len(values)
        if self.array.ndim == 1:
            self.array[start:stop] = values
            return
        block = self.array.chunks[1] * CHUNKS_IN_FLIGHT
        for lo in range(0, values.shape[1], block):
            self.array[start:stop, lo:lo + block] = values[:, lo:lo + block]
