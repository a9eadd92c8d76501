"""Recorder overhead on a 1.86M-parameter MLP, measured against baselines in one process.

Whole runs (construction to close) of the same training: 784-1024-1024-10 MLP, batch 128,
SGD with momentum, random MNIST-shaped data. After untimed warm-up runs (one of each kind),
every configuration runs once per round, REPS rounds in alternating order (the two runs of each
pair below are neighbours), with ``os.sync()`` and ``gc.collect()`` before each run; the
script prints median wall times and, per pair below, the median and quartiles over rounds of
the ratio of the two times in the same round (robust to the slow drifts of a shared machine):

  (a)  every=10 full snapshots (no distance)  vs  torch.save(state_dict) every 10 steps
  (b)  every=10 full snapshots + exact distance   (target <= 1.15 x (a))
  (c)  every=1, sample=8192 per parameter          (target <= 1.05 x bare)
  (c+) the same with exact distance               (for reference)

and the writer's sustained MB/s next to a raw sequential write of the same bytes
(target >= 60 %), and the cost of rows continuing a checksummed chunk row (what every commit
does to ``step``/``iteration``/``distance``, and a flush to ``w``): ``DirectRows`` keeping a
copy of the chunk row (``TAIL_BYTES``) and rewriting it through the page cache, against reading
the stored rows back and rewriting with ``O_DIRECT`` (as before).

Runs are written to a temporary directory under ``--dir`` (default: the current directory,
where runs usually go; creating files costs twice as much in this machine's /tmp, which holds
many entries, and the writer creates one file per chunk).

Run:  python bench/recorder.py [--steps 300] [--reps 7] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import weightscope as ws
from weightscope.store import Layout, RunWriter, direct

BATCH = 128


def make_run(steps: int) -> tuple[nn.Module, Callable[[], None]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(16, BATCH, 784, generator=gen)
    ys = torch.randint(0, 10, (16, BATCH), generator=gen)
    state = {"s": 0}

    def step() -> None:
        i = state["s"] % 16
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(xs[i]), ys[i]).backward()
        opt.step()
        state["s"] += 1

    return model, step


def run_bare(steps: int, out: Path) -> None:
    _, step = make_run(steps)
    for _ in range(steps):
        step()


def run_save(steps: int, out: Path) -> None:
    model, step = make_run(steps)
    out.mkdir()
    torch.save(model.state_dict(), out / "step0.pt")
    for s in range(1, steps + 1):
        step()
        if s % 10 == 0:
            torch.save(model.state_dict(), out / f"step{s}.pt")


def recorder_run(**kwargs: object) -> Callable[[int, Path], None]:
    def run(steps: int, out: Path) -> None:
        model, step = make_run(steps)
        with ws.Recorder(out, model, **kwargs) as rec:
            for _ in range(steps):
                step()
                rec.step()

    return run


# in an order where the runs compared by a target are neighbours in every round (forwards and
# backwards): the machine's state drifts over the seconds between two runs
CONFIGS: dict[str, Callable[[int, Path], None]] = {
    "torch.save/10": run_save,
    "(a) rec every=10": recorder_run(every=10, track_distance=False),
    "(b) rec every=10 +dist": recorder_run(every=10),
    "bare": run_bare,
    "(c) rec every=1 s=8192": recorder_run(every=1, sample=8192, track_distance=False),
    "(c+) rec every=1 s=8192 +dist": recorder_run(every=1, sample=8192),
}


def time_configs(steps: int, reps: int, root: Path) -> dict[str, list[float]]:
    """Wall seconds of every configuration, ``reps`` rounds in alternating order."""
    times: dict[str, list[float]] = {k: [] for k in CONFIGS}
    names = list(CONFIGS)
    run_bare(steps, root)  # warm-up, untimed: the process's first run is slower (cold start),
    for name, run in CONFIGS.items():  # and so is the first of each kind (one-time imports and
        run(20, root / f"warm-{names.index(name)}")  # initialization: ~60 ms for a Recorder)
        shutil.rmtree(root / f"warm-{names.index(name)}", ignore_errors=True)
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            out = root / f"{rep}-{names.index(name)}"
            os.sync()
            gc.collect()  # no run pays for the garbage of the ones before (a full collection
            t0 = time.perf_counter()  # costs ~150 ms in this process)
            CONFIGS[name](steps, out)
            times[name].append(time.perf_counter() - t0)
            shutil.rmtree(out, ignore_errors=True)
    return times


def paired_ratios(times: dict[str, list[float]], name: str, base: str) -> list[float]:
    """Per round, ``name``'s time over ``base``'s time in the same round, sorted.

    Runs of one round are seconds apart, so the ratio cancels the machine's slow drifts
    (on this VM single bare runs of the same process vary from 3.1 s to 5.0 s).
    """
    return sorted(a / b for a, b in zip(times[name], times[base], strict=True))


def paired_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of :func:`paired_ratios`."""
    return statistics.median(paired_ratios(times, name, base))


