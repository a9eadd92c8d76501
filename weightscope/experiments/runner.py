"""Run a sweep's configs x seeds in parallel worker processes, storing each run as it ends.

:func:`run_sweep` skips the runs already in the sweep's results store (their config keys), so an
interrupted sweep resumes where it stopped. The remaining runs go to a pool of ``workers``
processes started with the ``spawn`` method; each worker uses one torch thread and torch's
deterministic mode (:func:`~.sparse_train.run_config`), so a run's error depends on its config
alone. With ``workers=1`` the runs execute one after another in the calling process (same
settings, same results, no process start-up). Only the parent process writes the store, one row
per finished run, under the sweep's writer lock.

Examples
--------
>>> import tempfile
>>> from weightscope.experiments.runner import run_sweep
>>> from weightscope.experiments.sweeps import get_sweep
>>> sweep = get_sweep("blocks", steps=2, num_samples=200, batch_size=16, width=16)
>>> out = tempfile.mkdtemp()
>>> report = run_sweep(sweep, out, seeds=1, workers=1)
>>> report.executed, report.skipped, run_sweep(sweep, out, seeds=1, workers=1).executed
(8, 0, 0)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from weightscope._validate import check_int
from weightscope.errors import ConfigError, NotARunError, RunNotFoundError, hint
from weightscope.store.sweep_results import SweepStore, writer_lock

from .sparse_config import RunConfig
from .sweeps import Point, Sweep

__all__ = ["SweepReport", "done_keys", "pending", "run_cost", "run_sweep"]

#: ``on_result(point, config, row, done_cost, total_cost)`` after each stored run.
OnResult = Callable[[Point, RunConfig, dict[str, Any], float, float], object]


@dataclass(frozen=True)
class SweepReport:
    """What :func:`run_sweep` did: runs executed now, runs found already done, and the total."""

    executed: int
    skipped: int
    total: int
    store: SweepStore


def run_cost(config: RunConfig) -> float:
    """Relative cost of a run for progress and scheduling: optimizer steps (LOTTERY trains
    twice).

    Examples
    --------
    >>> run_cost(RunConfig(method="lottery", steps=100))
    195.0
    """
    if config.method == "lottery":
        return float(2 * config.steps - config.rewind_step)
    return float(config.steps)


def pending(sweep: Sweep, seeds: int, done: set[str]) -> list[tuple[Point, RunConfig]]:
    """The runs of ``sweep`` x ``seeds`` whose keys are not in ``done``, in execution order
    (seed-major, the longest runs of a seed first).

    Examples
    --------
    >>> from weightscope.experiments.sweeps import get_sweep
    >>> len(pending(get_sweep("capacity"), seeds=2, done=set()))
    18
    """
    todo = [(p, c) for p, c in sweep.runs(seeds) if c.key() not in done]
    return sorted(todo, key=lambda pc: (pc[1].seed, -run_cost(pc[1])))


def done_keys(out: str | os.PathLike[str]) -> set[str]:
    """Keys of the runs already stored in the sweep directory ``out`` (empty if none)."""
    try:
        return SweepStore.open(out).keys()
    except (RunNotFoundError, NotARunError):
        return set()


def run_sweep(sweep: Sweep, out: str | os.PathLike[str], seeds: int = 3, workers: int = 2,
              on_result: OnResult | None = None) -> SweepReport:
    """Run every point of ``sweep`` for seeds ``0..seeds-1`` not yet stored in ``out``.

    Parameters
    ----------
    sweep : Sweep
        From :func:`~.sweeps.get_sweep`.
    out : path
        Sweep directory (created; ``out/results.zarr`` holds the results).
    seeds : int, default 3
        Seeds per point.
    workers : int, default 2
        Worker processes.
    on_result : callable, optional
        Called after each stored run (and once with the already-done cost, ``row={}``).

    Raises
    ------
    ConfigError
        ``seeds`` or ``workers`` < 1, or ``out`` holds another sweep or other settings.
    """
    for name, value in (("seeds", seeds), ("workers", workers)):
        check_int(value, f"{name} must be an int >= 1", fix=f"Pass e.g. {hint(name, 2)}.")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out must be a directory; '{os.fspath(out)}' is a file. Pass a new "
                          "or existing sweep directory.")
    with writer_lock(out):
        store = SweepStore.create_or_open(out, sweep.name, sweep.spec)
        runs = list(sweep.runs(seeds))
        todo = pending(sweep, seeds, store.keys())
        total = sum(run_cost(c) for _, c in runs)
        finished = total - sum(run_cost(c) for _, c in todo)
        if on_result is not None and runs:
            on_result(runs[0][0], runs[0][1], {}, finished, total)
        if todo:
            _execute(todo, store, workers, on_result, finished, total)
    return SweepReport(executed=len(todo), skipped=len(runs) - len(todo), total=len(runs),
                       store=store)


def _execute(todo: list[tuple[Point, RunConfig]], store: SweepStore, workers: int,
             on_result: OnResult | None, finished: float, total: float) -> None:
    if workers == 1:
        for point, config in todo:
            finished = _store(store, point, config, _work(config.to_json()), finished,
                              total, on_result)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                               initializer=_init_worker)
    try:
        pending: dict[Future[dict[str, Any]], tuple[Point, RunConfig]] = {
            pool.submit(_work, config.to_json()): (point, config) for point, config in todo}
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                point, config = pending.pop(future)
                finished = _store(store, point, config, future.result(), finished, total,
                                  on_result)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _store(store: SweepStore, point: Point, config: RunConfig, result: dict[str, Any],
           finished: float, total: float, on_result: OnResult | None) -> float:
    row = {**result, "key": config.key(), "point": point.index, "series": point.series,
           "x": float(point.x), "seed": config.seed, "config": config.to_json()}
    store.append(row)
    finished += run_cost(config)
    if on_result is not None:
        on_result(point, config, row, finished, total)
    return finished


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _work(config_json: str) -> dict[str, Any]:
    """Worker entry: run one config (given as JSON) and return its result as a dict."""
    from .sparse_train import run_config

    return run_config(RunConfig.from_json(config_json)).to_dict()
