"""DirectRows beyond the ChunkWriter contract (test_store_chunk_writer.py): which arrays and
rows it takes, O_DIRECT and its fallback, failures, short writes, and local attrs."""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from weightscope.store import Layout, RunWriter, open_run
from weightscope.store import direct as direct_module
from weightscope.store.chunk_writer import ZarrRows
from weightscope.store.codecs import weight_compressors, with_checksum
from weightscope.store.direct import DirectRows, update_local_attrs


def _array(root: Path, name: str, shape: tuple[int, int], chunks: tuple[int, int],
           compressors: tuple = ()) -> zarr.Array:
    group = zarr.open_group(root / f"{name}.zarr", mode="w")
    return group.create_array("w", shape=shape, chunks=chunks, dtype="float32",
                              fill_value=np.nan, compressors=compressors or None)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "w" / "c").rglob("*")) if p.is_file()}


def test_direct_rows_only_take_local_uncompressed_1d_and_2d_arrays(tmp_path: Path) -> None:
    assert DirectRows.for_array(_array(tmp_path, "a", (4, 8), (2, 4))) is not None
    lz4 = _array(tmp_path, "b", (4, 8), (2, 4), weight_compressors("lz4"))
    assert DirectRows.for_array(lz4) is None
    memory = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    assert DirectRows.for_array(memory.create_array("w", shape=(4, 8), chunks=(2, 4),
                                                    dtype="float32")) is None
    flat = zarr.open_group(tmp_path / "c.zarr", mode="w").create_array(
        "w", shape=(8,), chunks=(4,), dtype="float32")  # zstd by default
    assert DirectRows.for_array(flat) is None
    plain = zarr.open_group(tmp_path / "d.zarr", mode="w").create_array(
        "w", shape=(8,), chunks=(4,), dtype="int64", compressors=None)
    assert DirectRows.for_array(plain) is not None
    cube = zarr.open_group(tmp_path / "e.zarr", mode="w").create_array(
        "w", shape=(2, 2, 2), chunks=(1, 2, 2), dtype="float32", compressors=None)
    assert DirectRows.for_array(cube) is None


def test_covers_only_whole_chunk_rows_inside_the_array(tmp_path: Path) -> None:
    rows = DirectRows.for_array(_array(tmp_path, "a", (8, 8), (4, 4)))
    assert rows is not None
    assert rows.covers(0, 4) and rows.covers(4, 4) and rows.covers(0, 8) and rows.covers(0, 3)
    assert not rows.covers(2, 4) and not rows.covers(4, 8) and not rows.covers(0, 0)


def test_continues_only_chunk_rows_whose_files_exist(tmp_path: Path) -> None:
    rows = DirectRows.for_array(_array(tmp_path, "a", (8, 8), (4, 4)))
    assert rows is not None and not rows.continues(2, 2)  # no chunk files yet
    rows.write(0, np.ones((2, 8), np.float32))
    assert rows.continues(2, 2) and rows.continues(3, 1)
    assert not rows.continues(2, 4) and not rows.continues(4, 1)  # crosses / next chunk row


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_failed_chunk_write_raises_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unbuffered: bool
) -> None:
    array = _array(tmp_path, "a", (4, 8), (2, 4))
    rows = DirectRows.for_array(array)
    assert rows is not None
    rows.unbuffered = unbuffered and rows.unbuffered
    rows.write(0, np.ones((2, 8), np.float32))
    before = _files(tmp_path / "a.zarr")

    def disk_full(fd: int, buffers: object, *args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_module.os, "write" if rows.unbuffered else "writev", disk_full)
    with pytest.raises(OSError, match="No space left"):
        rows.write(0, np.zeros((2, 8), np.float32))
    assert _files(tmp_path / "a.zarr") == before  # old chunks intact, no *.partial left
    np.testing.assert_array_equal(array[0:2], np.ones((2, 8), np.float32))


@pytest.mark.skipif(not direct_module._O_DIRECT, reason="no O_DIRECT on this OS")
def test_chunk_files_skip_the_page_cache_unless_the_file_system_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = np.random.default_rng(0).standard_normal((3, 1001)).astype(np.float32)
    flags: list[bool] = []
    real_open = direct_module.os.open

    def no_direct_io(path: object, flags_: int, *args: object) -> int:  # as tmpfs does
        flags.append(bool(flags_ & direct_module._O_DIRECT))
        if flags_ & direct_module._O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags_, *args)

    for name, refuse in (("direct", False), ("refused", True)):
        array = _array(tmp_path, name, (8, 1001), (4, 1001))  # 16016-byte chunks: cut to size
        rows = DirectRows.for_array(array)
        assert rows is not None and rows.unbuffered
        if refuse:
            monkeypatch.setattr(direct_module.os, "open", no_direct_io)
        rows.write(0, values)
        assert rows.unbuffered is not refuse  # refused once: the page cache from then on
        np.testing.assert_array_equal(array[0:3], values)
        assert np.isnan(array[3]).all()
    assert flags == [True, False]  # one refused O_DIRECT open, then the buffered one
    assert _files(tmp_path / "direct.zarr") == _files(tmp_path / "refused.zarr")


