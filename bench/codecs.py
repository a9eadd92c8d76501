"""Compression of float32 weight snapshots: bytes saved against encode time.

Trains the bench MLP (784-1024-1024-10) for a few hundred steps, takes 32 snapshots of its
weights (every 10 steps), and stores them through a zarr array with each candidate codec
from one thread (as the Recorder's writer thread does), printing the compression ratio, the
write throughput and the ratio of that throughput to storing the raw bytes. Then it stores
the same snapshots through :class:`weightscope.store.RunWriter` (the Recorder's path: its own
chunk writer where it applies, zarr otherwise) at each of the store's compressions, in whole
chunk rows and in half chunk rows continued (as flushes do), without and with the crc32c
checksum every array of a run carries, printing wall and CPU time (all threads) per MB.

Run:  python bench/codecs.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from torch import nn
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

from weightscope.store import Layout, RunWriter
from weightscope.store import writer as writer_module
from weightscope.store.codecs import COMPRESSIONS, with_checksum

CANDIDATES = {
    "none": (),
    "blosc lz4 shuffle c5": (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle,
                                        typesize=4),),
    "blosc lz4 shuffle c1": (BloscCodec(cname="lz4", clevel=1, shuffle=BloscShuffle.shuffle,
                                        typesize=4),),
    "blosc zstd1 shuffle": (BloscCodec(cname="zstd", clevel=1, shuffle=BloscShuffle.shuffle,
                                       typesize=4),),
    "blosc zstd1 bitshuffle": (BloscCodec(cname="zstd", clevel=1,
                                          shuffle=BloscShuffle.bitshuffle, typesize=4),),
    "zstd 1 (no shuffle)": (ZstdCodec(level=1),),
}


def snapshots(n: int = 32, every: int = 10) -> np.ndarray:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rows = []
    for s in range(n * every):
        x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if s % every == 0:
            rows.append(torch.cat([m.weight.detach().reshape(-1) for m in model[::2]]).numpy())
    return np.stack(rows)


def store(data: np.ndarray, codecs: tuple, root: Path) -> tuple[float, int]:
    path = root / "c.zarr"
    shutil.rmtree(path, ignore_errors=True)
    arr = zarr.create_array(path, shape=data.shape, chunks=(16, 131072), dtype="float32",
                            compressors=codecs or None)
    t0 = time.perf_counter()
    arr[:] = data
    elapsed = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return elapsed, size


def store_run(data: np.ndarray, compression: str, split: int, root: Path,
              checksum: bool = True) -> tuple[float, float]:
    """Wall and CPU seconds of a RunWriter storing ``data`` in chunk rows cut in ``split``
    (``checksum=False``: the arrays made without the crc32c codec, as before it)."""
    path = root / "r.zarr"
    shutil.rmtree(path, ignore_errors=True)
    layout = Layout.build(["w"], [(data.shape[1],)], [None])
    writer_module.with_checksum = with_checksum if checksum else (lambda c=(): tuple(c or ()))
    try:
        wr = RunWriter.create(path, layout, attrs={"every": 1}, compression=compression)
    finally:
        writer_module.with_checksum = with_checksum
    c = wr.chunk_steps
    step = max(1, c // split)
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(0, len(data), step):
        rows = data[r:r + step]
        wr.write_snapshots(r, np.arange(r, r + len(rows)), rows)
        wr.commit(valid_steps=r + len(rows), valid_iterations=0)
    return time.perf_counter() - t0, time.process_time() - c0


def writer_section(data: np.ndarray, root: Path, reps: int = 5) -> None:
    mb = data.nbytes / 2**20
    print("RunWriter (median of", reps, "runs):")
    for compression in COMPRESSIONS:
        for split, how in ((1, "whole chunk rows"), (2, "half rows, continued")):
            for checksum in (False, True):
                runs = [store_run(data, compression, split, root, checksum)
                        for _ in range(reps)]
                wall = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                print(f"  {compression:5s} {how:20s} {'crc32c' if checksum else 'no crc':6s} "
                      f"{1e3 * wall / mb:6.2f} ms/MB wall  {1e3 * cpu / mb:6.2f} ms/MB CPU")


def main() -> None:
    data = snapshots()
    mb = data.nbytes / 2**20
    root = Path(tempfile.mkdtemp(prefix="ws-codecs-"))
    try:
        print(f"{data.shape[0]} snapshots x {data.shape[1]:,} float32 weights = {mb:.0f} MB")
        base = None
        for name, codecs in CANDIDATES.items():
            times, size = [], 0
            for _ in range(3):
                t, size = store(data, codecs, root)
                times.append(t)
            t = statistics.median(times)
            base = base or t
            print(f"  {name:24s} ratio {data.nbytes / size:5.3f}  {mb / t:7.1f} MB/s  "
                  f"time x{t / base:5.2f} of none")
        writer_section(data, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
