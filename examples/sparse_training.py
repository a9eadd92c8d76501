"""SEARCH at d = 0.25 on MNIST-1D against STATIC and REDUCE with the same weight count.

Three methods, three seeds each, on the sweeps' task (1D CNN of width 32, SGD with cosine
decay, MNIST-1D with 10,000 samples; see ``weightscope.experiments.sweeps``):

* SEARCH: the top quarter of each layer's weights by |w| participate, rewired every step, the
  others keep receiving gradients and are reset to zero every steps / 20 steps (paper §3);
* STATIC: the top quarter by |w| at initialization, fixed for the whole run;
* REDUCE: a dense model whose layers are narrowed to hold the same number of weights.

It prints the mean ± std test error of each over the seeds. The runs go through the sweep
runner (two worker processes), so they are stored in ``OUT/quick/results.zarr`` (or
``OUT/full/``, ``OUT/stepsN/``, ``OUT/quick-samplesM/``...) and a second call reuses them.

Usage::

    python examples/sparse_training.py [OUT] [--full | --steps N [--samples M]]

By default each run trains for 600 steps (about a minute in all on 2 CPU cores); ``--full`` (or
the environment variable ``WEIGHTSCOPE_FULL=1``) trains for the sweeps' 2000 steps (a few
minutes); ``--steps N`` (and ``--samples M``, a multiple of 10 >= 160, instead of 10,000) for a
quick look at the pipeline (runs that short do not separate the methods).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from weightscope.analyze.sweeps import summarize
from weightscope.experiments.runner import run_sweep
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sweeps import Point, Sweep
from weightscope.store.sweep_results import SweepStore

QUICK_STEPS, FULL_STEPS, DENSITY, SEEDS, SAMPLES = 600, 2000, 0.25, 3, 10_000


def comparison(steps: int, samples: int = SAMPLES) -> Sweep:
    """The three methods at ``DENSITY`` as a sweep of three points."""
    task = {"density": DENSITY, "steps": steps, "num_samples": samples}
    configs = {
        "SEARCH": RunConfig(method="search", reset_every=max(1, steps // 20), **task),
        "STATIC": RunConfig(method="static", **task),
        "REDUCE": RunConfig(method="reduce", **task),
    }
    points = tuple(Point(name, DENSITY, config, index)
                   for index, (name, config) in enumerate(configs.items()))
    return Sweep("sparse-training-example", points, {"steps": steps})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="sparse-training-out", type=Path)
    parser.add_argument("--full", action="store_true", help="train for 2000 steps per run")
    parser.add_argument("--steps", type=int, default=None, help="train for N steps per run")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="MNIST-1D samples")
    args = parser.parse_args()
    if args.steps is not None:
        steps, name = args.steps, f"steps{args.steps}"
    elif args.full or os.environ.get("WEIGHTSCOPE_FULL") == "1":
        steps, name = FULL_STEPS, "full"
    else:
        steps, name = QUICK_STEPS, "quick"
    if args.samples != SAMPLES:
        name += f"-samples{args.samples}"
    out = args.out / name

    report = run_sweep(comparison(steps, args.samples), out, seeds=SEEDS, workers=2)
    runs = SweepStore.open(out).to_dataset()
    table = summarize(runs)
    print(f"MNIST-1D ({args.samples} samples), 1D CNN, d = {DENSITY}, {steps} steps, {SEEDS} seeds "
          f"({report.executed} runs trained now, {report.skipped} reused from {out})")
    for series, mean, std in zip(table["series"].values, table["mean"].values,
                                 table["std"].values):
        weights = int(runs["n_weights"].values[runs["series"].values == series][0])
        print(f"  {series:<7} test error {100 * mean:5.2f} ± {100 * std:4.2f} %   "
              f"({weights} weights in the forward pass)")
    print(f"CPU time of the runs: {float(runs['cpu_s'].sum()):.0f} s")


if __name__ == "__main__":
    main()
