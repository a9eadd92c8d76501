"""Measure the Figure 1 trends on the bundled MNIST-1D task for one or more recipes.

Research script behind the `weightscope demo` presets (weightscope/experiments/demo.py).

``--demo RECIPE --seeds 0 1 2 3`` trains the demo preset through ``run_family`` with a real
Recorder per model (into a temporary directory, or ``--out``) and measures it with
weightscope's own analysis (``figure1_data``, ``summary``, ``sets_at``: the numbers
``weightscope demo`` prints), one table row per seed: inactive and active fractions (keep=1/4
per layer by final |w|) at step 0, 25 %, 50 % and 90 % of training; Spearman(median decay time
Δ, final |w|) over 10 equal-count bins of the largest layer; whether the family's total search
distance increases with its weights (and the distances over the largest's).

Without ``--demo`` it explores any recipe in memory (no store), with plain numpy and the
definitions of DESIGN section 4, at the same progress points.

Measured for issue 16 (torch 2.13.0 CPU, one thread per run; MLP 40-w-w-10, w = 120, 176, 216,
256; 4000 steps, snapshots every 40; constant learning rate):

===========  ====  =========================  =========================  =====  ============
recipe       seed  inactive 0 / 25 / 50 / 90  active 0 / 25 / 50 / 90    rho    distance
===========  ====  =========================  =========================  =====  ============
sgd-wd5e-3   0     0.25 / 0.55 / 0.59 / 0.68  0.01 / 0.07 / 0.12 / 0.18  +0.76  increasing
sgd-wd5e-3   1     0.23 / 0.53 / 0.58 / 0.67  0.01 / 0.08 / 0.13 / 0.19  +0.77  increasing
sgd-wd5e-3   2     0.25 / 0.55 / 0.59 / 0.68  0.01 / 0.08 / 0.13 / 0.19  +0.83  increasing
sgd-wd5e-3   3     0.25 / 0.54 / 0.59 / 0.68  0.01 / 0.07 / 0.12 / 0.18  +0.78  increasing
sgd-wd5e-4   0     0.44 / 0.56 / 0.59 / 0.73  0.01 / 0.19 / 0.20 / 0.24  -1.00  not monotone
adamw        0     0.73 / 0.74 / 0.74 / 0.75  0.00 / 0.13 / 0.21 / 0.24  +1.00  increasing
===========  ====  =========================  =========================  =====  ============

(distances of sgd-wd5e-3 over the largest model's: 0.55-0.57, 0.74-0.76, 0.87-0.89, 1; test
errors 0.34-0.37; the sets end at 0.25 / 0.75 by definition.) Under ``sgd-wd5e-3`` (the demo's
default) all three panels hold on every seed: both sets start small and grow, settling mostly
in the first quarter; distance grows with the weights; larger weights decorrelate later.
``sgd-wd5e-4`` inverts the right panel and breaks the middle one; ``adamw`` starts with most
of the inactive set already in place (AdamW grows the large weights; the rest never cross the
final threshold).

Usage:
    .venv/bin/python scripts/figure1_recipe_study.py --demo sgd-wd5e-3 --seeds 0 1 2 3
    .venv/bin/python scripts/figure1_recipe_study.py --arch mlp --recipe sgd --weight-decay 5e-3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from weightscope.experiments.data import load_mnist1d
from weightscope.experiments.demo import DEMO_PRESETS, demo_config, run_family
from weightscope.experiments.models import build, count_weights, model_family
from weightscope.experiments.train import TrainConfig, train

WEIGHTED = (nn.Linear, nn.Conv1d)
#: Training progress at which the active and inactive fractions are reported.
PROGRESS = (0.0, 0.25, 0.5, 0.9)


class Snapshots:
    """In-memory snapshots every `every` steps (step 0 included) and the exact distance."""

    def __init__(self, model: nn.Module, steps: int, every: int) -> None:
        self.params = [m.weight for m in model.modules() if isinstance(m, WEIGHTED)]
        self.sizes = [p.numel() for p in self.params]
        self.every = every
        self.w = np.empty((steps // every + 1, sum(self.sizes)), np.float32)
        self.prev = [p.detach().clone() for p in self.params]
        self.distance = torch.zeros((), dtype=torch.float64)
        self._take(0)

    def _take(self, row: int) -> None:
        torch.cat([p.detach().reshape(-1) for p in self.params], out=torch.from_numpy(self.w[row]))

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        for p, q in zip(self.params, self.prev, strict=True):
            self.distance += (p.detach() - q).abs().sum(dtype=torch.float64)
            q.copy_(p.detach())
        if step % self.every == 0:
            self._take(step // self.every)

    def layers(self) -> list[np.ndarray]:
        return np.split(self.w, np.cumsum(self.sizes)[:-1], axis=1)


def active_fractions(layers: list[np.ndarray], keep: float = 0.25) -> tuple[np.ndarray, ...]:
    """Active and inactive fractions per snapshot, per-layer threshold (k-th largest final |w|)."""
    act = np.zeros(layers[0].shape[0])
    inact = np.zeros(layers[0].shape[0])
    n = 0
    for w in layers:
        a = np.abs(w)
        k = int(np.ceil(keep * a.shape[1]))
        thr = np.sort(a[-1])[::-1][k - 1]
        above = a >= thr
        act += np.flip(np.logical_and.accumulate(np.flip(above, 0), 0), 0).sum(1)
        inact += np.flip(np.logical_and.accumulate(np.flip(~above, 0), 0), 0).sum(1)
        n += a.shape[1]
    return act / n, inact / n


def decay_time(x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Delta per column of x (T, N) in fraction of training (NaN for constant series)."""
    out = np.concatenate([_decay_chunk(x[:, i:i + chunk].astype(np.float64))
                          for i in range(0, x.shape[1], chunk)])
    return out / (x.shape[0] - 1)


