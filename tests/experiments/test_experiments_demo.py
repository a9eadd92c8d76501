"""Demo presets and run_family's contract with a Recorder-like hook."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weightscope_cli.demo import Recipe

from weightscope.errors import ConfigError
from weightscope.experiments.demo import (
    DEFAULT_RECIPE,
    DEMO_NOTES,
    DEMO_PRESETS,
    DemoConfig,
    RunHook,
    RunSpec,
    demo_config,
    run_family,
)
from weightscope.experiments.models import build, count_weights

TINY = {"steps": 15, "every": 5, "n_models": 2, "num_samples": 200}


class FakeRecorder:
    """Records the calls run_family makes, in order."""

    def __init__(self, spec: RunSpec, model: torch.nn.Module, log: list) -> None:
        self.spec, self.model, self.log = spec, model, log
        log.append(("make", spec.name))

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        params = {id(p) for g in optimizer.param_groups for p in g["params"]}
        assert params == {id(p) for p in self.model.parameters()}
        self.log.append(("attach", self.spec.name))
        optimizer.register_step_post_hook(lambda *a: self.log.append(("step", self.spec.name)))

    def close(self) -> None:
        self.log.append(("close", self.spec.name))


class ManagedRecorder(FakeRecorder):
    def __enter__(self) -> ManagedRecorder:
        self.log.append(("enter", self.spec.name))
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.log.append(("exit", self.spec.name, kind))


def test_presets() -> None:
    default, adamw, contrast = (demo_config(r) for r in ("sgd-wd5e-3", "adamw", "sgd-wd5e-4"))
    assert demo_config() == default and DEFAULT_RECIPE == "sgd-wd5e-3"
    train = default.train_config
    assert (train.recipe, train.lr, train.weight_decay, train.momentum, train.schedule) == (
        "sgd", 0.1, 5e-3, 0.9, "constant")
    assert (contrast.recipe, contrast.train_config.weight_decay) == ("sgd", 5e-4)
    assert (adamw.recipe, adamw.train_config.lr, adamw.train_config.weight_decay) == (
        "adamw", 1e-3, 0.05)
    family = {(c.arch, c.n_models, c.steps, c.every) for c in (default, adamw, contrast)}
    assert family == {("mlp", 4, 4000, 40)}
    assert demo_config("adamw", steps=400).steps == 400
    assert demo_config(schedule="cosine").train_config.schedule == "cosine"
    assert list(DEMO_PRESETS) == ["sgd-wd5e-3", "sgd-wd5e-4", "adamw"]
    assert [r.value for r in Recipe] == list(DEMO_PRESETS) == list(DEMO_NOTES)  # CLI, notes
    spec = demo_config().specs("out")[0]
    assert isinstance(FakeRecorder(spec, build("mlp", spec.width), []), RunHook)


def test_specs(tmp_path: Path) -> None:
    specs = demo_config().specs(tmp_path)
    assert [s.width for s in specs] == [120, 176, 216, 256]
    assert [s.n_weights for s in specs] == [20400, 39776, 57456, 78336]
    assert [s.n_weights for s in specs] == [count_weights(build("mlp", s.width)) for s in specs]
    assert specs[0].name == "mlp-w120" and specs[0].path == tmp_path / "mlp-w120.zarr"
    assert all(s.every == demo_config().every for s in specs)


def test_run_family_drives_the_hooks(tmp_path: Path) -> None:
    log: list = []
    seen_progress: list = []
    out = tmp_path / "new" / "dir"
    runs = run_family(DemoConfig(**TINY), out, lambda spec, model: FakeRecorder(spec, model, log),
                      progress=lambda spec, step: seen_progress.append((spec.width, step)))
    assert out.is_dir()
    names = [r.spec.name for r in runs]
    assert names == ["mlp-w120", "mlp-w256"]
    expected = []
    for name in names:
        expected += [("make", name), ("attach", name)] + [("step", name)] * 15 + [("close", name)]
    assert log == expected
    assert seen_progress == [(w, s) for w in (120, 256) for s in range(1, 16)]
    assert all(r.result.steps == 15 for r in runs)


def test_context_manager_hook_sees_failure(tmp_path: Path) -> None:
    log: list = []

    def progress(spec: RunSpec, step: int) -> None:
        if step == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_family(DemoConfig(**TINY), tmp_path,
                   lambda spec, model: ManagedRecorder(spec, model, log), progress=progress)
    assert log[:2] == [("make", "mlp-w120"), ("enter", "mlp-w120")]
    assert log[-1] == ("exit", "mlp-w120", RuntimeError)
    assert ("close", "mlp-w120") not in log


def test_same_config_same_weights(tmp_path: Path) -> None:
    trained: list[list[torch.nn.Module]] = [[], []]
    for kept in trained:

        def make(spec: RunSpec, model: torch.nn.Module, kept: list = kept) -> FakeRecorder:
            kept.append(model)
            return FakeRecorder(spec, model, [])

        run_family(DemoConfig(**TINY), tmp_path, make)
    for a, b in zip(*trained, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_threads_set_while_training_and_restored(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    during: set[int] = set()
    run_family(DemoConfig(**TINY, threads=1), tmp_path,
               progress=lambda spec, step: during.add(torch.get_num_threads()))
    assert during == {1} and torch.get_num_threads() == before


def test_no_hook_creates_nothing(tmp_path: Path) -> None:
    runs = run_family(DemoConfig(**TINY), tmp_path / "absent")
    assert not (tmp_path / "absent").exists() and len(runs) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recipe": "lion"}, r"recipe must be one of \('adamw', 'sgd'\); got 'lion'"),
        ({"arch": "vit"}, r"arch must be one of \('mlp', 'cnn'\); got 'vit'"),
        ({"every": 0}, r"every must be an int >= 1.*; got 0"),
        ({"steps": 50, "every": 20}, r"steps must be >= 3 \* every.*steps=50, every=20"),
        ({"n_models": 1}, r"n must be >= 2.*got n=1"),
        ({"batch_size": 0}, r"batch_size must be an int >= 1; got 0"),
        ({"threads": 0}, r"threads must be None or an int >= 1; got 0"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DemoConfig(**kwargs)


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match=r"recipe must be one of \('sgd-wd5e-3', 'sgd-wd5e-4', "
                                          r"'adamw'\); got 'x'. Pass e.g. recipe='sgd-wd5e-3'"):
        demo_config("x")
    with pytest.raises(ConfigError, match=r"schedule must be one of"):
        demo_config(schedule="linear")
