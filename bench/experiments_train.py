"""Steps per second of :func:`weightscope.experiments.train.train` against a plain DataLoader loop.

Both train the same model (MLP 40-256-256-10 by default, or the 1D CNN) on MNIST-1D with the
same recipe and batch size, in one process, alternating ``--reps`` times:

(a) baseline: ``torch.utils.data.DataLoader(TensorDataset(x, y), batch_size, shuffle=True,
    drop_last=True)`` re-iterated per epoch, the usual zero_grad/backward/step loop;
(b) :func:`~weightscope.experiments.train.train` (one permutation and one gather per epoch).

Prints the median steps/s of each and the ratio (b)/(a). Timings are wall-clock, so other work
on the machine lowers them; compare the ratio.

Run: ``.venv/bin/python bench/experiments_train.py [--arch mlp] [--recipe adamw] [--steps 1000]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from weightscope.experiments.data import MNIST1D, load_mnist1d
from weightscope.experiments.models import build
from weightscope.experiments.train import TrainConfig, make_optimizer, train


def baseline(arch: str, data: MNIST1D, cfg: TrainConfig) -> float:
    """Steps per second of the plain DataLoader loop."""
    model = build(arch, seed=cfg.seed)
    opt = make_optimizer(model.parameters(), cfg)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=cfg.batch_size,
                        shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.seed))
    step = 0
    start = time.perf_counter()
    while step < cfg.steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == cfg.steps:
                break
    return cfg.steps / (time.perf_counter() - start)


def candidate(arch: str, data: MNIST1D, cfg: TrainConfig) -> float:
    """Steps per second of :func:`train` (its own wall time, final evaluation excluded)."""
    return cfg.steps / train(build(arch, seed=cfg.seed), data, cfg).wall_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--recipe", default="adamw", choices=("adamw", "sgd"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    data = load_mnist1d()
    cfg = TrainConfig(recipe=args.recipe, steps=args.steps, batch_size=args.batch_size)
    candidate(args.arch, data, TrainConfig(recipe=args.recipe, steps=50))  # warm-up
    base, cand = [], []
    for _ in range(args.reps):
        base.append(baseline(args.arch, data, cfg))
        cand.append(candidate(args.arch, data, cfg))
    b, c = statistics.median(base), statistics.median(cand)
    print(f"{args.arch} {args.recipe} batch {args.batch_size}, {torch.get_num_threads()} threads")
    print(f"  (a) DataLoader loop : {b:8.0f} steps/s")
    print(f"  (b) train()         : {c:8.0f} steps/s")
    print(f"  ratio (b)/(a)       : {c / b:8.2f}x")


if __name__ == "__main__":
    main()
