"""Measure the Figure 1 trends on the bundled MNIST-1D task for one or more recipes.

Research script behind the `weightscope demo` preset (weightscope/experiments/demo.py). It keeps
snapshots in memory (no Recorder, no store) and computes, with plain numpy and the definitions of
DESIGN section 4:

* (i) active / inactive fractions (keep=1/4 per layer by final |w|) at 10%, 50%, 90% of training;
* (ii) Spearman of the median decorrelation time Delta over 10 equal-count bins of final |w| of
  the largest layer (weight-count) of the full model;
* (iii) total search distance sum_s sum_w |w(s) - w(s-1)| of every family member.

Usage (each row of the report table; --demo RECIPE runs the demo preset through run_family):
    .venv/bin/python scripts/figure1_recipe_study.py --arch mlp --recipe adamw
    .venv/bin/python scripts/figure1_recipe_study.py --arch mlp --recipe sgd --weight-decay 5e-3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from weightscope.experiments.data import load_mnist1d
from weightscope.experiments.demo import RunSpec, demo_config, run_family
from weightscope.experiments.models import build, count_weights, model_family
from weightscope.experiments.train import TrainConfig, train

WEIGHTED = (nn.Linear, nn.Conv1d)


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
    at = [round(f * (act.size - 1)) for f in (0.1, 0.5, 0.9)]
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


class MemoryHook:
    """A Recorder stand-in for run_family: attach() + close(), snapshots kept in memory."""

    def __init__(self, spec: RunSpec, model: nn.Module) -> None:
        self.snaps = Snapshots(model, spec.steps, spec.every)
        self.step = 0

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.register_step_post_hook(self._after_step)

    def _after_step(self, optimizer: object, args: object, kwargs: object) -> None:
        self.step += 1
        self.snaps(self.step, None)  # type: ignore[arg-type]

    def close(self) -> None:
        pass


def run_demo(recipe: str, seed: int) -> list[dict]:
    """The demo preset through run_family, timed end to end (training + analysis)."""
    hooks: list[MemoryHook] = []

    def make(spec: RunSpec, model: nn.Module) -> MemoryHook:
        hooks.append(MemoryHook(spec, model))
        return hooks[-1]

    runs = run_family(demo_config(recipe, seed=seed), "unused", make)
    rows = [{"width": r.spec.width, "weights": r.spec.n_weights, "err": r.result.test_error,
             "loss": r.result.train_loss, "wall": r.result.wall_time,
             "distance": h.snaps.distance.item()} for r, h in zip(runs, hooks, strict=True)]
    rows[-1].update(analyze(hooks[-1].snaps))
    return rows


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
    p.add_argument("--demo", choices=("adamw", "sgd"),
                   help="run the demo preset of this recipe through run_family instead")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    start = time.perf_counter()
    if a.demo:
        print(f"# demo preset {demo_config(a.demo, seed=a.seed)}")
        report(run_demo(a.demo, a.seed), start)
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
    print(f"active@10/50/90%={np.round(full['active'], 3).tolist()} "
          f"inactive={np.round(full['inactive'], 3).tolist()} final={np.round(full['final'], 3)}"
          f" censored={full['censored']:.3f}")
    d = [r["distance"] for r in rows]
    print(f"distance/max={np.round(np.array(d) / max(d), 3).tolist()} "
          f"increasing={bool(np.all(np.diff(d) > 0))}")
    print(f"analysis={full['analysis']:.1f}s total={time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
