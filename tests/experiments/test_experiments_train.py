"""Training loop: config validation, determinism, hooks, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from weightscope.errors import ConfigError
from weightscope.experiments.data import load_mnist1d
from weightscope.experiments.models import cnn, mlp
from weightscope.experiments.train import TrainConfig, evaluate, make_optimizer, train


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_mnist1d()


def test_presets() -> None:
    sgd = TrainConfig(recipe="sgd")
    assert (sgd.lr, sgd.weight_decay, sgd.momentum) == (0.1, 5e-4, 0.9)
    adamw = TrainConfig()
    assert (adamw.recipe, adamw.lr, adamw.weight_decay) == ("adamw", 1e-3, 0.05)
    assert TrainConfig(recipe="sgd", lr=0.01).lr == 0.01
    assert TrainConfig(weight_decay=0.0).weight_decay == 0.0


def test_optimizers_follow_recipe() -> None:
    params = list(mlp(width=8).parameters())
    opt = make_optimizer(params, TrainConfig(recipe="sgd"))
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.9, 5e-4)
    opt = make_optimizer(params, TrainConfig(recipe="adamw"))
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.AdamW)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (1e-3, 0.05, (0.9, 0.999))


def test_cosine_schedule() -> None:
    cfg = TrainConfig(steps=10, schedule="cosine", lr=0.2)
    lrs = [cfg.lr_at(s) for s in range(1, 11)]
    assert lrs[0] == 0.2 and lrs == sorted(lrs, reverse=True) and lrs[-1] > 0
    assert math.isclose(cfg.lr_at(6), 0.1)
    assert TrainConfig(steps=10).lr_at(7) == 1e-3


@given(epoch_steps=st.integers(1, 30), lr=st.floats(1e-4, 1.0))
def test_step_schedule_matches_the_papers_epochs(epoch_steps: int, lr: float) -> None:
    """Oracle: 90 epochs of ``epoch_steps`` steps; linear warm-up over the first 5 epochs, then
    x0.1 from epochs 30, 60 and 80 on (the paper's appendix C)."""
    cfg = TrainConfig(recipe="sgd", lr=lr, steps=90 * epoch_steps, schedule="step")
    assert cfg.warmup_steps == 5 * epoch_steps
    for step in range(1, cfg.steps + 1):
        epoch = (step - 1) // epoch_steps
        factor = 0.1 ** sum(epoch >= e for e in (30, 60, 80))
        warm = min(1.0, step / (5 * epoch_steps))
        assert math.isclose(cfg.lr_at(step), lr * warm * factor, rel_tol=1e-12)


def test_step_schedule_warmup_rounding_and_training(data) -> None:  # type: ignore[no-untyped-def]
    assert [TrainConfig(steps=n).warmup_steps for n in (1, 8, 9, 27, 2000)] == [1, 1, 1, 2, 111]
    cfg = TrainConfig(recipe="sgd", steps=9, schedule="step", batch_size=64)
    assert [round(cfg.lr_at(s), 12) for s in range(1, 10)] == [
        0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.0001]
    lrs: list[float] = []

    def spy(opt: torch.optim.Optimizer) -> None:
        opt.register_step_pre_hook(lambda o, a, k: lrs.append(o.param_groups[0]["lr"]))

    train(mlp(width=8, seed=0), data, cfg, on_optimizer=spy)
    assert lrs == [cfg.lr_at(s) for s in range(1, 10)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recipe": "adam"}, r"recipe must be one of \('adamw', 'sgd'\); got 'adam'"),
        ({"lr": 0.0}, r"lr must be a finite number in \(0.0, inf\); got 0.0"),
        ({"lr": float("nan")}, r"lr must be a finite number.*got nan"),
        ({"weight_decay": -1e-4}, r"weight_decay must be a finite number in \[0.0, inf\)"),
        ({"momentum": 1.0}, r"momentum must be a finite number in \[0.0, 1.0\); got 1.0"),
        ({"steps": 0}, r"steps must be an int >= 1; got 0"),
        ({"steps": 10.0}, r"steps must be an int >= 1; got 10.0"),
        ({"batch_size": True}, r"batch_size must be an int >= 1; got True"),
        ({"seed": -3}, r"seed must be an int >= 0; got -3"),
        ({"eval_every": -1}, r"eval_every must be an int >= 0; got -1"),
        ({"schedule": "linear"},
         r"schedule must be one of \('constant', 'cosine', 'step'\); got 'linear'"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TrainConfig().lr = 0.5  # type: ignore[misc]


def test_batch_larger_than_train_split(data) -> None:  # type: ignore[no-untyped-def]
    match = r"batch_size must be <= the 4000 train samples; got 5000"
    with pytest.raises(ConfigError, match=match):
        train(mlp(width=8, seed=0), data, TrainConfig(steps=1, batch_size=5000))


@pytest.mark.parametrize("recipe", ["adamw", "sgd"])
@pytest.mark.parametrize("builder", [mlp, cnn], ids=["mlp", "cnn"])
def test_same_seed_gives_identical_weights(data, recipe: str, builder) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(recipe=recipe, steps=40, batch_size=64, seed=5, schedule="cosine")
    runs = []
    for _ in range(2):
        model = builder(width=16, seed=3)
        train(model, data, cfg)
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    other = builder(width=16, seed=3)
    train(other, data, TrainConfig(recipe=recipe, steps=40, batch_size=64, seed=6))
    assert not torch.equal(next(other.parameters()), runs[0][0])


def test_global_rng_untouched(data) -> None:  # type: ignore[no-untyped-def]
    state = torch.random.get_rng_state()
    train(mlp(width=8, seed=0), data, TrainConfig(steps=5))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_hooks_order_and_arguments(data) -> None:  # type: ignore[no-untyped-def]
    events: list[object] = []
    model = mlp(width=8, seed=0)
    before = model[0].weight.detach().clone()

    def on_optimizer(opt: torch.optim.Optimizer) -> None:
        events.append(("opt", type(opt).__name__))

    def on_step(step: int, loss: torch.Tensor) -> None:
        assert loss.ndim == 0 and not loss.requires_grad
        changed = not torch.equal(model[0].weight, before)  # called after the optimizer step
        events.append((step, changed))

    result = train(model, data, TrainConfig(steps=3, eval_every=2), on_step=on_step,
                   on_optimizer=on_optimizer)
    assert events == [("opt", "AdamW"), (1, True), (2, True), (3, True)]
    assert result.steps == 3 and len(result.evals) == 1 and result.evals[0][0] == 2
    assert result.wall_time > 0


def test_epochs_cover_every_sample_once() -> None:
    # 100-sample data set, batch 30: 3 batches per epoch (10 samples dropped), then a new order.
    small = load_mnist1d(num_samples=120, train_split=100 / 120)
    seen: list[torch.Tensor] = []

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(40, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:
                seen.append(x.detach().clone())
            return self.lin(x)

    train(Probe(), small, TrainConfig(steps=4, batch_size=30))
    rows = {tuple(r.tolist()) for r in torch.cat(seen[:3])}
    assert len(seen) == 4 and len(rows) == 90
    assert rows <= {tuple(r.tolist()) for r in small.x_train}


@pytest.mark.parametrize("recipe", ["adamw", "sgd"])
def test_short_run_beats_chance(data, recipe: str) -> None:  # type: ignore[no-untyped-def]
    model = mlp(width=64, seed=0)
    chance_loss, _ = evaluate(model, data.x_test, data.y_test)
    result = train(model, data, TrainConfig(recipe=recipe, steps=300))
    assert result.test_error < 0.6  # chance is 0.9
    assert result.train_loss < chance_loss
    assert result.test_error == evaluate(model, data.x_test, data.y_test)[1]
