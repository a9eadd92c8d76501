"""MNIST-1D generation: offline, deterministic, cached, and leaving global RNG state alone."""

from __future__ import annotations

import random
import socket

import numpy as np
import pytest
import torch

from weightscope.errors import ConfigError
from weightscope.experiments import data as data_mod
from weightscope.experiments.data import load_mnist1d


def test_default_split_shapes_and_dtypes() -> None:
    d = load_mnist1d()
    assert tuple(d.x_train.shape) == (4000, 40)
    assert tuple(d.x_test.shape) == (1000, 40)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.num_features == 40 and d.num_classes == 10
    labels = torch.cat([d.y_train, d.y_test])
    assert torch.equal(torch.bincount(labels), torch.full((10,), 500))
    assert torch.isfinite(d.x_train).all()


def test_generation_is_deterministic_and_seeded() -> None:
    data_mod._load.cache_clear()
    a = load_mnist1d(num_samples=200, seed=3)
    data_mod._load.cache_clear()
    b = load_mnist1d(num_samples=200, seed=3)
    c = load_mnist1d(num_samples=200, seed=4)
    assert a is not b
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_cached_per_arguments() -> None:
    assert load_mnist1d(num_samples=100) is load_mnist1d(num_samples=100)
    assert load_mnist1d(num_samples=100) is not load_mnist1d(num_samples=110)


def test_global_rng_state_untouched() -> None:
    data_mod._load.cache_clear()
    random.seed(123)
    np.random.seed(456)  # noqa: NPY002 -- the legacy global state is what we check
    py_before, np_before = random.getstate(), np.random.get_state()  # noqa: NPY002
    torch_before = torch.random.get_rng_state()
    load_mnist1d(num_samples=100, seed=7)
    assert random.getstate() == py_before
    np_after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(np_after[1], np_before[1]) and np_after[2:] == np_before[2:]
    assert torch.equal(torch.random.get_rng_state(), torch_before)


def test_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_mnist1d tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    data_mod._load.cache_clear()
    assert load_mnist1d(num_samples=100, seed=9).x_train.shape[0] == 80


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 105}, r"num_samples must be a positive multiple of 10.*got 105"),
        ({"num_samples": 0}, r"num_samples must be a positive multiple of 10.*got 0"),
        ({"num_samples": 100.0}, r"num_samples must be an int; got 100.0"),
        ({"seed": -1}, r"seed must be an int >= 0; got -1"),
        ({"num_samples": 10, "train_split": 0.05}, r"train_split must leave both splits"),
        ({"train_split": 1.0}, r"train_split must leave both splits.*got train_split=1.0"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_mnist1d(**kwargs)
