"""Figure 1 of one run: local threaded scheduler against a dask LocalCluster, same numbers.

Writes a synthetic run (random-walk weights: ``STEPS`` snapshots of ``WEIGHTS`` weights in
three parameters) with :class:`weightscope.store.RunWriter`, computes
:func:`weightscope.analyze.figure1_data` with dask's local threaded scheduler (all cores) and
then on a ``LocalCluster`` of worker processes (one thread each, as many as cores), prints both
wall times and their ratio, and checks that the summaries are identical (bit for bit). The
cluster's start-up is timed apart. On one machine the cluster mostly adds pickling and
inter-process transfers; it pays off when the workers are other machines.

Run:  python bench/cluster.py [--weights N] [--steps T]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dask
import numpy as np
from distributed import Client, LocalCluster

import weightscope as ws
from weightscope.analyze import figure1_data, summary
from weightscope.store import Layout, RunWriter


def synthetic_run(path: Path, weights: int, steps: int) -> Path:
    """A complete run of random-walk weights (every=10), written snapshot row by row."""
    sizes = [weights // 2, weights // 3, weights - weights // 2 - weights // 3]
    layout = Layout.build([f"l{i}.weight" for i in range(3)], [(n,) for n in sizes],
                          [None] * 3)
    writer = RunWriter.create(path, layout, attrs={"every": 10}, buffer_bytes=64 * 2**20)
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, weights).astype(np.float32)
    drift = rng.normal(0, 0.002, weights).astype(np.float32)
    rows = writer.chunk_steps
    for lo in range(0, steps, rows):
        n = min(rows, steps - lo)
        block = np.empty((n, weights), np.float32)
        for i in range(n):
            w += drift + rng.normal(0, 0.01, weights).astype(np.float32)
            block[i] = w
        writer.write_snapshots(lo, np.arange(lo, lo + n) * 10, block)
    its = (steps - 1) * 10
    writer.write_iterations(0, np.arange(1, its + 1),
                            distance=rng.random((its, 3)).astype(np.float64))
    writer.commit(valid_steps=steps, valid_iterations=its)
    writer.finish(total_steps=its)
    return path


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=int, default=400_000)
    parser.add_argument("--steps", type=int, default=101)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        run, t_write = timed(lambda: synthetic_run(Path(tmp, "run.zarr"), args.weights,
                                                   args.steps))
        print(f"run: {args.steps} snapshots x {args.weights:,} weights "
              f"({args.steps * args.weights * 4 / 2**20:.0f} MB), written in {t_write:.1f} s")
        with dask.config.set(scheduler="threads"):
            local, t_local = timed(lambda: summary(figure1_data([ws.open_run(run)])))
        cluster, t_start = timed(lambda: LocalCluster(
            n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None))
        with cluster, Client(cluster):
            remote, t_cluster = timed(lambda: summary(figure1_data([ws.open_run(run)])))
    print(f"local threads ({cores}):        {t_local:6.2f} s")
    print(f"LocalCluster {cores}x1 processes: {t_cluster:6.2f} s  (start-up {t_start:.1f} s)")
    print(f"ratio cluster/local: {t_cluster / t_local:.2f}; summaries identical: "
          f"{remote == local}")


if __name__ == "__main__":
    main()