def spread(times: dict[str, list[float]], name: str, base: str) -> str:
    """The quartiles of the paired ratios (how far one round is from the median) and a 90 %
    bootstrap interval of their median (how far the printed median may be from the truth)."""
    ratios = paired_ratios(times, name, base)
    if len(ratios) < 2:
        return ""
    q = statistics.quantiles(ratios, n=4)
    draws = np.random.default_rng(0).choice(ratios, size=(2000, len(ratios)))
    lo, hi = np.quantile(np.median(draws, axis=1), [0.05, 0.95])
    return f"(quartiles {q[0]:.3f}-{q[2]:.3f}; median 90 % CI {lo:.3f}-{hi:.3f})"


def _time_writer(root: Path, data: np.ndarray, layout: Layout) -> float:
    """Seconds from the first snapshot handed to a RunWriter to the bytes being on disk."""
    wr = RunWriter.create(root / "tp.zarr", layout, attrs={"every": 1})  # one-time setup
    os.sync()
    c, rows = wr.chunk_steps, len(data)
    t0 = time.perf_counter()
    for r in range(0, rows, c):
        wr.write_snapshots(r, np.arange(r, min(r + c, rows)), data[r:r + c])
        wr.commit(min(r + c, rows), 0)
    os.sync()
    return time.perf_counter() - t0


def _time_raw(root: Path, data: np.ndarray) -> float:
    """Seconds to write the same rows to one file with plain ``write`` calls, then sync."""
    os.sync()
    t0 = time.perf_counter()
    with open(root / "raw.bin", "wb") as f:
        for row in data:
            f.write(row.tobytes())
    os.sync()
    return time.perf_counter() - t0


def writer_throughput(root: Path, rows: int = 64, reps: int = 5) -> tuple[float, float]:
    """Median MB/s of RunWriter storing ``rows`` MLP snapshots, and of a raw write of them.

    The two alternate ``reps`` times (page-cache writeback makes single timings vary ~2x).
    The writer's time is sustained throughput: creating the store (its coordinates) is not
    counted.
    """
    n = 784 * 1024 + 1024 * 1024 + 1024 * 10
    data = (np.random.default_rng(0).standard_normal((rows, n)) * 0.03).astype(np.float32)
    layout = Layout.build(["w"], [(n,)], [None])
    timers = {"writer": lambda: _time_writer(root, data, layout),
              "raw": lambda: _time_raw(root, data)}
    times: dict[str, list[float]] = {name: [] for name in timers}
    for rep in range(reps):
        for name in (("writer", "raw") if rep % 2 == 0 else ("raw", "writer")):
            times[name].append(timers[name]())
            shutil.rmtree(root / "tp.zarr", ignore_errors=True)
            (root / "raw.bin").unlink(missing_ok=True)
    mb = data.nbytes / 2**20
    return mb / statistics.median(times["writer"]), mb / statistics.median(times["raw"])


