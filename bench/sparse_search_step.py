"""Cost of one SEARCH training step relative to a dense step, measured side by side.

Model: the 784-1024-1024-10 ReLU MLP, batch 128, SGD with momentum (or Adam); SEARCH is unstructured
and rewires every step (``Search(rewire_every=1)``), the most expensive setting. Dense and
sparse steps alternate in blocks in one process; the script prints the median time per step
of each and their ratio (the target is <= 1.2).

Usage::

    .venv/bin/python bench/sparse_search_step.py [--density 0.25] [--rounds 15] [--block 10]
        [--threads N] [--optimizer sgd|adam] [--cpu-time] [--kernel-only]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from weightscope.sparse import Search, sparsify, topk


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10))


def make_step(
    sparse: bool, density: float, optimizer: str, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], None]:
    model = build()
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if sparse:
        sparsify(model, density, method=Search(rewire_every=1)).attach(opt)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()  # the attached sparsifier rewires here

    return step


def time_block(step: Callable[[], None], n: int, clock: Callable[[], float]) -> float:
    start = clock()
    for _ in range(n):
        step()
    return (clock() - start) / n


def measure(density: float = 0.25, rounds: int = 15, block: int = 10, optimizer: str = "sgd",
            clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """Median seconds per dense and per SEARCH step, alternating blocks in this process."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g)
    steps = {"dense": make_step(False, density, optimizer, x, y),
             "search": make_step(True, density, optimizer, x, y)}
    for step in steps.values():
        time_block(step, 5, clock)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(time_block(step, block, clock))
    return statistics.median(times["dense"]), statistics.median(times["search"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--density", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with process CPU time (steadier on a busy machine)")
    parser.add_argument("--kernel-only", action="store_true",
                        help="rewire with weightscope.kernels.mask_topk every step instead of "
                             "the incremental tracker (for comparison)")
    args = parser.parse_args()
    if args.kernel_only:
        topk.MIN_NUMEL.update(numba=1 << 62, torch=1 << 62)  # make_topk: always the kernel
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    dense, search = measure(args.density, args.rounds, args.block, args.optimizer, clock)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'CPU' if args.cpu_time else 'wall'} time, density {args.density}, batch 128, "
          f"784-1024-1024-10 MLP, {args.optimizer}")
    print(f"dense step   {dense * 1e3:8.2f} ms (median of {args.rounds} x {args.block})")
    how = "kernel every step" if args.kernel_only else "incremental exact top-k"
    print(f"search step  {search * 1e3:8.2f} ms (unstructured, rewire every step, {how})")
    print(f"ratio search/dense: {search / dense:.3f}")


if __name__ == "__main__":
    main()
