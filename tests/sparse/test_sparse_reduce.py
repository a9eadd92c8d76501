"""REDUCE baseline: reduce_width matches the weight count of a sparse model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightscope.errors import ConfigError
from weightscope.sparse import count_sparsifiable, reduce_width, sparsify


def build_mlp(mult: float) -> nn.Module:
    width = max(1, round(512 * mult))
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def build_cnn(mult: float) -> nn.Module:
    c = max(1, round(64 * mult))
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.Conv2d(16, c, 3), nn.Conv2d(c, c, 3),
                         nn.Flatten(), nn.LazyLinear(10))


def _brute_force_best(build, names: list[str], target: float) -> float:  # type: ignore[no-untyped-def]
    """Oracle: the smallest |count - target| over a fine grid of multipliers."""
    with torch.device("meta"):
        return min(abs(count_sparsifiable(build(m / 1200), names) - target)
                   for m in range(1, 1201))


@pytest.mark.parametrize("density", [0.1, 0.25, 0.5])
def test_reduce_width_matches_the_sparse_weight_count(density: float) -> None:
    full = build_mlp(1.0)
    names = sparsify(build_mlp(1.0), density).layers
    target = density * count_sparsifiable(full, names)
    model, mult = reduce_width(build_mlp, density)
    assert 0.0 < mult < 1.0
    got = count_sparsifiable(model, names)
    assert abs(got - target) == pytest.approx(_brute_force_best(build_mlp, names, target))
    assert all(p.device.type == "cpu" for p in model.parameters())  # built for real


def test_reduce_width_counts_only_layers_of_the_default_selection() -> None:
    # the stem (in_channels 3) and the lazy head are not counted
    model, mult = reduce_width(build_cnn, 0.25)
    assert model[1].out_channels == round(64 * mult)
    full = 16 * 64 * 9 + 64 * 64 * 9
    got = 16 * model[1].out_channels * 9 + model[2].out_channels ** 2 * 9
    assert abs(got - 0.25 * full) <= 16 * 9 + 2 * 64 * 9  # within one channel step


def test_reduce_width_errors() -> None:
    with pytest.raises(ConfigError, match=r"density must be in \(0, 1\]; got 0"):
        reduce_width(build_mlp, 0)

    def shrinking(mult: float) -> nn.Module:
        layers = [nn.Linear(64, 64), nn.Linear(64, 64)] if mult > 0.5 else [nn.Linear(64, 64)]
        return nn.Sequential(*layers)

    with pytest.raises(ConfigError, match=r"must keep the layer names of build\(1.0\)"):
        reduce_width(shrinking, 0.25)
    with pytest.raises(ConfigError, match=r"no sparsifiable Linear/Conv layer"):
        reduce_width(lambda m: nn.Sequential(nn.Linear(3, 3)), 0.5)
