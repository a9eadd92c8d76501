"""weightscope at ResNet-18 scale: recording overhead, then `weightscope analyze` on a 5 GB run.

The model is :func:`weightscope.experiments.models.resnet18` (torchvision's layout at width 64,
ImageNet stem: 11.17M conv and fc weights, BatchNorm), trained with SGD + momentum on random
32x32 images, batch 8 (small, so that a CPU step is fast), on one torch thread by default (on
a shared 2-core machine two OpenMP threads spin: 0.5 CPU s per step against 0.06 on one). Four
phases, in one process (the
analyses in subprocesses, so that their peak RSS is theirs alone):

1. Overhead. Whole runs of ``--steps`` steps, ``--reps`` rounds in alternating order (as in
   ``bench/recorder.py``, whose paired-ratio statistics are reused), wall and CPU time (the
   latter of all the process's threads: on a machine shared with others the wall time of
   single runs varies 2x, the CPU time much less): bare training,
   ``torch.save(state_dict)`` every 10 steps, the Recorder every=10 (full snapshots, no
   distance) and every=1 with sample=8192 per parameter (no distance). Targets (issue 13):
   every=10 <= torch.save of the same weights; sampled every=1 <= 1.10 x bare.
2. The big run: the Recorder with its defaults at every=10 (full snapshots of all 11.17M weights
   and the exact search distance) for ``(snapshots - 1) * 10`` steps; its size on disk against
   raw float32 (weights x snapshots x 4 bytes; >= 5 GB at the default 115 snapshots).
3. ``weightscope analyze RUN`` as a subprocess: wall time and peak RSS (``ru_maxrss``; target
   < 2 GiB). Its decay panel covers the largest parameter (``layer4.1.conv2.weight``).
4. The decay analysis of every recorded weight (``decay_time(open_run(RUN)).compute()``) in a
   subprocess: weight-snapshots per wall second (target >= 40 M on 2 cores) and per CPU
   second, and its peak RSS.

Full run (about 40 min on 2 cores shared at load average ~20; ~6 GB of disk under ``--dir``)::

    nice .venv/bin/python bench/scale.py

Smoke run (a minute; the targets on size are then not met by construction)::

    .venv/bin/python bench/scale.py --steps 10 --reps 1 --snapshots 6 --width 16

Phase 4 alone on a kept run (``--snapshots`` must be its snapshot count)::

    .venv/bin/python bench/scale.py --decay-only RUN --snapshots 115

Where the sampled every=1 cost goes (CPU per step of the training thread, of ``rec.step()`` and
of its gathers, and of the other threads: the writer and its chunk pool; Linux only)::

    .venv/bin/python bench/scale.py --split --steps 80
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import weightscope as ws
from weightscope.experiments.models import count_weights, resnet18

sys.path.insert(0, str(Path(__file__).parent))
from recorder import paired_ratio, spread  # bench/ is not a package

BATCH, EVERY, SAMPLE = 8, 10, 8192
GIB = 2**30


def make_run(width: int) -> tuple[nn.Module, Callable[[], None]]:
    """The model and one optimizer step on the next of 16 fixed random batches."""
    model = resnet18(width=width, stem="imagenet", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(16, BATCH, 3, 32, 32, generator=gen)
    ys = torch.randint(0, 10, (16, BATCH), generator=gen)
    state = {"s": 0}

    def step() -> None:
        i = state["s"] % 16
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(xs[i]), ys[i]).backward()
        opt.step()
        state["s"] += 1

    return model, step


def configs(width: int) -> dict[str, Callable[[int, Path], None]]:
    """The runs of phase 1 by name, in an order where compared runs are neighbours."""

    def bare(steps: int, out: Path) -> None:
        _, step = make_run(width)
        for _ in range(steps):
            step()

    def save(steps: int, out: Path) -> None:
        model, step = make_run(width)
        out.mkdir()
        torch.save(model.state_dict(), out / "step0.pt")
        for s in range(1, steps + 1):
            step()
            if s % EVERY == 0:
                torch.save(model.state_dict(), out / f"step{s}.pt")

    def recorded(**kwargs: object) -> Callable[[int, Path], None]:
        def run(steps: int, out: Path) -> None:
            model, step = make_run(width)
            with ws.Recorder(out, model, track_distance=False, **kwargs) as rec:
                for _ in range(steps):
                    step()
                    rec.step()
        return run

    return {"torch.save/10": save, "rec every=10": recorded(every=EVERY), "bare": bare,
            f"rec every=1 s={SAMPLE}": recorded(every=1, sample=SAMPLE)}


def overhead(width: int, steps: int, reps: int, root: Path) -> None:
    """Phase 1: median wall and CPU times and paired ratios of :func:`configs`."""
    runs = configs(width)
    names = list(runs)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for i, run in enumerate(runs.values()):  # warm-up, untimed
        run(2, root / f"warm-{i}")
        shutil.rmtree(root / f"warm-{i}", ignore_errors=True)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            out = root / f"{rep}-{names.index(name)}"
            os.sync()
            t0, c0 = time.perf_counter(), time.process_time()
            runs[name](steps, out)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            shutil.rmtree(out, ignore_errors=True)
    print(f"1. overhead: {steps} steps x {reps} rounds (medians over whole runs; CPU: this "
          "process's, all threads)")
    for name in names:
        print(f"  {name:24s} {statistics.median(wall[name]):8.2f} s wall "
              f"x{paired_ratio(wall, name, 'bare'):6.3f}   {statistics.median(cpu[name]):8.2f}"
              f" s CPU x{paired_ratio(cpu, name, 'bare'):6.3f}")
    sampled = f"rec every=1 s={SAMPLE}"
    for label, name, base, target in [
            ("every=10 / torch.save", "rec every=10", "torch.save/10", 1.0),
            (f"every=1 sample={SAMPLE} / bare", sampled, "bare", 1.10)]:
        for kind, times in (("wall", wall), ("CPU", cpu)):
            ratio = paired_ratio(times, name, base)
            print(f"  {label:30s} {kind:4s} {ratio:6.3f}  (target <= {target:.2f}: "
                  f"{'met' if ratio <= target else 'MISSED'}) {spread(times, name, base)}")


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process (Linux ``/proc``), by thread id."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0]) / 1e9
        except OSError:  # the thread ended meanwhile
            pass
    return out


def split(width: int, steps: int, root: Path) -> None:
    """Per-step CPU of sampled every=1 recording: training step, rec.step(), its gathers
    (``Capture.copy_into``), and the other threads (writer, chunk pool) while it runs."""
    from weightscope.record.capture import Capture

    model, step = make_run(width)
    step()
    gathers = [0.0]
    copy_into = Capture.copy_into

    def timed(self: Capture, *args: object, **kwargs: object) -> None:
        t = time.thread_time()
        copy_into(self, *args, **kwargs)  # type: ignore[arg-type]
        gathers[0] += time.thread_time() - t

    Capture.copy_into = timed  # type: ignore[method-assign]
    try:
        with ws.Recorder(root / "split.zarr", model, every=1, sample=SAMPLE,
                         track_distance=False) as rec:
            gathers[0], train, record, before = 0.0, 0.0, 0.0, _thread_cpu()
            for _ in range(steps):
                t0 = time.thread_time()
                step()
                t1 = time.thread_time()
                rec.step()
                train, record = train + t1 - t0, record + time.thread_time() - t1
            after, main = _thread_cpu(), str(threading.get_native_id())
    finally:
        Capture.copy_into = copy_into  # type: ignore[method-assign]
    others = sum(v - before.get(k, 0.0) for k, v in after.items() if k != main)
    ms = 1e3 / steps
    print(f"split: {steps} steps, CPU ms per step: training {train * ms:.2f}, rec.step() "
          f"{record * ms:.3f} (gathers {gathers[0] * ms:.3f}), other threads {others * ms:.3f}"
          f"; recording / training {(record + others) / train:.3f}")


def big_run(width: int, snapshots: int, path: Path) -> int:
    """Phase 2: record ``snapshots`` full snapshots every 10 steps; returns the weight count."""
    model, step = make_run(width)
    steps = (snapshots - 1) * EVERY
    t0 = time.perf_counter()
    with ws.Recorder(path, model, every=EVERY) as rec:
        for _ in range(steps):
            step()
            rec.step()
    wall = time.perf_counter() - t0
    n = count_weights(model)
    raw = n * snapshots * 4
    disk = sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())
    print(f"2. run: {n:,} weights x {snapshots} snapshots (every={EVERY}, {steps} steps, "
          f"distance tracked) in {wall:.0f} s ({wall / steps:.3f} s/step)")
    print(f"  raw float32 {raw / 1e9:.2f} GB; on disk {disk / 1e9:.2f} GB "
          f"({disk / raw:.3f} x raw)")
    return n


def timed_child(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak RSS (GiB) of a subprocess, and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / GIB, out


DECAY = """import json, sys, time
import weightscope as ws
from weightscope.analyze.decay import decay_time
t0 = time.perf_counter()
ds = ws.open_run(sys.argv[1], chunks=json.loads(sys.argv[2]))
dt = decay_time(ds).compute()
print(dt.sizes["weight"], dt.attrs["max_lag"], time.perf_counter() - t0)
"""


def analyses(path: Path, out: Path, n: int, snapshots: int) -> None:
    """Phases 3 and 4: ``weightscope analyze`` and the decay analysis of every weight."""
    cli = str(Path(sys.executable).parent / "weightscope")
    wall, cpu, rss, _ = timed_child([cli, "analyze", str(path), "--out", str(out)])
    print(f"3. weightscope analyze: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss:.2f} GiB "
          f"(target < 2: {'met' if rss < 2 else 'MISSED'})")
    decay_rate(path, snapshots)


def decay_rate(path: Path, snapshots: int) -> None:
    """Phase 4: ``decay_time`` of every weight, with the run opened at its stored chunks
    (the default) and in whole-time columns (``open_run(path, chunks={"step": -1})``)."""
    for chunks in ("null", '{"step": -1}'):
        wall, cpu, rss, text = timed_child([sys.executable, "-c", DECAY, str(path), chunks])
        weights, lag, inner = text.split()
        cells = int(weights) * snapshots
        rate = cells / float(inner) / 1e6
        print(f"4. decay_time of all {int(weights):,} weights x {snapshots} snapshots (max_lag "
              f"{lag}, open_run chunks={chunks}): {float(inner):.1f} s ({wall:.1f} s with "
              f"imports), {rate:.1f} M weight-snapshots/s wall (target >= 40: "
              f"{'met' if rate >= 40 else 'MISSED'}), {cells / cpu / 1e6:.1f} M per CPU s; "
              f"peak RSS {rss:.2f} GiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="steps of each phase-1 run")
    ap.add_argument("--reps", type=int, default=5, help="phase-1 rounds")
    ap.add_argument("--snapshots", type=int, default=115, help="snapshots of the big run")
    ap.add_argument("--width", type=int, default=64, help="ResNet width (64: ResNet-18)")
    ap.add_argument("--skip-overhead", action="store_true", help="phases 2-4 only")
    ap.add_argument("--overhead-only", action="store_true", help="phase 1 only")
    ap.add_argument("--decay-only", metavar="RUN",
                    help="only phase 4, on an existing run of --snapshots snapshots")
    ap.add_argument("--split", action="store_true",
                    help="only the per-step CPU split of sampled every=1 recording")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--dir", default=".", help="where the temporary runs are written")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="ws-scale-", dir=args.dir))
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} "
              f"CPUs, load average {load}; resnet18(width={args.width}), batch {BATCH} "
              f"at 32x32; runs in {root}")
        if args.decay_only:
            decay_rate(Path(args.decay_only), args.snapshots)
            return
        if args.split:
            split(args.width, args.steps, root)
            return
        if not args.skip_overhead:
            overhead(args.width, args.steps, args.reps, root)
        if args.overhead_only:
            return
        n = big_run(args.width, args.snapshots, root / "run.zarr")
        analyses(root / "run.zarr", root / "analysis", n, args.snapshots)
        print(f"peak RSS of this (training) process: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB:.2f} GiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
