"""Throughput of the decay-time analysis against the naive per-lag loop, in one process.

Builds a weightscope run (``RunWriter``, the recorder's store format and chunking) of
``--weights`` x ``--snapshots`` realistic trajectories (SGD-like pulls toward a target with
noise that follows a cosine learning-rate schedule, random walks with drift, oscillations) in a
temporary directory, then times:

(a) the naive per-lag vectorized numpy loop on the same data in memory: for each ``tau``,
    Pearson of all weights at once (window means and variances in float64), then the first
    crossing -- the obvious implementation of the definition (blocks of 2048 weights, its
    fastest block size here);
(b) :func:`weightscope.analyze.decay.decay_time` on the run opened with
    :func:`weightscope.open_run` (dask, ``--threads`` threads, reading from the store);
(c) for reference, the kernel alone on the in-memory array.

Prints weight-snapshots per second (wall time, and per CPU second: other work on the machine
lowers the former), the ratio (b)/(a) (target >= 10x) and whether (b) reaches 30 M
weight-snapshots/s (target on 2 cores). Also checks that (a) and (b) agree.

Run: ``.venv/bin/python bench/decay.py [--weights 200000] [--snapshots 256] [--reps 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import dask
import numpy as np

from weightscope.analyze._decay_kernel import decay_kernel
from weightscope.analyze.decay import decay_time
from weightscope.store import Layout, RunWriter, open_run

EVERY = 10


def trajectories(n_steps: int, n: int, seed: int = 0) -> np.ndarray:
    """(T, n) float32 weight trajectories, one snapshot every EVERY optimizer steps."""
    rng = np.random.default_rng(seed)
    start = rng.normal(0.0, 0.05, n)
    target = start + rng.normal(0.0, 0.03, n)
    phi = 1.0 - 10.0 ** rng.uniform(-3.0, -0.3, n)  # pull per snapshot: 0.5 .. 0.999
    phi[rng.random(n) < 0.15] = 1.0  # pure random walks (with drift)
    drift = rng.normal(0.0, 2e-5, n) * (phi == 1.0)
    sigma = rng.uniform(2e-4, 2e-3, n)
    period = rng.uniform(3.0, n_steps, n)
    wave = np.where(rng.random(n) < 0.1, 2e-3, 0.0)
    x = np.empty((n_steps, n), dtype=np.float32)
    w = start.copy()
    for t in range(n_steps):
        lr = 0.5 * (1.0 + np.cos(np.pi * t / n_steps)) + 0.05
        w = target + phi * (w - target) + lr * (sigma * rng.standard_normal(n) + drift)
        x[t] = w + wave * np.sin(2 * np.pi * t / period)
    return x


def write_run(path: str, x: np.ndarray) -> None:
    """Store ``x`` as a complete weightscope run of one parameter, every=EVERY."""
    n_steps, n = x.shape
    layout = Layout.build(["fc.weight"], [(n,)], [np.arange(n)])
    writer = RunWriter.create(path, layout, attrs={"every": EVERY, "sample": None})
    rows = writer.chunk_steps
    for row in range(0, n_steps, rows):
        stop = min(row + rows, n_steps)
        writer.write_snapshots(row, np.arange(row, stop) * EVERY, x[row:stop])
    writer.commit(valid_steps=n_steps, valid_iterations=0)
    writer.finish(total_steps=(n_steps - 1) * EVERY)


def naive(x: np.ndarray, max_lag: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-lag vectorized Pearson of all weights (float64), then the first crossing."""
    n_steps, n = x.shape
    delta, censored = np.full(n, np.nan), np.zeros(n, dtype=bool)
    for j in range(0, n, block):
        xb = x[:, j : j + block].astype(np.float64)
        found = np.zeros(xb.shape[1], dtype=bool)
        d = np.full(xb.shape[1], float(max_lag))
        with np.errstate(invalid="ignore", divide="ignore"):
            for tau in range(1, max_lag + 1):
                a, b = xb[: n_steps - tau], xb[tau:]
                am, bm = a - a.mean(axis=0), b - b.mean(axis=0)
                r = (am * bm).sum(0) / np.sqrt((am * am).sum(0) * (bm * bm).sum(0))
                hit = (r <= 0) & ~found
                d[hit] = tau
                found |= hit
        const = (xb == xb[0]).all(axis=0) | ~np.isfinite(xb).all(axis=0)
        d[const] = np.nan
        delta[j : j + block], censored[j : j + block] = d, ~found & ~const
    return delta, censored


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``reps`` calls of ``fn`` (after a warm-up if reps > 1)."""
    if reps > 1:
        fn()
    walls, cpus, out = [], [], None
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def report(name: str, size: int, wall: float, cpu: float) -> float:
    rate = size / wall / 1e6
    print(f"{name:<44} {rate:8.1f} M weight-snapshots/s  (wall {wall:7.2f} s, "
          f"{size / cpu / 1e6:6.1f} M/s per CPU second)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=int, default=200_000)
    parser.add_argument("--snapshots", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="dask threads for (b)")
    args = parser.parse_args()
    n, n_steps = args.weights, args.snapshots
    size, max_lag = n * n_steps, n_steps - 3
    x = trajectories(n_steps, n)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.zarr")
        write_run(path, x)
        ds = open_run(path)
        print(f"{n} weights x {n_steps} snapshots; store chunks {ds['w'].data.chunksize}, "
              f"{os.cpu_count()} CPUs, {args.threads} dask threads; load average "
              f"{os.getloadavg()[0]:.1f} (other processes slow the wall-clock rates)")
        wall_a, cpu_a, (d_a, c_a) = timed(lambda: naive(x, max_lag), 1)
        rate_a = report("(a) naive per-lag numpy loop", size, wall_a, cpu_a)
        with dask.config.set(scheduler="threads", num_workers=args.threads):
            wall_b, cpu_b, out = timed(lambda: decay_time(ds).compute(), args.reps)
        rate_b = report("(b) decay_time, dask, from the store", size, wall_b, cpu_b)
        wall_c, cpu_c, _ = timed(lambda: decay_kernel(x, workers=args.threads), args.reps)
        report("(c) kernel alone, in memory", size, wall_c, cpu_c)
    d_b = out.values * out.attrs["last_grid_step"] / EVERY
    same = np.isclose(d_a, d_b, rtol=0, atol=1e-9) | (np.isnan(d_a) & np.isnan(d_b))
    print(f"agreement (a) vs (b): {same.mean():.6f} of weights "
          f"({int((~same).sum())} differ: ties at rho = 0); censored {c_a.mean():.3f}")
    ratio = rate_b / rate_a
    print(f"ratio (b)/(a): {ratio:.1f}x  [target >= 10x: {'ok' if ratio >= 10 else 'MISSED'}]")
    print(f"(b) {rate_b:.1f} M weight-snapshots/s  "
          f"[target >= 30 M/s on 2 cores: {'ok' if rate_b >= 30 else 'MISSED'}]; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
