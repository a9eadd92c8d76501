"""Rows of local, uncompressed arrays written straight to chunk files; attrs likewise.

:class:`DirectRows` is the :class:`~weightscope.store.chunk_writer.ChunkWriter` of a 1-D or
2-D array in a local directory whose chunks are plain little-endian bytes (``w``, ``mask``
and the per-step and per-iteration arrays of a run). It writes the chunk files itself,
without zarr's codec pipeline and event loop, and leaves the bytes zarr would:

- rows that start a chunk row: each chunk is the rows' slices in C order, padded with the
  fill value past the array's edge and below a partial chunk row; it goes to a temporary file
  renamed over the chunk key (as ``LocalStore`` does: a crash leaves the old chunk or the
  new one), with ``O_DIRECT`` where the OS has it, since a recording is written once and read
  much later and has no business in the page cache (a file system that refuses it, such as
  tmpfs, gets ``os.writev`` from its first refusal on);
- rows that continue a chunk row whose files exist: written in place (``os.pwritev``) where
  chunks have no checksum (they lie past the committed length: a crash tears only
  uncommitted rows); with a ``crc32c`` checksum (every array of a new run) each chunk is
  rewritten to a temporary file renamed over it (the old chunk or the new one survives a
  crash, each with a valid checksum), from a copy of its stored rows kept in memory
  (:data:`TAIL_BYTES`) or read back, through the page cache;
- other rows (crossing a chunk row's end): through zarr (:class:`ZarrRows`).

:func:`~weightscope.store.local_attrs.update_local_attrs` (re-exported here) writes a local
group's ``zarr.json`` for the commits.
Measurements: ``docs/performance.md`` (Store).

Examples
--------
>>> import numpy as np, tempfile, zarr
>>> g = zarr.open_group(tempfile.mkdtemp() + "/r.zarr", mode="w")
>>> a = g.create_array("w", shape=(4, 10), chunks=(2, 8), dtype="float32",
...                    fill_value=np.nan, compressors=None)
>>> rows = DirectRows.for_array(a)
>>> rows.write(0, np.arange(20, dtype=np.float32).reshape(2, 10))
>>> a[0:2, 7:10]
array([[ 7.,  8.,  9.],
       [17., 18., 19.]], dtype=float32)
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import threading
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec
from zarr.storage import LocalStore

from .._pools import thread_pool

try:
    import fcntl
except ImportError:  # not POSIX: no O_DIRECT either
    fcntl = None  # type: ignore[assignment]
from . import files
from .chunk_writer import ZarrRows
from .local_attrs import update_local_attrs

__all__ = ["ALIGN", "DirectRows", "aligned_bytes", "update_local_attrs"]

_HAS_WRITEV = hasattr(os, "writev")  # POSIX only: elsewhere zarr writes every chunk
_HAS_PWRITEV = hasattr(os, "pwritev")
_IOV = 512  # buffers per writev call (IOV_MAX is at least 1024 on Linux and macOS)
_THREADS = 2  # chunk files written at once (creating a file costs kernel time)
#: New chunk files are written with O_DIRECT where the OS has it (Linux), from memory that
#: starts on a multiple of this many bytes, in whole blocks of it, then cut to size.
ALIGN = 4096
_O_DIRECT = getattr(os, "O_DIRECT", 0)
_STAGE = threading.local()
#: Largest partly filled chunk row (bytes) a checksummed writer keeps a copy of, to rewrite
#: it from memory when rows continue it (``step``, ``iteration``, a small run's ``w``...).
TAIL_BYTES = 4 * 2**20
#: Chunks rewritten to continue them go through the page cache: O_DIRECT's staging copy and
#: flag changes cost more there (``bench/recorder.py --continued-only``).
REWRITE_PAGE_CACHE = True


def aligned_bytes(nbytes: int) -> np.ndarray:
    """``nbytes`` of uninitialized memory that starts on an :data:`ALIGN` boundary.

    Rows kept in such memory go to disk without a staging copy when a chunk is one block of
    whole pages (see :class:`DirectRows`).

    >>> aligned_bytes(10).ctypes.data % ALIGN
    0
    """
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes]


class DirectRows:
    """:class:`~weightscope.store.chunk_writer.ChunkWriter` writing chunk files itself.

    See the module docstring. A 1-D array is written as a 2-D one of width 1 (the same
    bytes). Build it with :meth:`for_array`, which returns None when the array does not
    qualify.
    """

    def __init__(self, array: zarr.Array, root: Path) -> None:
        self.array = array
        self.root = root
        self.chunks = (array.chunks[0], array.chunks[1] if array.ndim == 2 else 1)
        fill = np.asarray(array.metadata.fill_value, dtype=array.dtype)
        self._fill_row = np.full(self.chunks[1], fill, dtype=array.dtype)
        #: Fill-value rows are all zero bytes: left as a hole of the file (no disk blocks).
        self._zero_fill = not self._fill_row[:1].tobytes().strip(b"\0")
        self._zarr = ZarrRows(array)
        #: Whether chunks end with zarr's crc32c checksum of their bytes.
        self.checksum = isinstance(array.metadata.codecs[-1], Crc32cCodec)
        #: Write new chunk files around the page cache (O_DIRECT); turned off for good when
        #: the file system refuses it.
        self.unbuffered = bool(_O_DIRECT)
        #: Data bytes of the chunks of the partly filled chunk row last written, per
        #: ``(chunk row, chunk)``: what continuing it rewrites, without reading it back.
        self._tail: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def for_array(cls, array: zarr.Array) -> DirectRows | None:
        """A writer for ``array`` if it is 1-D or 2-D, uncompressed (a crc32c checksum
        allowed), little-endian and local on a POSIX system; else None."""
        root = _plain_local_root(array) if _HAS_WRITEV else None
        return None if root is None else cls(array, root)

    def write(self, start: int, values: np.ndarray) -> None:
        """Store ``values`` as rows ``start`` on: new chunk files where they start a chunk
        row, in place where they continue one, else through zarr."""
        if self.covers(start, len(values)):
            self.write_new(start, values)
        elif self.continues(start, len(values)):
            self.write_into(start, values)
        else:
            self._tail = {}  # zarr rewrites what it touches
            self._zarr.write(start, values)

    def covers(self, row: int, n_rows: int) -> bool:
        """Whether rows ``row : row + n_rows`` start a chunk row and fit in the array."""
        return row % self.chunks[0] == 0 and 0 < n_rows and row + n_rows <= self.array.shape[0]

    def continues(self, row: int, n_rows: int) -> bool:
        """Whether rows ``row : row + n_rows`` lie in one chunk row whose chunk files exist."""
        steps = self.chunks[0]
        if not (_HAS_PWRITEV and 0 < n_rows and row % steps + n_rows <= steps
                and row + n_rows <= self.array.shape[0]):
            return False
        n_chunks = -(-self._width // self.chunks[1])
        return all((self.root / self._key(row // steps, j)).is_file() for j in range(n_chunks))

    def write_new(self, row: int, values: np.ndarray) -> None:
        """Store rows that :meth:`covers` as new chunk files.

        The chunks of the last chunk row are completed with fill-value rows: what zarr
        writes into a new chunk row (the rows after ``values`` hold no data yet); when the
        fill value's bytes are zeros (``w`` of a new run), those rows are a hole of the file,
        which reads as zeros and takes no disk space until written.
        """
        steps = self.chunks[0]
        values = self._rows(values)
        jobs = []
        for i in range(-(-len(values) // steps)):
            block = values[i * steps:(i + 1) * steps]
            folder = self.root / self._key(row // steps + i, 0).rpartition("/")[0]
            folder.mkdir(parents=True, exist_ok=True)
            pieces = self._pieces(block)
            for j, parts in enumerate(pieces):
                jobs.append((self._put, self.root / self._key(row // steps + i, j),
                             *self._padded(parts, steps - len(block))))
        _run(jobs)
        # a partly filled last chunk row is continued next: keep its bytes (if small)
        self._keep_tail(row // steps + i, pieces if len(block) < steps else [None])

    def write_into(self, row: int, values: np.ndarray) -> None:
        """Store rows that :meth:`continues` an existing chunk row, in place in its files."""
        steps, width = self.chunks
        values = self._rows(values)
        offset = (row % steps) * width * values.itemsize
        if self.checksum:
            after = steps - row % steps - len(values)
            pieces = self._pieces(values)
            heads = [self._stored_head(row // steps, j, offset) for j in range(len(pieces))]
            _run([(self._rewrite, self.root / self._key(row // steps, j), parts, offset, after,
                   heads[j]) for j, parts in enumerate(pieces)])
            self._keep_tail(row // steps, [[h, *p] if h is not None else None
                                           for h, p in zip(heads, pieces)])
            return
        _run([(_put_into, self.root / self._key(row // steps, j), parts, offset)
              for j, parts in enumerate(self._pieces(values))])

    def _rewrite(self, path: Path, parts: list[np.ndarray], offset: int, after: int,
                 head: np.ndarray | None = None) -> None:
        """Replace the checksummed chunk ``path`` by its first ``offset`` bytes (``head``, or
        read back from the file), ``parts``, ``after`` fill rows and a new checksum."""
        if head is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                head = np.frombuffer(os.pread(fd, offset, 0), dtype=np.uint8)
            finally:
                os.close(fd)
        if len(head) != offset:
            raise OSError(errno.EIO, f"chunk file {path} is shorter than its stored rows")
        self._put(path, *self._padded([head, *parts], after), page_cache=REWRITE_PAGE_CACHE)

    def _stored_head(self, chunk_row: int, j: int, offset: int) -> np.ndarray | None:
        """The first ``offset`` bytes of chunk ``(chunk_row, j)`` as this writer last wrote
        them (None: not kept, read them back)."""
        tail = self._tail.get((chunk_row, j))
        return tail if tail is not None and len(tail) == offset else None

    def _keep_tail(self, chunk_row: int, chunks: list[list[np.ndarray] | None]) -> None:
        """Keep a copy of the chunks of ``chunk_row`` just written (parts per chunk; None
        where unknown) if it is small (:data:`TAIL_BYTES`): continuing it reads nothing."""
        self._tail = {}
        known = [c for c in chunks if c is not None]
        if not self.checksum or len(known) != len(chunks):
            return
        if sum(p.nbytes for c in known for p in c) > TAIL_BYTES:
            return
        for j, parts in enumerate(known):
            self._tail[(chunk_row, j)] = np.concatenate(
                [p.reshape(-1).view(np.uint8) for p in parts])

    def _padded(self, parts: list[np.ndarray], rows: int) -> tuple[list[np.ndarray], int]:
        """``parts`` followed by ``rows`` fill rows: ``(parts, bytes of hole after them)``."""
        if self._zero_fill:
            return parts, rows * self.chunks[1] * self._fill_row.itemsize
        return parts + [self._fill_row] * rows, 0

    @property
    def _width(self) -> int:
        return self.array.shape[1] if self.array.ndim == 2 else 1

    def _rows(self, values: np.ndarray) -> np.ndarray:
        """``values`` as C-contiguous rows of the array's dtype (a 1-D array's: width 1)."""
        return np.ascontiguousarray(values, dtype=self.array.dtype).reshape(len(values), -1)

    def _pieces(self, block: np.ndarray) -> list[list[np.ndarray]]:
        """Per chunk along the width, the slices of ``block``'s rows (padded at the edge)."""
        width, n = self.chunks[1], block.shape[1]
        if width == n:  # one chunk as wide as the array: the block's bytes as they are
            return [[block.reshape(-1)]]
        out = []
        for lo in range(0, n, width):
            pad = self._fill_row[: max(0, lo + width - n)]
            out.append([piece for r in block for piece in (r[lo:lo + width], pad) if piece.size])
        return out

    def _key(self, i: int, j: int) -> str:
        return self.array.metadata.encode_chunk_key((i, j) if self.array.ndim == 2 else (i,))

    def _put(self, path: Path, parts: list[np.ndarray], hole: int = 0,
             page_cache: bool = False) -> None:
        """Write ``parts`` and ``hole`` zero bytes (and the checksum of the array's chunks) to
        a temporary file next to ``path`` (with ``O_DIRECT`` unless ``page_cache``), then
        rename it over ``path``."""
        tmp = files.partial_name(path)
        end = sum(p.nbytes for p in parts) + hole
        trailer = files.crc32c_trailer(parts, hole) if self.checksum else None
        try:
            if self.unbuffered and not page_cache:
                try:
                    _write_unbuffered(tmp, parts, end, trailer)
                except OSError as err:
                    if err.errno != errno.EINVAL:
                        raise
                    self.unbuffered = False  # this file system refuses O_DIRECT: page cache
            if page_cache or not self.unbuffered:
                _write_buffered(tmp, parts, end, trailer)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)