def _decay_chunk(x: np.ndarray) -> np.ndarray:
    t, n = x.shape
    max_lag = t - 3
    changed_from_first = x != x[0]
    first_change = np.where(changed_from_first.any(0), changed_from_first.argmax(0), t)
    changed_from_last = x != x[-1]
    last_change = np.where(changed_from_last.any(0),
                           t - 1 - np.flip(changed_from_last, 0).argmax(0), -1)
    delta = np.full(n, float(max_lag))
    todo = first_change < t  # constant series never cross
    for tau in range(1, max_lag + 1):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        a = x[: t - tau, idx]
        b = x[tau:, idx]
        a = a - a.mean(0)
        b = b - b.mean(0)
        cov = np.einsum("ij,ij->j", a, b)
        ok = (first_change[idx] < t - tau) & (last_change[idx] >= tau)  # neither window constant
        cross = ok & (cov <= 0)
        delta[idx[cross]] = tau
        todo[idx[cross]] = False
    delta[first_change == t] = np.nan
    return delta


def binned_spearman(w_final: np.ndarray, delta: np.ndarray, bins: int = 10) -> tuple:
    order = np.argsort(np.abs(w_final), kind="stable")
    medians = np.array([np.nanmedian(delta[b]) for b in np.array_split(order, bins)])
    return spearmanr(np.arange(bins), medians).statistic, medians


def analyze(snaps: Snapshots) -> dict:
    """Figure 1 numbers of one run (left and right panels)."""
    t0 = time.perf_counter()
    layers = snaps.layers()
    act, inact = active_fractions(layers)
    big = max(layers, key=lambda w: w.shape[1])
    delta = decay_time(big)
    rho, med = binned_spearman(big[-1], delta)
    at = [round(f * (act.size - 1)) for f in PROGRESS]
    censored = np.mean(delta == (big.shape[0] - 3) / (big.shape[0] - 1))
    return {"rho": rho, "medians": med, "active": act[at], "inactive": inact[at],
            "final": (act[-1], inact[-1]), "censored": censored,
            "analysis": time.perf_counter() - t0}


def run_one(arch: str, width: int, cfg: TrainConfig, every: int, analyze_it: bool) -> dict:
    data = load_mnist1d()
    model = build(arch, width, seed=cfg.seed)
    snaps = Snapshots(model, cfg.steps, every)
    res = train(model, data, cfg, on_step=snaps)
    row = {"width": width, "weights": count_weights(model), "err": res.test_error,
           "loss": res.train_loss, "wall": res.wall_time, "distance": snaps.distance.item()}
    return {**row, **analyze(snaps)} if analyze_it else row


