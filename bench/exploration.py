"""Cost of counting ``flips`` and ``explored`` (issue 16) relative to a SEARCH step.

Model and step of ``bench/sparse_search_step.py``: the 784-1024-1024-10 ReLU MLP, batch 128,
SGD with momentum, unstructured SEARCH rewiring every step (every mask changes at every step,
so no step is skipped as unchanged: the most expensive case). After each ``optimizer.step()``
the candidate also does what the Recorder does per step for sparse layers:
``ExplorationTracker.update`` on the flat masks and ``write`` into two float64 rows.

One model, one optimizer: baseline blocks (the step alone) and candidate blocks (step +
counts) alternate in one process, ``--rounds`` rounds of ``--block`` steps. Printed: the
median time per step of each, their ratio (target <= 1.05), and the counting alone timed
inside the candidate steps, over the baseline step (the same quantity, without the noise of
two medians).

Usage::

    .venv/bin/python bench/exploration.py [--density 0.25] [--rounds 15] [--block 10]
        [--threads N] [--cpu-time]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from weightscope.record.exploration import ExplorationTracker
from weightscope.sparse import Search, sparsify

sys.path.insert(0, str(Path(__file__).parent))
from sparse_search_step import build  # the same model


def make_steps(density: float, clock: Callable[[], float]) -> tuple[Callable[[], None],
                                                                   Callable[[], None],
                                                                   list[float]]:
    """The baseline step, the candidate step and the list the candidate adds its counting
    time to."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g)
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    sp = sparsify(model, density, method=Search(rewire_every=1)).attach(opt)
    masks = [m.reshape(-1) for m in sp.masks().values()]
    tracker = ExplorationTracker(masks)
    rows = torch.zeros(2, len(masks), dtype=torch.float64)
    counting: list[float] = []

    def baseline() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()  # the attached sparsifier rewires here

    def candidate() -> None:
        baseline()
        start = clock()
        tracker.update(masks)
        tracker.write(rows[0], rows[1])
        counting.append(clock() - start)

    return baseline, candidate, counting


def measure(density: float = 0.25, rounds: int = 15, block: int = 10,
            clock: Callable[[], float] = time.perf_counter) -> tuple[float, float, float]:
    """Median seconds per baseline step, per candidate step, and of the counting alone."""
    baseline, candidate, counting = make_steps(density, clock)
    for step in (baseline, candidate):
        for _ in range(5):  # warm-up
            step()
    counting.clear()
    times: dict[str, list[float]] = {"baseline": [], "candidate": []}
    for _ in range(rounds):
        for name, step in (("baseline", baseline), ("candidate", candidate)):
            start = clock()
            for _ in range(block):
                step()
            times[name].append((clock() - start) / block)
    return (statistics.median(times["baseline"]), statistics.median(times["candidate"]),
            statistics.median(counting))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--density", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with process CPU time (steadier on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    base, cand, counting = measure(args.density, args.rounds, args.block, clock)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'CPU' if args.cpu_time else 'wall'} time, density {args.density}, batch 128, "
          "784-1024-1024-10 MLP, SEARCH rewiring every step")
    print(f"search step              {base * 1e3:8.3f} ms (median of {args.rounds} x "
          f"{args.block})")
    print(f"search step + counts     {cand * 1e3:8.3f} ms")
    print(f"ratio candidate/baseline: {cand / base:.3f}")
    print(f"counting alone           {counting * 1e3:8.3f} ms per step = "
          f"{counting / base:.2%} of a search step (target <= 5 %)")


if __name__ == "__main__":
    main()