def _write_buffered(path: Path, parts: list[np.ndarray], end: int,
                    trailer: np.ndarray | None) -> None:
    """Write ``parts`` to a new file ``path`` with ``writev`` (through the page cache), then
    a hole up to byte ``end`` and ``trailer``."""
    fd = files.open_new(path)
    try:
        _write_parts(fd, parts)
        _end_file(fd, end, trailer)
    finally:
        os.close(fd)


def _end_file(fd: int, end: int, trailer: np.ndarray | None) -> None:
    """Cut or extend (with a hole) the file to ``end`` bytes, then append ``trailer``."""
    os.ftruncate(fd, end)
    if trailer is not None:
        _write_parts(fd, [trailer], end)


def _write_parts(fd: int, parts: list[np.ndarray], offset: int | None = None) -> None:
    """Write ``parts`` to ``fd`` at its position (``writev``) or at ``offset`` (``pwritev``)."""
    for lo in range(0, len(parts), _IOV):
        group = parts[lo:lo + _IOV]
        total = sum(p.nbytes for p in group)
        done = os.writev(fd, group) if offset is None else os.pwritev(fd, group, offset)
        if done != total:  # a short write (rare): the rest with plain writes
            rest = memoryview(b"".join(p.tobytes() for p in group))[done:]
            while rest:
                k = (os.write(fd, rest) if offset is None
                     else os.pwrite(fd, rest, offset + total - len(rest)))
                rest = rest[k:]
        if offset is not None:
            offset += total