def demo_row(recipe: str, seed: int, out: Path) -> dict:
    """One seed of the demo preset, recorded into ``out`` and measured as `weightscope demo`
    measures it."""
    import weightscope as ws
    from weightscope.analyze import figure1_data, summary
    from weightscope.analyze.figure1 import sets_at

    config = demo_config(recipe, seed=seed)
    runs = run_family(config, out, lambda spec, model: ws.Recorder(
        spec.path, model, every=spec.every, overwrite=True))
    data = figure1_data([ws.open_run(r.spec.path) for r in runs], bins=10,
                        labels=[r.spec.name for r in runs])
    numbers = summary(data)
    family = numbers["distance"]["family"]
    return {"recipe": recipe, "seed": seed,
            "inactive": list(sets_at(data.sets, "inactive", PROGRESS).values()),
            "active": list(sets_at(data.sets, "active", PROGRESS).values()),
            "rho": numbers["decay"]["spearman_median_vs_magnitude"],
            "increasing": family["increasing"], "distance": family["normalized"],
            "errors": [r.result.test_error for r in runs]}


def print_row(row: dict) -> None:
    """One line of the docstring's table (and the details behind it)."""
    fmt = " / ".join
    rho = "n/a" if row["rho"] is None else f"{row['rho']:+.2f}"
    print(f"{row['recipe']:<11}  {row['seed']:<4}  {fmt(f'{v:.2f}' for v in row['inactive'])}  "
          f"{fmt(f'{v:.2f}' for v in row['active'])}  {rho:<5}  "
          f"{'increasing' if row['increasing'] else 'not monotone'}  "
          f"(distance/max {np.round(row['distance'], 3).tolist()}, test errors "
          f"{np.round(row['errors'], 3).tolist()})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="mlp")
    p.add_argument("--recipe", default="adamw")
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", default="constant")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--family", type=int, default=4, help="family size (1: full model only)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--demo", choices=tuple(DEMO_PRESETS),
                   help="record the demo preset of this recipe through run_family, per seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of --demo")
    p.add_argument("--out", type=Path, help="where --demo records (default: a temporary dir)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    if a.demo:
        print(f"# demo preset {demo_config(a.demo)}; recipe, seed, inactive and active at "
              f"{', '.join(f'{p:.0%}' for p in PROGRESS)}, rho, distance")
        for seed in a.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                print_row(demo_row(a.demo, seed, (a.out or Path(tmp)) / f"seed{seed}"))
        print(f"total={time.perf_counter() - start:.1f}s")
        return
    cfg = TrainConfig(recipe=a.recipe, lr=a.lr, weight_decay=a.weight_decay, steps=a.steps,
                      batch_size=a.batch_size, seed=a.seed, schedule=a.schedule)
    widths = model_family(a.arch, a.family) if a.family > 1 else (None,)
    print(f"# {a.arch} {cfg} every={a.every} threads={torch.get_num_threads()}")
    rows = [run_one(a.arch, w, cfg, a.every, analyze_it=(i == len(widths) - 1))
            for i, w in enumerate(widths)]
    report(rows, start)


def report(rows: list[dict], start: float) -> None:
    for r in rows:
        print(f"width={r['width']} weights={r['weights']} test_err={r['err']:.3f} "
              f"train_loss={r['loss']:.3f} distance={r['distance']:.1f} wall={r['wall']:.1f}s")
    full = rows[-1]
    print(f"spearman={full['rho']:+.3f} medians={np.round(full['medians'], 3).tolist()}")
    print(f"active@0/25/50/90%={np.round(full['active'], 3).tolist()} "
          f"inactive={np.round(full['inactive'], 3).tolist()} final={np.round(full['final'], 3)}"
          f" censored={full['censored']:.3f}")
    d = [r["distance"] for r in rows]
    print(f"distance/max={np.round(np.array(d) / max(d), 3).tolist()} "
          f"increasing={bool(np.all(np.diff(d) > 0))}")
    print(f"analysis={full['analysis']:.1f}s total={time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
