"""RunConfig: validation messages, resolved defaults, canonical JSON and keys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscope.errors import ConfigError, StructureError
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sweeps import SWEEPS, get_sweep


def test_resolved_defaults() -> None:
    assert RunConfig(method="regular").density == 1.0
    assert RunConfig(method="search").density == 0.25
    assert RunConfig(method="search").rewire_every == 1
    assert RunConfig(method="set").rewire_every == 100
    assert RunConfig(method="rigl", rewire_every=7).rewire_every == 7
    assert RunConfig(method="search", structure="2:4").density == 0.5
    assert RunConfig(method="lottery", density=0.1, steps=200).rewind_step == 10
    assert RunConfig().lr == 0.1  # the SGD preset
    assert RunConfig(recipe="adamw").lr == 1e-3


def test_one_spelling_one_key() -> None:
    a = RunConfig(method="search", density=0.5, grad_scale=1, lr=0.1)
    b = RunConfig(method="search", density=0.5, grad_scale=1.0)
    assert a == b and a.key() == b.key() and a.to_json() == b.to_json()
    assert RunConfig(method="regular", density=1.0).key() == RunConfig(method="regular").key()
    assert a.key() != a.replace(seed=1).key()


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_config_round_trips(name: str) -> None:
    for point in get_sweep(name).points:
        config = point.config
        again = RunConfig.from_json(config.to_json())
        assert again == config and again.key() == config.key()
        assert RunConfig.from_dict(json.loads(config.to_json())) == config


@settings(max_examples=40, deadline=None)
@given(method=st.sampled_from(["search", "static", "lottery", "set", "rigl", "reduce"]),
       density=st.floats(0.01, 1.0), seed=st.integers(0, 10**6),
       steps=st.integers(1, 10**5))
def test_round_trip_property(method: str, density: float, seed: int, steps: int) -> None:
    config = RunConfig(method=method, density=density, seed=seed, steps=steps)
    assert RunConfig.from_json(config.to_json()) == config
    assert RunConfig.from_json(config.to_json()).key() == config.key()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "dense"}, ConfigError, r"method must be one of \('regular', 'reduce'"),
        ({"method": "reduce", "grad_scale": 0.5}, ConfigError,
         r"grad_scale applies only to method 'search'; got grad_scale=0.5 with method='reduce'"),
        ({"method": "regular", "density": 0.5}, ConfigError,
         r"density applies only to method .*'reduce'.*; got density=0.5 with method='regular'"),
        ({"method": "search", "drop_fraction": 0.5}, ConfigError,
         r"drop_fraction applies only to method 'rigl' or 'set'"),
        ({"method": "set", "structure": "2:4"}, ConfigError, r"structure applies only to"),
        ({"method": "search", "density": 1.5}, ConfigError, r"density must be in \(0, 1\]"),
        ({"method": "search", "structure": "2:4", "density": 0.25}, ConfigError,
         r"keeps exactly half of the weights, so density must be 0.5; got 0.25"),
        ({"method": "search", "structure": "blocks"}, StructureError, r"unknown structure"),
        ({"method": "search", "reset_every": 0}, ConfigError, r"reset_every must be an integer"),
        ({"method": "search", "fix_at": 5000}, ConfigError, r"fix_at must be <= total_steps"),
        ({"method": "lottery", "rewind": 1.0}, ConfigError,
         r"rewind must be a fraction of steps in \[0, 1\); got 1.0"),
        ({"arch": "resnet"}, ConfigError, r"arch must be one of \('mlp', 'cnn'\)"),
        ({"layers": "all"}, ConfigError, r"layers must be one of \('default', 'hidden'\)"),
        ({"width": 0}, ConfigError, r"width must be an int >= 1; got 0"),
        ({"num_samples": 105}, ConfigError, r"num_samples must be a multiple of 10"),
        ({"num_samples": 100}, ConfigError, r"train split holds a batch of 128; got 100"),
        ({"steps": 0}, ConfigError, r"steps must be an int >= 1; got 0"),
        ({"schedule": "linear"}, ConfigError, r"schedule must be one of"),
    ],
)
def test_bad_configs(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RunConfig(**kwargs)


def test_from_dict_and_json_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown RunConfig fields \['dneisty'\]"):
        RunConfig.from_dict({"dneisty": 0.5})
    with pytest.raises(ConfigError, match=r"must be a JSON object; got invalid JSON"):
        RunConfig.from_json("{")
    with pytest.raises(ConfigError, match=r"must be a JSON object; got list"):
        RunConfig.from_json("[1]")
