"""The paper's sweeps on MNIST-1D: each figure as a grid of :class:`RunConfig` points.

:func:`get_sweep` returns a :class:`Sweep`: its points ``(series, x, config)``, repeated over
seeds by :func:`weightscope.experiments.runner.run_sweep`. Every sweep also holds a REGULAR
(dense) point, the reference line of its figure.

================  ==========================  ===========================================
name              paper                       series x axis
================  ==========================  ===========================================
``rewire``        Fig. 3 left                 d in {0.5, 0.25, 0.1}; rewiring interval r
``grad-scale``    Fig. 3 middle               d; gradient scale s of non-participating w
``reset``         Fig. 3 right                d; reset interval z (inf = never)
``exploit``       Fig. 4                      NO EXPLORE (REDUCE), NO EXPLOIT, FIX, RESET,
                                              REGULARIZE; density d
``methods``       Fig. 5                      SEARCH, LOTTERY, SET, RIGL, REDUCE; d
``capacity``      Fig. 14 (appendix F)        SEARCH, REDUCE; d in {0.5, 0.25, 0.1, 0.05}
``longer``        Fig. 6 left (appendix G)    REGULAR and d; training-length multiplier t
``blocks``        Table 3 (appendix H)        b in {1, 2, 4, 8}, 2:4 1D, 2:4 2D, REDUCE; d=0.5
================  ==========================  ===========================================

Search capacity (``capacity``): :func:`weightscope.analyze.sweeps.capacity` computes
``f = (SEARCH - REDUCE) / (REGULAR - REDUCE)`` in accuracy, the meaning appendix F describes
(1 = as good as the dense model's free search, 0 = no better than the narrower model); the
formula printed in the paper, ``(REGULAR - SEARCH) / (REGULAR - REDUCE)``, has the opposite
meaning and is not used.

The task (chosen from REGULAR and REDUCE alone, before any SEARCH result was seen): the 1D CNN
at width 32 (9,504 weights), SGD (lr 0.1, momentum 0.9, weight decay 5e-4) with cosine decay,
batch 128, 2000 steps (32 epochs), MNIST-1D with 10,000 samples (2,000 test). At the default
width 64 REDUCE at d = 0.1 came within 0.6 points of the dense error (one-seed pilot), leaving
nothing for search to recover; at width 32 REDUCE loses 4.5 points at d = 0.1 (3 seeds).
``docs/reproducing.md`` has the measured numbers of every sweep. ``schedule="step"`` (the paper's
image-classification schedule, :data:`~.train.SCHEDULES`) or ``"constant"`` replaces the cosine
decay for every point (``weightscope sweep exploit --schedule step``); each run's config, and so
its key, holds its schedule.

Fixed choices, made a priori and not tuned: SEARCH rewires every step (r = 1) with s = 1; FIX
stops rewiring at half of training (v = 0.5, appendix D); RESET uses z = steps / 20 (100) and
REGULARIZE ``beta = 0.2 / z`` (the paper's z = 1k with beta = 0.0002 has the same product);
the SEARCH of ``methods``, ``capacity``, ``longer`` and ``blocks`` is SEARCH with RESET (the
paper's usual choice); SET and RIGL swap ``f = 0.3`` of the weights every steps / 20 steps;
LOTTERY rewinds to ``eps = steps / 20`` (within the paper's k/100..k/10). ``longer`` trains
for ``t`` times a base of 500 steps (t = 4 is the other sweeps' length), RESET keeping
``z = 25``. ``blocks`` sparsifies the hidden layers only (the 10-output classifier cannot take
blocks of 4 or 8 or 2:4 2D), for every structure alike.

Examples
--------
>>> from weightscope.experiments.sweeps import SWEEPS, get_sweep
>>> SWEEPS
('rewire', 'grad-scale', 'reset', 'exploit', 'methods', 'capacity', 'longer', 'blocks')
>>> sweep = get_sweep("rewire")
>>> len(sweep.points), sweep.points[0].series, sweep.points[0].config.rewire_every
(19, 'd=0.5', 1)
>>> get_sweep("rewire", steps=8, num_samples=500).points[0].config.steps
8
>>> get_sweep("methods", task="lm").points[0].config.arch  # the language model's task
'transformer'
>>> get_sweep("exploit", schedule="step").spec, get_sweep("exploit", schedule="cosine").spec
({'steps': 2000, 'overrides': {'schedule': 'step'}}, {'steps': 2000, 'overrides': {}})
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from weightscope._validate import check_int
from weightscope.errors import ConfigError, hint

from .sparse_config import RunConfig
from .tasks import get_task

__all__ = ["DEFAULT_STEPS", "SWEEPS", "Point", "Sweep", "get_sweep"]

#: Sweep names, in the order of the paper's figures.
SWEEPS = ("rewire", "grad-scale", "reset", "exploit", "methods", "capacity", "longer", "blocks")
#: Default (base) steps per sweep.
DEFAULT_STEPS = {name: 500 if name == "longer" else 2000 for name in SWEEPS}
DENSITIES = (0.5, 0.25, 0.1)
REWIRE_INTERVALS = (1, 4, 16, 64, 256, 1024)
GRAD_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0)
RESET_INTERVALS = (1, 4, 16, 64, 256, 1024, None)
CAPACITY_DENSITIES = (0.5, 0.25, 0.1, 0.05)
LENGTHS = (1, 2, 4, 8)
BLOCK_SIZES = (1, 2, 4, 8)
#: Fields of RunConfig a sweep may override for all its points (tests use tiny sizes).
OVERRIDABLE = ("task", "arch", "width", "recipe", "lr", "schedule", "batch_size", "num_samples")


@dataclass(frozen=True)
class Point:
    """One grid point: its series (line/bar) and x value in the figure, its config, and its
    position in the sweep (figures keep that order)."""

    series: str
    x: float
    config: RunConfig
    index: int = 0


@dataclass(frozen=True)
class Sweep:
    """A named grid of points; ``spec`` is what a resumed sweep must match."""

    name: str
    points: tuple[Point, ...]
    spec: dict[str, Any] = field(default_factory=dict)

    def runs(self, seeds: int) -> Iterator[tuple[Point, RunConfig]]:
        """Every ``(point, config with seed)``, seed-major (all points of seed 0 first)."""
        for seed in range(seeds):
            for point in self.points:
                yield point, point.config.replace(seed=seed)


def get_sweep(name: str, steps: int | None = None, **overrides: Any) -> Sweep:
    """The sweep ``name`` at ``steps`` (default :data:`DEFAULT_STEPS`) with field overrides.

    Parameters
    ----------
    name : str
        One of :data:`SWEEPS`.
    steps : int, optional
        Training steps of every run (``longer``: the base multiplied by ``t``).
    **overrides
        Values of :data:`OVERRIDABLE` RunConfig fields for every point (e.g. a tiny
        ``num_samples`` in tests, or ``schedule="step"``). They are part of the sweep's spec
        (a sweep directory holds one setting) except where equal to the RunConfig default, so
        ``schedule="cosine"`` is the same sweep as no override.

    Raises
    ------
    ConfigError
        Unknown name, bad steps, or a field that cannot be overridden.
    """
    if name not in SWEEPS:
        raise ConfigError(f"unknown sweep {name!r}; choose one of {', '.join(SWEEPS)}.")
    if steps is not None:
        check_int(steps, "steps must be an int >= 1", fix=f"Pass e.g. {hint('steps', 20)}.")
    bad = sorted(set(overrides) - set(OVERRIDABLE))
    if bad:
        raise ConfigError(f"sweep overrides may only set {OVERRIDABLE}; got {bad}.")
    steps = _default_steps(name, overrides.get("task", "mnist1d")) if steps is None else steps
    base = RunConfig(method="regular", steps=steps, **overrides)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    overrides = {k: v for k, v in overrides.items() if v != defaults[k]}  # one spelling
    points = tuple(dataclasses.replace(p, index=i) for i, p in enumerate(_BUILDERS[name](base)))
    spec: dict[str, Any] = {"steps": steps, "overrides": dict(sorted(overrides.items()))}
    if base.task != "mnist1d":  # what its "test_error" measures (MNIST-1D specs predate this)
        spec["metric"] = base.task_spec.metric
    return Sweep(name, points, spec)


def _default_steps(name: str, task: str) -> int:
    """:data:`DEFAULT_STEPS` on MNIST-1D; another task's own steps (``longer``: a quarter)."""
    if task == "mnist1d":
        return DEFAULT_STEPS[name]
    steps = int(get_task(task).defaults["steps"])
    return max(1, steps // 4) if name == "longer" else steps


def _regular(base: RunConfig, x: float = 1.0) -> Point:
    return Point("REGULAR", x, base)


def _search(base: RunConfig, **kwargs: Any) -> RunConfig:
    return base.replace(method="search", **kwargs)


def _reset_every(base: RunConfig) -> int:
    """RESET's z: a twentieth of training (100 of 2000 steps)."""
    return max(1, base.steps // 20)


def _best_search(base: RunConfig, density: float | None, **kwargs: Any) -> RunConfig:
    """SEARCH as used against the baselines: RESET every z steps."""
    return _search(base, density=density, reset_every=_reset_every(base), **kwargs)


def _rewire(base: RunConfig) -> Iterator[Point]:
    for d in DENSITIES:
        for r in REWIRE_INTERVALS:
            yield Point(f"d={d:g}", float(r), _search(base, density=d, rewire_every=r))
    yield _regular(base)


def _grad_scale(base: RunConfig) -> Iterator[Point]:
    for d in DENSITIES:
        for s in GRAD_SCALES:
            yield Point(f"d={d:g}", s, _search(base, density=d, grad_scale=s))
    yield _regular(base)


def _reset(base: RunConfig) -> Iterator[Point]:
    for d in DENSITIES:
        for z in RESET_INTERVALS:
            x = math.inf if z is None else float(z)
            yield Point(f"d={d:g}", x, _search(base, density=d, reset_every=z))
    yield _regular(base)


def _exploit(base: RunConfig) -> Iterator[Point]:
    z = _reset_every(base)
    strategies: dict[str, dict[str, Any]] = {
        "NO EXPLOIT": {}, "FIX": {"fix_at": 0.5}, "RESET": {"reset_every": z},
        "REGULARIZE": {"decay": 0.2 / z}}
    for d in DENSITIES:
        yield Point("NO EXPLORE", d, base.replace(method="reduce", density=d))
        for label, kwargs in strategies.items():
            yield Point(label, d, _search(base, density=d, **kwargs))
    yield _regular(base)


def _methods(base: RunConfig) -> Iterator[Point]:
    every = max(1, base.steps // 20)
    for d in DENSITIES:
        yield Point("SEARCH", d, _best_search(base, d))
        yield Point("LOTTERY", d, base.replace(method="lottery", density=d))
        yield Point("SET", d, base.replace(method="set", density=d, rewire_every=every))
        yield Point("RIGL", d, base.replace(method="rigl", density=d, rewire_every=every))
        yield Point("REDUCE", d, base.replace(method="reduce", density=d))
    yield _regular(base)


def _capacity(base: RunConfig) -> Iterator[Point]:
    for d in CAPACITY_DENSITIES:
        yield Point("SEARCH", d, _best_search(base, d))
        yield Point("REDUCE", d, base.replace(method="reduce", density=d))
    yield _regular(base)


def _longer(base: RunConfig) -> Iterator[Point]:
    z = _reset_every(base)
    for t in LENGTHS:
        longer = base.replace(steps=base.steps * t)
        yield _regular(longer, float(t))
        for d in DENSITIES:
            yield Point(f"d={d:g}", float(t), _search(longer, density=d, reset_every=z))


def _blocks(base: RunConfig) -> Iterator[Point]:
    hidden = {"layers": "hidden", "density": 0.5}
    yield Point("REDUCE", 0.5, base.replace(method="reduce", **hidden))
    for b in BLOCK_SIZES:
        structure = "unstructured" if b == 1 else f"block:{b}"
        yield Point(f"b={b}", 0.5, _best_search(base, structure=structure, **hidden))
    for structure in ("2:4", "2:4-2d"):
        yield Point(structure, 0.5, _best_search(base, structure=structure, **hidden))
    yield _regular(base)


_BUILDERS: dict[str, Callable[[RunConfig], Iterator[Point]]] = {
    "rewire": _rewire, "grad-scale": _grad_scale, "reset": _reset, "exploit": _exploit,
    "methods": _methods, "capacity": _capacity, "longer": _longer, "blocks": _blocks}
