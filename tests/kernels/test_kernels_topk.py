"""mask_topk against a sort-in-Python oracle, plus its tie rule, NaN rule and errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_oracles import topk_loop

from weightscope.errors import ConfigError
from weightscope.kernels import mask_topk

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (8, 16), (4, 3, 3, 3)])
@pytest.mark.parametrize("density", [0.01, 0.25, 0.5, 0.9, 1.0])
def test_matches_loop_oracle(shape, dtype, density):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    mask = mask_topk(w, density)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    assert torch.equal(mask, topk_loop(w, density))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    density=st.floats(0.001, 1.0),
    levels=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_tie_heavy_inputs_match_oracle(n, density, levels, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(-levels, levels + 1, (n,), generator=g).float()
    mask = mask_topk(w, density)
    assert int(mask.sum()) == max(1, round(density * n))
    assert torch.equal(mask, topk_loop(w, density))


def test_scalar_weight_is_kept():
    assert mask_topk(torch.tensor(-2.0), 0.1).tolist() is True


def test_ties_lower_flat_index_wins():
    mask = mask_topk(torch.ones(2, 5), 0.3)
    assert mask.flatten().tolist() == [True, True, True] + [False] * 7


def test_count_uses_python_round():
    # round(0.5 * 5) == 2 (banker's rounding), round(0.3 * 5) == 2, and at least one is kept
    assert int(mask_topk(torch.randn(5), 0.5).sum()) == 2
    assert int(mask_topk(torch.randn(5), 0.3).sum()) == 2
    assert int(mask_topk(torch.randn(5), 0.01).sum()) == 1


def test_nan_ranks_below_every_number_and_inf_above():
    w = torch.tensor([math.nan, 0.0, -math.inf, 1.0, math.nan])
    assert mask_topk(w, 0.4).tolist() == [False, False, True, True, False]
    assert mask_topk(w, 0.8).tolist() == [True, True, True, True, False]


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("density", [0.5, 0.1, 0.001, 0.999])
def test_large_tensor_with_ties_matches_stable_sort(density):
    # more elements than the direct-selection limit: exercises the sampled bracket
    g = torch.Generator().manual_seed(3)
    w = torch.randint(0, 50, (300_001,), generator=g).float() * torch.sign(torch.randn(300_001))
    k = max(1, round(density * w.numel()))
    order = torch.sort(w.abs(), descending=True, stable=True).indices[:k]
    expected = torch.zeros(w.numel(), dtype=torch.bool)
    expected[order] = True
    assert torch.equal(mask_topk(w, density), expected)


@pytest.mark.usefixtures("small_chunks")
def test_large_constant_tensor_keeps_first_indices():
    mask = mask_topk(torch.zeros(1 << 18), 0.25)
    assert int(mask.sum()) == 1 << 16 and bool(mask[: 1 << 16].all())


@pytest.mark.parametrize("density", [0, -0.1, 1.5, math.nan, math.inf, True, "0.5", None])
def test_bad_density_is_a_config_error(density):
    with pytest.raises(ConfigError, match=r"mask_topk: density must be in \(0, 1\]; got"):
        mask_topk(torch.randn(4), density)


def test_bad_weight_is_a_config_error():
    with pytest.raises(ConfigError, match=r"needs a floating weight.*got dtype torch\.int64"):
        mask_topk(torch.arange(4), 0.5)
    with pytest.raises(ConfigError, match=r"needs a torch\.Tensor weight; got list"):
        mask_topk([1.0, 2.0], 0.5)
    with pytest.raises(ConfigError, match="at least one element"):
        mask_topk(torch.empty(0, 3), 0.5)
