"""Model builders, weight counts and the 1/4..1 width family."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightscope.errors import ConfigError
from weightscope.experiments.models import (
    DEFAULT_WIDTH,
    build,
    cnn,
    count_weights,
    mlp,
    model_family,
)


def _brute_count(model: nn.Module) -> int:
    total = 0
    for module in model.modules():
        if type(module) in (nn.Linear, nn.Conv1d):
            total += module.weight.numel()
    return total


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (mlp(), 40 * 256 + 256 * 256 + 256 * 10),  # 78,336
        (mlp(width=120), 40 * 120 + 120 * 120 + 120 * 10),  # 20,400
        (mlp(width=16, depth=3), 40 * 16 + 2 * 16 * 16 + 16 * 10),
        (cnn(), 64 * 5 + 2 * 64 * 64 * 3 + 64 * 10 * 10),  # 31,296
        (cnn(width=32), 32 * 5 + 2 * 32 * 32 * 3 + 32 * 10 * 10),  # 9,504
    ],
)
def test_count_weights(model: nn.Module, expected: int) -> None:
    assert count_weights(model) == expected == _brute_count(model)


def test_count_weights_ignores_biases_and_norms() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Embedding(5, 4))
    assert count_weights(model) == 12


@pytest.mark.parametrize("width", [16, 48, 64])
def test_cnn_forward_shape_and_sparse_friendly_inputs(width: int) -> None:
    model = cnn(width=width)
    assert tuple(model(torch.randn(3, 40)).shape) == (3, 10)
    weighted = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d)]
    in_dims = [m.in_channels if isinstance(m, nn.Conv1d) else m.in_features for m in weighted]
    assert in_dims[0] == 1
    assert all(d % 16 == 0 for d in in_dims[1:])


def test_mlp_hidden_inputs_divisible_by_16() -> None:
    layers = [m for m in mlp() if isinstance(m, nn.Linear)]
    assert [m.in_features for m in layers] == [40, 256, 256]
    assert [m.out_features for m in layers] == [256, 256, 10]


def test_seeded_build_is_reproducible_and_keeps_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b, c = build("mlp", seed=1), build("mlp", seed=1), build("mlp", seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a[0].weight, c[0].weight)


@pytest.mark.parametrize(
    ("arch", "widths", "counts"),
    [
        ("mlp", (120, 176, 216, 256), (20400, 39776, 57456, 78336)),
        ("cnn", (32, 40, 56, 64), (9504, 13800, 24696, 31296)),
    ],
)
def test_family_pinned(arch: str, widths: tuple, counts: tuple) -> None:
    assert model_family(arch) == widths
    assert tuple(count_weights(build(arch, w)) for w in widths) == counts


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_family_spans_quarter_to_full(arch: str, n: int) -> None:
    widths = model_family(arch, n)
    counts = [count_weights(build(arch, w)) for w in widths]
    assert len(widths) == n and widths[-1] == DEFAULT_WIDTH[arch]
    assert counts == sorted(set(counts))
    assert abs(counts[0] / counts[-1] - 0.25) < 0.06
    targets = [0.25 + 0.75 * i / (n - 1) for i in range(n)]
    for count, target in zip(counts, targets, strict=True):
        assert abs(count / counts[-1] - target) < 0.07


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mlp(width=0), r"width must be an int >= 1; got 0"),
        (lambda: mlp(depth=1.5), r"depth must be an int >= 1; got 1.5"),
        (lambda: build("resnet"), r"arch must be one of \('mlp', 'cnn'\); got 'resnet'"),
        (lambda: model_family("mlp", n=1), r"n must be >= 2.*got n=1"),
        (lambda: model_family("mlp", n=40), r"gives repeated widths"),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()
