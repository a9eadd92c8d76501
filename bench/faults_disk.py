"""Disk cases of ``bench/faults.py``: a run's first-flush disk use, and full disks.

A full disk: a subprocess records a deterministic 0.8 MB-snapshot training (every=1,
``flush_seconds`` 0.05) on a small tmpfs and on a small loop-mounted ext4 until the disk
fills; it must fail loudly (non-zero exit, the ``WriterError`` on stderr) and leave a run
that opens with every committed snapshot, bit-exact against a replay, and verifies clean.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

N_IN, N_OUT, STEPS = 512, 400, 60  # 205 k weights: a 0.8 MB snapshot

WORKER = f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
import faults_disk, weightscope as ws
model, step = faults_disk.training()
with ws.Recorder(sys.argv[1], model, every=1, flush_seconds=0.05) as rec:
    for s in range(faults_disk.STEPS):
        step(s); rec.step()
"""


def training() -> tuple[torch.nn.Module, Callable[[int], None]]:
    """A deterministic training of one Linear layer: (model, step(s))."""
    torch.manual_seed(0)
    model = torch.nn.Linear(N_IN, N_OUT, bias=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(s: int) -> None:
        gen = torch.Generator().manual_seed(s)
        x = torch.randn(16, N_IN, generator=gen)
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    return model, step


def history() -> np.ndarray:
    """The replay: the weight after every step (row 0: initial)."""
    model, step = training()
    rows = [model.weight.detach().numpy().reshape(-1).copy()]
    for s in range(STEPS):
        step(s)
        rows.append(model.weight.detach().numpy().reshape(-1).copy())
    return np.stack(rows)


def disk_bytes(path: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in path.rglob("*"))


def first_flush(root: Path, count: Callable[[str, str], None]) -> None:
    """Disk use of a run's first flush (one snapshot) and of its first three, per size."""
    from weightscope.store import Layout, RunWriter
    print("first-flush disk use (RunWriter, default buffer_mb; bytes on disk / bytes of data):")
    for n in (25_000, 200_000, 1_860_000):
        path = root / f"flush{n}.zarr"
        wr = RunWriter.create(path, Layout.build(["a"], [(n,)], [None]), attrs={"every": 1})
        base = disk_bytes(path)
        w = np.random.default_rng(0).standard_normal((3, n)).astype(np.float32)
        wr.write_snapshots(0, np.arange(1), w[:1])
        wr.commit(1, 0)
        one = (disk_bytes(path) - base) / w[0].nbytes
        wr.write_snapshots(1, np.arange(1, 3), w[1:])
        wr.commit(3, 0)
        three = (disk_bytes(path) - base) / w.nbytes
        wr.close()
        print(f"  {w[0].nbytes / 1e6:5.2f} MB snapshot ({wr.chunk_steps}-row chunk rows): "
              f"first flush {one:.2f}x, three snapshots {three:.2f}x")
        count("first flush", "<= 2x its data" if one <= 2 else "MORE THAN 2x its data")


def _mount(kind: str, where: Path) -> str | None:
    """Mount a small file system at ``where``; the reason if not permitted."""
    where.mkdir()
    if kind == "tmpfs":
        cmd = ["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(where)]
    else:
        img = where.with_suffix(".img")
        with open(img, "wb") as f:
            f.truncate(16 * 2**20)
        made = subprocess.run(["mkfs.ext4", "-q", str(img)], capture_output=True, text=True)
        if made.returncode != 0:
            return f"mkfs.ext4 failed: {made.stderr.strip()[:100]}"
        cmd = ["mount", "-o", "loop", str(img), str(where)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    return None if res.returncode == 0 else res.stderr.strip()[:120] or "mount failed"


def full_disks(root: Path, count: Callable[[str, str], None]) -> None:
    from weightscope.store import open_run, verify_run
    hist = history()
    for kind in ("tmpfs", "ext4"):
        where = Path(tempfile.mkdtemp(dir=root)) / kind
        reason = _mount(kind, where) if os.geteuid() == 0 else "not root"
        if reason is not None:
            print(f"  full disk on {kind}: SKIPPED (mounting not permitted: {reason})")
            count("full disk", f"{kind}: skipped")
            continue
        try:
            path = where / "run.zarr"
            res = subprocess.run([sys.executable, "-c", WORKER, str(path)],
                                 capture_output=True, text=True)
            ds = open_run(path)
            n = ds.sizes["step"]
            exact = np.array_equal(ds.w.values, hist[:n])
            clean = verify_run(path).ok and not list(path.rglob("*.partial"))
            loud = res.returncode != 0 and "No space left" in res.stderr
            st = os.statvfs(where)
            free = st.f_bavail * st.f_frsize / 1e6
            print(f"  full disk on {kind}: exit {res.returncode}, {n} snapshots committed "
                  f"({n * hist[0].nbytes / 1e6:.1f} MB of data, {free:.1f} MB left free), "
                  f"bit-exact {exact}, verify clean {clean}; stderr: "
                  f"{res.stderr.strip().splitlines()[-1][:150] if res.stderr.strip() else ''}")
            count("full disk", f"{kind}: " + ("loud, every committed snapshot kept, bit-exact"
                                              if loud and exact and clean and n > 0
                                              else "FAILED"))
        finally:
            subprocess.run(["umount", str(where)], capture_output=True)