def _write_unbuffered(path: Path, parts: list[np.ndarray], end: int,
                      trailer: np.ndarray | None) -> None:
    """Write ``parts`` to a new file ``path`` with ``O_DIRECT`` (raises EINVAL where refused),
    then a hole up to byte ``end`` and ``trailer`` (through the page cache).

    One part of page-aligned memory in whole blocks (a chunk of the Recorder's slot rows) is
    written as it is; other parts are gathered into this thread's page-aligned staging buffer
    and written in whole :data:`ALIGN` blocks, and the file is then cut to its exact size.
    """
    nbytes = sum(p.nbytes for p in parts)
    size = -(-nbytes // ALIGN) * ALIGN
    data = parts[0].reshape(-1).view(np.uint8)
    if not (len(parts) == 1 and data.ctypes.data % ALIGN == 0 and nbytes == size):
        data = _staging(size)
        np.concatenate([p.reshape(-1).view(np.uint8) for p in parts], out=data[:nbytes])
    fd = files.open_new(path, _O_DIRECT)
    try:
        view, done = memoryview(data)[:size], 0
        while done < size:  # a short write leaves an unaligned rest: EINVAL, page cache
            done += os.write(fd, view[done:])
        if size != nbytes:
            os.ftruncate(fd, nbytes)  # the staging buffer's bytes past the data: gone
        if trailer is not None:  # 4 bytes: not a whole block
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
        _end_file(fd, end, trailer)
    finally:
        os.close(fd)


def _staging(size: int) -> np.ndarray:
    """This thread's page-aligned staging buffer (bytes), at least ``size`` long (reused)."""
    stage = getattr(_STAGE, "buf", None)
    if stage is None or stage.size < size:
        _STAGE.buf = stage = np.frombuffer(mmap.mmap(-1, size), dtype=np.uint8)
    return stage


def _plain_local_root(array: zarr.Array) -> Path | None:
    """The directory of a 1-D or 2-D ``array`` whose chunk files are its values' raw bytes.

    None unless the array is in a local directory (zarr's ``LocalStore``), in C order, with
    one little-endian (or native) ``BytesCodec`` and no other codec: then a chunk file is the
    chunk's values in C order, which :class:`DirectRows` writes itself.
    """
    store = array.store_path.store
    codecs = list(array.metadata.codecs) if array.metadata.zarr_format == 3 else []
    if codecs and isinstance(codecs[-1], Crc32cCodec):
        codecs.pop()  # the checksum DirectRows appends itself
    plain = (len(codecs) == 1 and isinstance(codecs[0], BytesCodec)
             and (codecs[0].endian is None or codecs[0].endian.value == sys.byteorder))
    if not (isinstance(store, LocalStore) and plain and array.ndim in (1, 2)
            and array.order == "C" and array.dtype.byteorder in "=|<"):
        return None
    return Path(store.root) / array.store_path.path


def _put_into(path: Path, parts: list[np.ndarray], offset: int) -> None:
    """Write ``parts`` into the existing file ``path`` from byte ``offset`` on."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        _write_parts(fd, parts, offset)
    finally:
        os.close(fd)


def _run(jobs: list[tuple]) -> None:
    """Run ``(function, *args)`` jobs on the chunk pool; raise the first failure, if any."""
    pool = thread_pool("chunks", _THREADS)
    futures = [pool.submit(*job) for job in jobs]
    wait(futures)  # all settled (a failed one cleaned up) before a failure is raised
    for future in futures:
        future.result()
