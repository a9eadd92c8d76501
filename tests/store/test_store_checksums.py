"""Damaged chunks: every one is refused by a CorruptRunError naming the array and chunk (read
or verify_run), before zarr decodes it; runs written before the checksums still open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weightscope.errors import CorruptRunError
from weightscope.store import Layout, RunWriter, open_run, run_size_bytes, verify_run
from weightscope.testing import random_walks, write_run

W = random_walks(6, 300, seed=1)


def _run(tmp_path: Path, compression: str = "none") -> Path:
    path = tmp_path / "run.zarr"
    layout = Layout.build(["a", "b"], [(200,), (100,)], [None, None])
    wr = RunWriter.create(path, layout, attrs={"every": 1}, compression=compression)
    wr.write_snapshots(0, np.arange(6), W)
    wr.write_iterations(0, np.arange(1, 6), distance=np.ones((5, 2)))
    wr.commit(6, 5)
    return path


def _chunk(path: Path, array: str) -> Path:
    return next(p for p in sorted((path / array / "c").rglob("*")) if p.is_file())


def test_every_array_of_a_new_run_carries_a_crc32c_checksum(tmp_path: Path) -> None:
    path = _run(tmp_path, "zstd")
    for meta in path.glob("*/zarr.json"):
        codecs = json.loads(meta.read_text())["codecs"]
        assert codecs[-1]["name"] == "crc32c", meta


@pytest.mark.parametrize("compression", ["none", "zstd", "lz4"])
@pytest.mark.parametrize("damage", ["flip", "truncate", "overwrite64"])
def test_a_damaged_weight_chunk_is_refused_naming_it(tmp_path: Path, compression: str,
                                                     damage: str) -> None:
    path = _run(tmp_path, compression)
    chunk = _chunk(path, "w")
    data = bytearray(chunk.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "truncate":
        data = data[: len(data) // 2]  # a decompressor would read past the buffer
    else:
        data[20:84] = bytes(64)
    chunk.write_bytes(bytes(data))
    ds = open_run(path)  # metadata is fine: the damage shows when the chunk is read
    with pytest.raises(CorruptRunError, match=r"chunk 'w/c/0/0' of array 'w' is damaged"):
        _ = ds.w.values
    report = verify_run(path)
    assert [(d.array, d.chunk) for d in report.damaged] == [("w", "c/0/0")]


@pytest.mark.parametrize("array", ["distance", "param_id", "index", "step", "numel", "param"])
def test_a_deleted_chunk_is_refused_not_read_as_fill(tmp_path: Path, array: str) -> None:
    path = _run(tmp_path)
    _chunk(path, array).unlink()
    with pytest.raises(CorruptRunError, match=rf"array '{array}' is damaged: it is missing"):
        _ = open_run(path)[array].values
    assert [d.array for d in verify_run(path).damaged] == [array]


def test_verify_run_of_a_sound_run_reads_every_chunk(tmp_path: Path) -> None:
    report = verify_run(_run(tmp_path, "lz4"))
    assert report.ok and report.chunks >= 8


def test_a_run_without_checksums_still_opens(tmp_path: Path) -> None:
    path = write_run(tmp_path / "old.zarr", W)
    for meta in path.glob("*/zarr.json"):  # rewrite as a run of before the checksums
        doc = json.loads(meta.read_text())
        if doc["codecs"][-1]["name"] == "crc32c":
            doc["codecs"].pop()
            meta.write_text(json.dumps(doc))
            for chunk in (meta.parent / "c").rglob("*"):
                if chunk.is_file():
                    chunk.write_bytes(chunk.read_bytes()[:-4])
    np.testing.assert_array_equal(open_run(path).w.values, W)
    assert verify_run(path).ok


def test_a_fifo_in_place_of_a_chunk_is_refused_without_hanging(tmp_path: Path) -> None:
    path = _run(tmp_path)
    chunk = _chunk(path, "w")
    chunk.unlink()
    os.mkfifo(chunk)
    code = ("import sys; from weightscope.store import open_run, verify_run\n"
            "from weightscope.errors import CorruptRunError\n"
            "try:\n    open_run(sys.argv[1]).w.values\n"
            "except CorruptRunError as e:\n    print('refused:', e)\n"
            "print(verify_run(sys.argv[1]).damaged[0].chunk)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: 'w/c/0/0' in the run" in out.stdout and "not a regular file" in out.stdout
    assert out.stdout.strip().endswith("c/0/0")


def test_a_symlink_loop_or_a_fifo_metadata_file_is_refused(tmp_path: Path) -> None:
    path = _run(tmp_path)
    chunk = _chunk(path, "step")
    chunk.unlink()
    chunk.symlink_to(chunk)  # ELOOP when followed
    with pytest.raises(CorruptRunError, match="not a regular file"):
        _ = open_run(path).step.values
    meta = path / "zarr.json"
    meta.unlink()
    os.mkfifo(meta)  # opening it to read would block
    with pytest.raises(CorruptRunError, match=r"zarr.json' is not a regular file"):
        open_run(path)


def test_planted_symlinks_at_temporary_names_are_not_followed(tmp_path: Path) -> None:
    path = _run(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    pid = os.getpid()
    wr = RunWriter.reopen(path)
    planted = [path / f"zarr.json.{pid}.partial", path / "w" / "c" / "0" / f"0.{pid}.partial"]
    for link in planted:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
    wr.write_snapshots(6, np.arange(6, 8), W[:2])
    wr.commit(8, 5)
    assert victim.read_text() == "precious"
    assert not any(p.is_symlink() or p.exists() for p in planted)
    np.testing.assert_array_equal(open_run(path).w.values[6:], W[:2])


@pytest.mark.filterwarnings("ignore:Object at w is not recognized")
def test_damaged_array_metadata_is_one_corrupt_run_error(tmp_path: Path) -> None:
    path = _run(tmp_path)
    (path / "w" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array", "shape"')
    with pytest.raises(CorruptRunError, match=r"cannot be read: .*restore the run"):
        open_run(path)
    meta = json.loads((path / "step" / "zarr.json").read_text())
    meta["codecs"].append({"name": "no-such-codec"})
    (path / "w" / "zarr.json").unlink()
    (path / "step" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptRunError):
        open_run(path)


def test_size_on_disk_counts_a_symlink_not_its_target(tmp_path: Path) -> None:
    path = Path(write_run(tmp_path / "run.zarr", random_walks(4, 30, seed=1)))
    size = run_size_bytes(path)
    chunk = next(p for p in sorted((path / "w" / "c").rglob("*")) if p.is_file())
    n = chunk.stat().st_size
    chunk.unlink()
    chunk.symlink_to(chunk.parent / "nowhere")  # dangling: `info` died on it (exit 1)
    assert run_size_bytes(path) == size - n + len(str(chunk.parent / "nowhere"))


def test_a_failed_group_read_leaves_no_zarr_task_pending(tmp_path: Path) -> None:
    """asyncio printed "Task was destroyed but it is pending!" after the CLI's one-line
    error when the sibling reads of a failed group read were still pending at exit."""
    import asyncio

    from zarr.core import sync as zarr_sync

    path = Path(write_run(tmp_path / "run.zarr", random_walks(4, 30, seed=1)))
    (path / "w" / "zarr.json").write_text("{not json")
    with pytest.raises(CorruptRunError, match=r"cannot be read: JSONDecodeError"):
        open_run(path)

    async def pending() -> int:
        return len(asyncio.all_tasks() - {asyncio.current_task()})
    loop = zarr_sync.loop[0]
    assert loop is not None
    assert asyncio.run_coroutine_threadsafe(pending(), loop).result(5) == 0
