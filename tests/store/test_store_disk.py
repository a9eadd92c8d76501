"""Disk use proportional to data: no flush pads a chunk row on disk, and a disk that fills
keeps every snapshot committed before it filled."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from weightscope.store import Layout, RunWriter, open_run, verify_run

N = 50_000  # a 200 kB snapshot: a 64-row chunk row would be 12.8 MB padded


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def test_a_flush_takes_disk_space_for_its_data_only(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    wr = RunWriter.create(path, Layout.build(["a"], [(N,)], [None]), attrs={"every": 1})
    assert wr.chunk_steps == 64
    base = _disk_bytes(path)
    w = np.random.default_rng(0).standard_normal((3, N)).astype(np.float32)
    wr.write_snapshots(0, np.arange(1), w[:1])
    wr.commit(1, 0)
    assert _disk_bytes(path) - base < 2 * w[0].nbytes  # padded: 64x
    wr.write_snapshots(1, np.arange(1, 3), w[1:])  # continues the chunk row
    wr.commit(3, 0)
    assert _disk_bytes(path) - base < 2 * w.nbytes
    np.testing.assert_array_equal(open_run(path).w.values, w)
    wr.close()


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_keeps_every_committed_snapshot(small_disk: Path) -> None:
    path = small_disk / "run.zarr"
    wr = RunWriter.create(path, Layout.build(["a"], [(N,)], [None]), attrs={"every": 1})
    w = np.random.default_rng(1).standard_normal((64, N)).astype(np.float32)
    done = 0
    with pytest.raises(OSError, match="No space left"):
        for r in range(64):
            wr.write_snapshots(r, np.arange(r, r + 1), w[r:r + 1])
            wr.commit(r + 1, 0)
            done = r + 1
    assert done >= 8  # 4 MB: the chunk row's copy being rewritten needs room too
    ds = open_run(path)
    assert ds.sizes["step"] == done
    np.testing.assert_array_equal(ds.w.values, w[:done])
    assert verify_run(path).ok
    assert not list(path.rglob("*.partial"))
    wr.close()
