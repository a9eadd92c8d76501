"""run_config: determinism, pinned errors, REDUCE weight counts, the LOTTERY workflow."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import weightscope.experiments.sparse_train as sparse_train
from weightscope.experiments.models import build, count_weights
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sparse_train import _ResumedSchedule, build_model, run_config
from weightscope.experiments.train import TrainConfig
from weightscope.sparse import select_layers

TINY = {"steps": 100, "num_samples": 1000, "batch_size": 32, "width": 16}


def test_same_seed_same_error_and_pinned() -> None:
    config = RunConfig(method="search", density=0.25, reset_every=5, **TINY)
    first, second = run_config(config), run_config(config)
    assert (first.test_error, first.train_loss) == (second.test_error, second.train_loss)
    assert first.test_error == pytest.approx(0.695, abs=1e-6)  # 139 of 200 test samples
    assert run_config(config.replace(seed=1)).test_error != first.test_error


def test_threads_and_determinism_restored() -> None:
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    run_config(RunConfig(method="regular", **TINY))
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


@pytest.mark.parametrize("method", ["regular", "reduce", "search", "static", "lottery", "set",
                                    "rigl"])
def test_every_method_runs(method: str) -> None:
    config = RunConfig(method=method, **({} if method == "regular" else {"density": 0.5}),
                       **TINY)
    result = run_config(config)
    assert 0.0 <= result.test_error <= 1.0 and math.isfinite(result.train_loss)
    expected_steps = 2 * 100 - config.rewind_step if method == "lottery" else 100
    assert result.steps == expected_steps and result.cpu_s > 0 and result.wall_s > 0


def _selected_sizes(config: RunConfig) -> list[int]:
    model = build(config.arch, config.width)
    return [m.weight.numel() for _, m in select_layers(model, None, None)]


@pytest.mark.parametrize("layers", ["default", "hidden"])
@pytest.mark.parametrize("density", [0.5, 0.1])
def test_reduce_matches_participating_weights(layers: str, density: float) -> None:
    reduce = RunConfig(method="reduce", density=density, layers=layers)
    sizes = _selected_sizes(reduce)
    participating = (density * sum(sizes) if layers == "default"
                     else density * sum(sizes[:-1]) + sizes[-1])
    names = {name for name, _ in select_layers(build("cnn", 32), None, None)}

    def counted(model: torch.nn.Module) -> int:
        return sum(m.weight.numel() for n, m in model.named_modules() if n in names)

    best = min(abs(counted(build("cnn", w)) - participating) for w in range(1, 33))  # oracle
    assert abs(counted(build_model(reduce)) - participating) == pytest.approx(best)


def test_search_counts_participating_weights() -> None:
    config = RunConfig(method="search", density=0.25, **TINY)
    sizes = _selected_sizes(config)
    first_layer = count_weights(build("cnn", 16)) - sum(sizes)
    expected = first_layer + sum(max(1, round(0.25 * n)) for n in sizes)
    assert run_config(config).n_weights == expected


def test_resumed_schedule_continues_the_cosine() -> None:
    full = TrainConfig(steps=100, schedule="cosine")
    resumed = _ResumedSchedule(steps=80, schedule="cosine", offset=20, horizon=100)
    assert [resumed.lr_at(s) for s in (1, 40, 80)] == [full.lr_at(s) for s in (21, 60, 100)]
    flat = _ResumedSchedule(steps=80, offset=20, horizon=100)
    assert flat.lr_at(5) == TrainConfig().lr


def test_lottery_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense run for all steps; masks from its final weights; weights rewound to step eps;
    sparse retraining for steps - eps with the schedule resumed at eps."""
    config = RunConfig(method="lottery", density=0.25, rewind=0.25, **TINY)
    calls: list[dict] = []
    real_train = sparse_train.train

    def spy(model, data, cfg, on_step=None, on_optimizer=None):
        record: dict = {"cfg": cfg, "start": copy.deepcopy(model.state_dict()), "states": {}}
        calls.append(record)

        def hook(step, loss):
            record["states"][step] = copy.deepcopy(model.state_dict())
            if on_step is not None:
                on_step(step, loss)

        result = real_train(model, data, cfg, on_step=hook, on_optimizer=on_optimizer)
        record["end"] = copy.deepcopy(model.state_dict())
        return result

    monkeypatch.setattr(sparse_train, "train", spy)
    run_config(config)
    dense, sparse = calls
    eps = config.rewind_step
    assert (dense["cfg"].steps, sparse["cfg"].steps, eps) == (100, 75, 25)
    assert sparse["cfg"].lr_at(1) == dense["cfg"].lr_at(eps + 1)
    for name, value in dense["states"][eps].items():  # rewound to step eps (masked weights
        start = sparse["start"][name]               # start at m * w_eps)
        mask = sparse["start"].get(f"{name}_mask")
        expected = value if mask is None else value * mask
        assert torch.equal(start, expected), name
    for name, _ in select_layers(build("cnn", 16), None, None):
        final = dense["end"][f"{name}.weight"].abs().flatten()
        mask = sparse["start"][f"{name}.weight_mask"].flatten()
        k = max(1, round(0.25 * final.numel()))
        assert int(mask.sum()) == k
        assert final[mask].min() >= final[~mask].max()  # top-k of the trained weights
