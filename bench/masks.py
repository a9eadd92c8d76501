"""Throughput of the mask kernels, each against its baseline in the same process.

Prints elements/s (median of ``--reps`` timed runs after a warm-up) for:

- ``mask_24_2d`` next to the plain 90-pattern search (``blocks (N, 16) @ patterns (16, 90)``,
  argmax) and their ratio (target >= 3x);
- ``mask_24_1d`` (target >= 200 M elements/s on 2 CPU cores, float32);
- ``mask_topk`` at density 0.5, for reference;
- the training step of SEARCH (unstructured, rewire every step, d = 0.25) over a dense step
  on the 784-1024-1024-10 MLP at batch 128 (target <= 1.2; ``bench/sparse_search_step.py``
  has the options).

Sections are functions ``section(w, reps) -> None`` listed in ``SECTIONS``; append new ones
there. Timings are wall-clock, so other work on the machine lowers them; compare the ratios.
On a shared machine (load average above the core count) OpenMP workers that spin-wait for a
descheduled peer dominate kernels made of many small operations; ``--threads 1`` or the
environment variable ``OMP_WAIT_POLICY=PASSIVE`` shows the kernels' own cost.

Run: ``.venv/bin/python bench/masks.py [--size 4096] [--reps 5] [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from weightscope.kernels import mask_24_1d, mask_24_2d, mask_topk, patterns_24_2d


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    """Median wall time of ``reps`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _blocks(t: torch.Tensor) -> torch.Tensor:
    """``(out, in)`` -> ``(out/4 * in/4, 16)`` row-major 4x4 blocks."""
    o, i = t.shape
    return t.reshape(o // 4, 4, i // 4, 4).permute(0, 2, 1, 3).reshape(-1, 16)


def baseline_24_2d(w: torch.Tensor) -> torch.Tensor:
    """The plain exact 2:4 2D search: score all 90 patterns with one matmul, take the argmax."""
    patterns = patterns_24_2d().to(w.device).view(90, 16)
    scores = _blocks(w.abs()) @ patterns.to(w.dtype).t()
    best = patterns[scores.argmax(dim=1)]
    o, i = w.shape
    return best.view(o // 4, i // 4, 4, 4).permute(0, 2, 1, 3).reshape(o, i)


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:8.1f} M elements/s ({seconds * 1e3:7.1f} ms)"


def bench_24_2d(w: torch.Tensor, reps: int) -> None:
    """mask_24_2d against the 90-pattern matmul baseline (same answers, checked)."""
    ours, base = mask_24_2d(w), baseline_24_2d(w)
    mag = w.abs().double()
    kept_ours, kept_base = (mag * ours).sum().item(), (mag * base).sum().item()
    t_base = median_seconds(lambda: baseline_24_2d(w), reps)
    t_ours = median_seconds(lambda: mask_24_2d(w), reps)
    print(f"2:4 2D  baseline (matmul, 90 patterns): {_rate(w.numel(), t_base)}")
    print(f"2:4 2D  mask_24_2d                    : {_rate(w.numel(), t_ours)}")
    print(f"2:4 2D  speed-up mask_24_2d / baseline: {t_base / t_ours:6.2f}x  (target >= 3x)")
    print(f"2:4 2D  kept |w| sums ours / baseline : {kept_ours / kept_base:.9f}")


def bench_24_1d(w: torch.Tensor, reps: int) -> None:
    """mask_24_1d throughput (target >= 200 M elements/s on 2 cores, float32)."""
    t = median_seconds(lambda: mask_24_1d(w), reps)
    print(f"2:4 1D  mask_24_1d                    : {_rate(w.numel(), t)}  (target >= 200 M/s)")


def bench_topk(w: torch.Tensor, reps: int) -> None:
    """mask_topk at density 0.5, for reference."""
    t = median_seconds(lambda: mask_topk(w, 0.5), reps)
    print(f"topk    mask_topk(density=0.5)        : {_rate(w.numel(), t)}  (reference)")


def bench_training_step(w: torch.Tensor, reps: int) -> None:
    """SEARCH (unstructured, rewire every step, d = 0.25) vs dense training step."""
    from sparse_search_step import measure  # bench/ is this script's directory

    dense, search = measure(rounds=max(reps, 5) * 5)
    print(f"train   SEARCH step / dense step (784-1024-1024-10 MLP, batch 128, SGD): "
          f"{search * 1e3:.2f} / {dense * 1e3:.2f} ms = {search / dense:.3f}  (target <= 1.2)")


#: Benchmark sections run in order by main(); append ``fn(w, reps)`` to add one.
SECTIONS: list[Callable[[torch.Tensor, int], None]] = [bench_24_2d, bench_24_1d, bench_topk,
                                                       bench_training_step]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, build one float32 weight and run every section of SECTIONS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="weight is size x size")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per kernel (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(args.size, args.size, generator=gen).to(args.device)
    print(
        f"weight {tuple(w.shape)} float32 on {w.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.reps} after 1 warm-up"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(f"machine: {os.cpu_count()} CPUs, load average {load}, OMP_WAIT_POLICY={policy}")
    for section in SECTIONS:
        section(w, args.reps)


if __name__ == "__main__":
    main()
