"""Sweep definitions (the figures' axes) and the runner (resume, interruption, determinism)."""

from __future__ import annotations

import math

import pytest

from weightscope.errors import ConfigError
from weightscope.experiments.runner import pending, run_cost, run_sweep
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sweeps import SWEEPS, get_sweep
from weightscope.store.sweep_results import SweepStore

TINY = {"num_samples": 200, "batch_size": 16, "width": 16}


@pytest.mark.parametrize("name", SWEEPS)
def test_points_are_distinct_and_ordered(name: str) -> None:
    sweep = get_sweep(name)
    keys = [p.config.key() for p in sweep.points]
    assert len(set(keys)) == len(keys)  # a duplicate would be skipped as already done
    assert [p.index for p in sweep.points] == list(range(len(keys)))
    assert sum(p.series == "REGULAR" for p in sweep.points) == (4 if name == "longer" else 1)
    assert len({(p.series, p.x) for p in sweep.points}) == len(keys)


def test_figure_axes() -> None:
    def axis(name: str, series: str, field: str) -> list:
        return [getattr(p.config, field) for p in get_sweep(name).points if p.series == series]

    assert axis("rewire", "d=0.1", "rewire_every") == [1, 4, 16, 64, 256, 1024]
    assert axis("grad-scale", "d=0.25", "grad_scale") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert axis("reset", "d=0.5", "reset_every") == [1, 4, 16, 64, 256, 1024, None]
    assert [p.x for p in get_sweep("reset").points][6] == math.inf
    exploit = {p.series: p.config for p in get_sweep("exploit").points if p.x == 0.1}
    assert exploit["NO EXPLORE"].method == "reduce"
    assert (exploit["NO EXPLOIT"].fix_at, exploit["NO EXPLOIT"].reset_every,
            exploit["NO EXPLOIT"].decay) == (None, None, 0.0)
    assert (exploit["FIX"].fix_at, exploit["RESET"].reset_every,
            exploit["REGULARIZE"].decay) == (0.5, 100, 0.002)
    methods = {p.series for p in get_sweep("methods").points}
    assert methods == {"SEARCH", "LOTTERY", "SET", "RIGL", "REDUCE", "REGULAR"}
    assert axis("capacity", "SEARCH", "density") == [0.5, 0.25, 0.1, 0.05]
    assert axis("longer", "d=0.1", "steps") == [500, 1000, 2000, 4000]
    blocks = {p.series: p.config for p in get_sweep("blocks").points}
    assert [blocks[f"b={b}"].structure for b in (1, 2, 4, 8)] == [
        "unstructured", "block:2", "block:4", "block:8"]
    assert {c.layers for s, c in blocks.items() if s != "REGULAR"} == {"hidden"}
    assert blocks["2:4-2d"].density == 0.5


def test_steps_and_overrides() -> None:
    sweep = get_sweep("longer", steps=10, **TINY)
    assert sorted({p.config.steps for p in sweep.points}) == [10, 20, 40, 80]
    assert {p.config.num_samples for p in sweep.points} == {200}
    assert sweep.spec == {"steps": 10, "overrides": dict(sorted(TINY.items()))}
    with pytest.raises(ConfigError, match=r"unknown sweep 'nope'; choose one of rewire"):
        get_sweep("nope")
    with pytest.raises(ConfigError, match=r"steps must be an int >= 1; got 0"):
        get_sweep("rewire", steps=0)
    with pytest.raises(ConfigError, match=r"sweep overrides may only set .*got \['seed'\]"):
        get_sweep("rewire", seed=3)


def test_schedule_override_keys_and_spec(tmp_path) -> None:
    """Each schedule is its own sweep (spec) and its own runs (keys); the default spelled out
    is the default sweep, so cosine directories from before --schedule resume."""
    sweeps = {s: get_sweep("exploit", steps=4, schedule=s, **TINY)
              for s in ("step", "cosine", "constant")}
    assert get_sweep("exploit", steps=4, **TINY).spec == sweeps["cosine"].spec
    assert sweeps["step"].spec["overrides"]["schedule"] == "step"
    keys = [{p.config.key() for p in sw.points} for sw in sweeps.values()]
    assert all(not (a & b) for i, a in enumerate(keys) for b in keys[i + 1:])
    assert {p.config.schedule for p in sweeps["step"].points} == {"step"}
    run_sweep(get_sweep("blocks", steps=2, **TINY), tmp_path, seeds=1, workers=1)
    with pytest.raises(ConfigError, match=r"holds sweep 'blocks' run with .* Resume with the"):
        run_sweep(get_sweep("blocks", steps=2, schedule="step", **TINY), tmp_path, seeds=1,
                  workers=1)


def test_pending_order_and_cost() -> None:
    sweep = get_sweep("methods")
    todo = pending(sweep, seeds=2, done={sweep.points[0].config.key()})
    assert len(todo) == 2 * len(sweep.points) - 1
    assert [c.seed for _, c in todo] == sorted(c.seed for _, c in todo)
    assert todo[0][1].method == "lottery"  # the longest runs of a seed go first
    assert run_cost(RunConfig(method="lottery", steps=100, rewind=0.1)) == 190.0


def test_resume_after_interruption(tmp_path) -> None:
    sweep = get_sweep("capacity", steps=2, **TINY)
    seen: list[str] = []

    def stop_after_three(point, config, row, done, total) -> None:
        if row:
            seen.append(row["key"])
            if len(seen) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path, seeds=2, workers=1, on_result=stop_after_three)
    assert SweepStore.open(tmp_path).keys() == set(seen)
    report = run_sweep(sweep, tmp_path, seeds=2, workers=1)
    assert (report.executed, report.skipped, report.total) == (2 * 9 - 3, 3, 18)
    assert run_sweep(sweep, tmp_path, seeds=2, workers=1).executed == 0
    ds = SweepStore.open(tmp_path).to_dataset()
    assert sorted(ds["key"].values) == sorted(c.key() for _, c in sweep.runs(2))


def test_workers_give_the_same_errors(tmp_path) -> None:
    """Two spawned workers and the in-process path store identical errors per config."""
    sweep = get_sweep("blocks", steps=3, **TINY)
    run_sweep(sweep, tmp_path / "pool", seeds=1, workers=2)
    run_sweep(sweep, tmp_path / "inline", seeds=1, workers=1)

    def errors(path) -> dict:
        ds = SweepStore.open(path).to_dataset()
        return dict(zip(ds["key"].values, ds["test_error"].values))

    assert errors(tmp_path / "pool") == errors(tmp_path / "inline")
    assert len(errors(tmp_path / "pool")) == len(sweep.points)


def test_runner_rejects_bad_counts(tmp_path) -> None:
    sweep = get_sweep("blocks", steps=2, **TINY)
    with pytest.raises(ConfigError, match=r"seeds must be an int >= 1; got 0"):
        run_sweep(sweep, tmp_path, seeds=0)
    with pytest.raises(ConfigError, match=r"workers must be an int >= 1; got 0"):
        run_sweep(sweep, tmp_path, workers=0)
    assert not (tmp_path / "results.zarr").exists()
