"""RunResult.explored_fraction / flip_rate against a loop over every step's masks, NaN for
dense runs, and the sweep results store keeping them (old stores still open)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import zarr

import weightscope.experiments.sparse_train as sparse_train
from weightscope.experiments.runner import run_sweep
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sparse_train import run_config
from weightscope.experiments.sweeps import get_sweep
from weightscope.store.sweep_results import COLUMNS, OPTIONAL_COLUMNS, SweepStore

SHORT = {"steps": 12, "num_samples": 400, "batch_size": 32, "width": 16}


def _masks(model: torch.nn.Module) -> list[torch.Tensor]:
    return [b.detach().clone().flatten() for n, b in model.named_buffers()
            if n.endswith("weight_mask")]


def _oracle(per_step: list[list[torch.Tensor]]) -> tuple[float, float]:
    """Explored fraction and mean flip rate from the masks at the start and after each step."""
    ever = [m.clone() for m in per_step[0]]
    rates = []
    for before, after in itertools.pairwise(per_step):
        flips = sum(int((a != b).sum()) for a, b in zip(after, before))
        rates.append(flips / sum(int(a.sum()) for a in after))
        ever = [e | a for e, a in zip(ever, after)]
    return sum(int(e.sum()) for e in ever) / sum(e.numel() for e in ever), float(np.mean(rates))


@pytest.mark.parametrize("config", [
    RunConfig(method="search", density=0.25, **SHORT),
    RunConfig(method="set", density=0.25, rewire_every=3, **SHORT),
    RunConfig(method="rigl", density=0.25, rewire_every=3, **SHORT),
    RunConfig(method="lottery", density=0.25, rewind=0.5, **SHORT),
], ids=lambda c: c.method)
def test_summary_equals_a_loop_over_the_masks(monkeypatch: pytest.MonkeyPatch,
                                              config: RunConfig) -> None:
    seen: list[list[torch.Tensor]] = []
    real_train = sparse_train.train

    def spy(model, data, cfg, on_step=None, on_optimizer=None):
        seen.clear()  # LOTTERY: only the sparse retraining (the last call) has masks
        seen.append(_masks(model))

        def hook(step, loss):
            seen.append(_masks(model))
            if on_step is not None:
                on_step(step, loss)

        return real_train(model, data, cfg, on_step=hook, on_optimizer=on_optimizer)

    monkeypatch.setattr(sparse_train, "train", spy)
    result = run_config(config)
    fraction, rate = _oracle(seen)
    assert result.explored_fraction == pytest.approx(fraction, rel=1e-12)
    assert result.flip_rate == pytest.approx(rate, rel=1e-12)
    if config.method in ("search", "set", "rigl"):
        assert result.flip_rate > 0 and result.explored_fraction > 0.25


def test_static_explores_nothing_and_dense_runs_are_nan() -> None:
    static = run_config(RunConfig(method="static", density=0.25, **SHORT))
    search = run_config(RunConfig(method="search", density=0.25, **SHORT))
    assert static.flip_rate == 0.0
    assert static.explored_fraction == pytest.approx(0.25, abs=2e-3)  # per-layer rounding
    assert search.explored_fraction > static.explored_fraction
    for method in ("regular", "reduce"):
        extra = {} if method == "regular" else {"density": 0.25}
        result = run_config(RunConfig(method=method, **extra, **SHORT)).to_dict()
        assert math.isnan(result["explored_fraction"]) and math.isnan(result["flip_rate"])


def _row(i: int, **extra: float) -> dict:
    return {"key": f"k{i}", "point": 0, "series": "s", "x": 1.0, "seed": i, "test_error": 0.5,
            "train_loss": 0.5, "n_weights": 10, "steps": 10, "wall_s": 1.0, "cpu_s": 1.0,
            "config": "{}", **extra}


def test_sweep_store_keeps_them_and_old_stores_open(tmp_path) -> None:
    store = SweepStore.create_or_open(tmp_path, "methods", {})
    store.append(_row(0))  # a store written before the columns existed
    assert not any(col in zarr.open_group(tmp_path / "results.zarr") for col in OPTIONAL_COLUMNS)
    ds = SweepStore.open(tmp_path).to_dataset()
    assert np.isnan(ds["explored_fraction"].values).all() and ds.sizes["run"] == 1
    store = SweepStore.create_or_open(tmp_path, "methods", {})  # resumed by the new code
    store.append(_row(1, explored_fraction=0.375, flip_rate=0.125))
    store.append(_row(2))
    ds = SweepStore.open(tmp_path).to_dataset()
    assert np.array_equal(ds["explored_fraction"].values, [np.nan, 0.375, np.nan], equal_nan=True)
    assert np.array_equal(ds["flip_rate"].values, [np.nan, 0.125, np.nan], equal_nan=True)
    assert set(COLUMNS) <= set(ds.data_vars) | set(ds.coords)


def test_a_sweep_stores_the_summary(tmp_path) -> None:
    sweep = get_sweep("blocks", steps=2, num_samples=200, batch_size=16, width=16)
    report = run_sweep(sweep, tmp_path, seeds=1, workers=1)
    ds = report.store.to_dataset()
    sparse = np.array([RunConfig.from_json(c).sparse for c in ds["config"].values])
    assert sparse.any() and not sparse.all()  # SEARCH, and REGULAR / REDUCE
    assert (ds["explored_fraction"].values[sparse] > 0).all()
    assert (ds["flip_rate"].values[sparse] >= 0).all()
    assert np.isnan(ds["explored_fraction"].values[~sparse]).all()
