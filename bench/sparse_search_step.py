"""Cost of one SEARCH training step relative to a dense step, measured side by side.

Model: the 784-1024-1024-10 ReLU MLP, batch 128, SGD with momentum; SEARCH is unstructured
and rewires every step (``Search(rewire_every=1)``), the most expensive setting. Dense and
sparse steps alternate in blocks in one process; the script prints the median time per step
of each and their ratio (the target is <= 1.2).

Usage::

    .venv/bin/python bench/sparse_search_step.py [--density 0.25] [--rounds 15] [--block 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from weightscope.sparse import Search, sparsify


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10))


def make_step(sparse: bool, density: float, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if sparse:
        sparsify(model, density, method=Search(rewire_every=1)).attach(opt)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()  # the attached sparsifier rewires here

    return step


def time_block(step: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--density", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g)
    steps = {"dense": make_step(False, args.density, x, y),
             "search": make_step(True, args.density, x, y)}
    for step in steps.values():
        time_block(step, 5)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(time_block(step, args.block))
    dense, search = (statistics.median(times[n]) for n in ("dense", "search"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"density {args.density}, batch 128, 784-1024-1024-10 MLP, SGD momentum")
    print(f"dense step   {dense * 1e3:8.2f} ms (median of {args.rounds} x {args.block})")
    print(f"search step  {search * 1e3:8.2f} ms (unstructured, rewire every step)")
    print(f"ratio search/dense: {search / dense:.3f}")


if __name__ == "__main__":
    main()
