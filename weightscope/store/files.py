"""Files of a local run written safely: fresh temporary files, checksums, file types.

Every file the store writes goes to a temporary file next to its final name
(``<name>.<pid>.partial``), opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a symlink planted
under that name cannot redirect the write (a leftover of a killed process of the same pid, or
a planted link, is unlinked, never followed, and the file created afresh), then renamed over
the final name: a crash leaves the old file or the new one. :func:`crc32c_trailer` is the
4-byte checksum zarr's ``crc32c`` codec appends to an encoded chunk.

Examples
--------
>>> import numpy as np, google_crc32c
>>> parts = [np.arange(3, dtype=np.float32), np.zeros(2, np.float32)]
>>> bytes(crc32c_trailer(parts)) == np.uint32(google_crc32c.value(
...     b"".join(p.tobytes() for p in parts))).tobytes()
True
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import google_crc32c
import numpy as np

__all__ = ["CRC_BYTES", "crc32c_trailer", "is_regular_file", "open_new", "partial_name",
           "replace_bytes"]

#: Bytes zarr's crc32c codec appends to a chunk.
CRC_BYTES = 4
_ZEROS = np.zeros(2**20, dtype=np.uint8)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def partial_name(path: Path) -> Path:
    """The temporary file a new version of ``path`` is written to before the rename."""
    return path.with_name(f"{path.name}.{os.getpid()}.partial")


def open_new(path: Path, flags: int = 0) -> int:
    """A descriptor of a new file ``path`` (never following a link planted there).

    Whatever is at ``path`` (a temporary file a killed process of this pid left, or a link)
    is removed first, without being followed.
    """
    try:
        return os.open(path, _NEW | flags, 0o666)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, _NEW | flags, 0o666)


def replace_bytes(path: Path, data: bytes) -> None:
    """Replace the file ``path`` by ``data`` (temporary file renamed over it)."""
    tmp = partial_name(path)
    try:
        fd = open_new(tmp)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def crc32c_trailer(parts: Sequence[np.ndarray], zeros: int = 0) -> np.ndarray:
    """The 4 bytes zarr's ``crc32c`` codec appends to the bytes of ``parts`` (in order)
    followed by ``zeros`` zero bytes: the little-endian CRC-32C of their concatenation."""
    crc = 0
    for part in parts:
        crc = google_crc32c.extend(crc, np.ascontiguousarray(part).reshape(-1).view(np.uint8))
    for lo in range(0, zeros, len(_ZEROS)):
        crc = google_crc32c.extend(crc, _ZEROS[: min(len(_ZEROS), zeros - lo)])
    return np.array([crc], dtype="<u4").view(np.uint8)


def is_regular_file(path: str | os.PathLike[str]) -> bool | None:
    """Whether ``path`` is a regular file (following links); None if nothing is there.

    Readers check this before opening a chunk or metadata file: a FIFO or device in its place
    would block or never end a read; a symlink loop or any other path that cannot be followed
    is not a regular file either.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink loop (ELOOP), a path through a file (ENOTDIR)...
        return False