def _continue_rows(root: Path, shape: tuple[int, ...], chunk: tuple[int, ...], dtype: str,
                   rows: int, keep: bool) -> tuple[float, float]:
    """Wall and CPU seconds (the whole process's) of writing ``shape[0]`` rows in batches of
    ``rows`` to a checksummed array of chunk rows ``chunk`` (each batch but a chunk row's
    first continues it): ``keep``, the chunk row's copy kept and rewrites through the page
    cache; else (as before) the stored rows read back and the chunk rewritten with ``O_DIRECT``."""
    import zarr

    from weightscope.store.codecs import with_checksum
    arr = zarr.open_group(root / "cont.zarr", mode="w").create_array(
        "a", shape=shape, chunks=chunk, dtype=dtype, fill_value=0,
        compressors=with_checksum(), config={"write_empty_chunks": True})
    writer = direct.DirectRows.for_array(arr)
    assert writer is not None
    values = np.ones(shape, dtype)
    saved = direct.TAIL_BYTES, direct.REWRITE_PAGE_CACHE
    if not keep:  # as before: stored rows read back, the chunk rewritten with O_DIRECT
        direct.TAIL_BYTES, direct.REWRITE_PAGE_CACHE = -1, False
    try:
        os.sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for r in range(0, shape[0], rows):
            writer.write(r, values[r:r + rows])
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        direct.TAIL_BYTES, direct.REWRITE_PAGE_CACHE = saved
        shutil.rmtree(root / "cont.zarr", ignore_errors=True)


def continued_rows(root: Path, reps: int) -> None:
    """Print ms per continued batch with and without the kept chunk row, alternated."""
    cases = {"step (1024-row chunks, 64 rows a batch)": ((4096,), (1024,), "int64", 64),
             "distance (4096 x 6, 64 rows)": ((4096, 6), (4096, 6), "float64", 64),
             "w of a small run (64 x 8192, 1 row)": ((64, 8192), (64, 8192), "float32", 1)}
    for label, (shape, chunk, dtype, rows) in cases.items():
        times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for rep in range(reps):
            for keep in ((True, False) if rep % 2 == 0 else (False, True)):
                times[keep].append(_continue_rows(root, shape, chunk, dtype, rows, keep))
        n = shape[0] // rows
        per = {k: [statistics.median(t[i] for t in v) / n * 1e3 for i in (0, 1)]
               for k, v in times.items()}
        print(f"  {label:40s} read back + O_DIRECT {per[False][0]:6.3f} ms wall "
              f"{per[False][1]:6.3f} ms CPU | kept + page cache {per[True][0]:6.3f} wall "
              f"{per[True][1]:6.3f} CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--dir", default=".", help="where the temporary runs are written")
    ap.add_argument("--continued-only", action="store_true",
                    help="only the continued-rows comparison (seconds, not minutes)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="ws-bench-", dir=args.dir))
    try:
        print("rows continuing a checksummed chunk row, per batch (median over rounds):")
        continued_rows(root, max(args.reps, 5))
        if args.continued_only:
            return
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{args.steps} steps x {args.reps} reps (median wall time of whole runs); "
              f"load average {load}; runs in {root.resolve().parent}")
        times = time_configs(args.steps, args.reps, root)
        print("median wall time, and median over rounds of the time / bare in the same round:")
        for name, t in times.items():
            print(f"  {name:32s} {statistics.median(t):7.3f} s   "
                  f"x{paired_ratio(times, name, 'bare'):5.3f} bare")
        a, b = "(a) rec every=10", "(b) rec every=10 +dist"
        c, c_dist = "(c) rec every=1 s=8192", "(c+) rec every=1 s=8192 +dist"
        print("paired ratios (median over rounds):")
        for label, name, base, target in [
                ("(a) recorder / torch.save", a, "torch.save/10", "(target <= 1)   "),
                ("(b) with distance / (a)", b, a, "(target <= 1.15)"),
                ("(c) every=1 sample=8192 / bare", c, "bare", "(target <= 1.05)"),
                ("(c+) same with distance / bare", c_dist, "bare", " " * 16)]:
            print(f"{label:34s} {paired_ratio(times, name, base):6.3f}   {target} "
                  f"{spread(times, name, base)}")
        writer, raw = writer_throughput(root, reps=max(args.reps, 5))
        print(f"writer {writer:7.1f} MB/s vs raw sequential write {raw:7.1f} MB/s: "
              f"{writer / raw:5.1%}   (target >= 60 %)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