def test_run_writer_mixes_direct_in_place_and_zarr_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 50
    layout = Layout.build(["w"], [(n,)], [None])
    wr = RunWriter.create(tmp_path / "r.zarr", layout, attrs={"every": 1},
                          buffer_bytes=2 * 4 * n * 4)  # 4 snapshots per chunk row
    assert wr.chunk_steps == 4
    calls: list[tuple[str, str, int]] = []
    for cls, name in ((DirectRows, "write_new"), (DirectRows, "write_into"), (ZarrRows, "write")):
        original = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, row, values, name=name, original=original: (
            calls.append((self.array.basename, name, row)), original(self, row, values)))
    data = np.random.default_rng(0).standard_normal((13, n)).astype(np.float32)
    wr.write_snapshots(0, np.arange(4), data[0:4])  # whole chunk row: direct
    wr.write_snapshots(4, np.arange(4, 6), data[4:6])  # starts a chunk row: direct
    wr.write_snapshots(6, np.arange(6, 8), data[6:8])  # completes that row: in place
    wr.write_snapshots(8, np.arange(8, 11), data[8:11])  # starts a chunk row: direct
    wr.write_snapshots(11, np.arange(11, 13), data[11:13])  # crosses a chunk row end: zarr
    wr.commit(valid_steps=13, valid_iterations=0)
    w_calls = [call[1:] for call in calls if call[0] == "w"]
    assert w_calls == [("write_new", 0), ("write_new", 4), ("write_into", 6), ("write_new", 8),
                       ("write", 11)]
    assert {call[0] for call in calls if call[1] != "write"} == {"w", "step"}  # local: direct
    np.testing.assert_array_equal(open_run(tmp_path / "r.zarr")["w"].values, data)


def test_local_attrs_are_written_as_zarr_writes_them(tmp_path: Path) -> None:
    ours, theirs = (zarr.open_group(tmp_path / f"{name}.zarr", mode="w",
                                    attributes={"complete": False, "n": 1})
                    for name in ("ours", "theirs"))
    new = {"complete": True, "valid_steps": 12, "nested": {"a": [1, 2.5, None]}}
    assert update_local_attrs(ours, new)
    theirs.attrs.update(new)
    assert ((tmp_path / "ours.zarr" / "zarr.json").read_bytes()
            == (tmp_path / "theirs.zarr" / "zarr.json").read_bytes())
    assert dict(ours.attrs) == dict(zarr.open_group(tmp_path / "ours.zarr", mode="r").attrs)
    assert not list(tmp_path.glob("ours.zarr/*.partial"))
    memory = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    assert not update_local_attrs(memory, new) and "complete" not in memory.attrs
    v2 = zarr.open_group(tmp_path / "v2.zarr", mode="w", zarr_format=2)
    assert not update_local_attrs(v2, new) and "complete" not in v2.attrs


@pytest.mark.skipif(not direct_module._O_DIRECT, reason="no O_DIRECT on this OS")
def test_page_aligned_whole_chunks_are_written_without_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, width = 4, 2048  # 32 KiB chunks: whole 4 KiB blocks
    block = np.frombuffer(mmap.mmap(-1, rows * width * 4), dtype=np.float32).reshape(rows, width)
    block[:] = np.random.default_rng(0).standard_normal((rows, width))
    ours, theirs = (_array(tmp_path, name, (2 * rows, width), (rows, width))
                    for name in ("ours", "theirs"))
    writer = DirectRows.for_array(ours)
    assert writer is not None and writer.unbuffered

    def no_staging(size: int) -> np.ndarray:
        raise AssertionError("page-aligned whole blocks need no staging copy")

    monkeypatch.setattr(direct_module, "_staging", no_staging)
    writer.write(0, block)
    theirs.with_config({"write_empty_chunks": True})[0:rows] = block
    assert _files(tmp_path / "ours.zarr") == _files(tmp_path / "theirs.zarr")
    with pytest.raises(AssertionError, match="no staging"):  # a partial chunk row is padded
        writer.write(rows, block[:1])


def test_short_writes_are_completed_at_the_position_and_at_an_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [np.arange(i * 10, i * 10 + 10, dtype=np.int64) for i in range(5)]
    writev, pwritev = direct_module.os.writev, direct_module.os.pwritev
    monkeypatch.setattr(direct_module.os, "writev", lambda fd, g: writev(fd, [g[0][:3]]))
    monkeypatch.setattr(direct_module.os, "pwritev",
                        lambda fd, g, off: pwritev(fd, [g[0][:3]], off))
    new = tmp_path / "new"
    direct_module._write_buffered(new, parts, 400, None)
    np.testing.assert_array_equal(np.fromfile(new, np.int64), np.arange(50))
    old = tmp_path / "old"
    old.write_bytes(b"\0" * 16 + b"\1" * 400 + b"\2" * 8)
    direct_module._put_into(old, parts, 16)
    data = old.read_bytes()
    assert data[:16] == b"\0" * 16 and data[416:] == b"\2" * 8
    np.testing.assert_array_equal(np.frombuffer(data[16:416], np.int64), np.arange(50))


def test_continued_checksummed_rows_are_rewritten_from_memory(tmp_path, monkeypatch):
    arr = zarr.open_group(tmp_path / "r.zarr", mode="w").create_array(
        "step", shape=(64,), chunks=(16,), dtype="int64", fill_value=-1,
        compressors=with_checksum(), config={"write_empty_chunks": True})
    rows = DirectRows.for_array(arr)
    rows.write(0, np.arange(3))

    def no_read_back(*args):
        raise AssertionError("stored rows read back")

    monkeypatch.setattr(os, "pread", no_read_back)
    for lo, hi in [(3, 7), (7, 16), (16, 18), (18, 19)]:  # continued, new, continued
        rows.write(lo, np.arange(lo, hi))
    monkeypatch.undo()
    np.testing.assert_array_equal(arr[:19], np.arange(19))
    assert DirectRows.for_array(arr).continues(19, 1)  # a new writer reads back instead
    fresh = DirectRows.for_array(arr)
    fresh.write(19, np.array([19]))
    np.testing.assert_array_equal(arr[:20], np.arange(20))
