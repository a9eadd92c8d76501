"""mask_blocks against a loop over blocks, for Linear and Conv layouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_oracles import blocks_loop

from weightscope.errors import ConfigError, StructureError
from weightscope.kernels import mask_blocks, mask_topk


@pytest.mark.parametrize("shape", [(8, 16), (4, 8, 3, 3), (6, 6, 2)])
@pytest.mark.parametrize("b", [1, 2])
@pytest.mark.parametrize("density", [0.01, 0.3, 0.5, 1.0])
def test_matches_loop_oracle(shape, b, density):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(mask_blocks(w, b, density), blocks_loop(w, b, density))


@settings(max_examples=40, deadline=None)
@given(
    b=st.sampled_from([1, 2, 4]),
    out_blocks=st.integers(1, 4),
    in_blocks=st.integers(1, 4),
    kernel=st.sampled_from([(), (1,), (3,), (2, 2)]),
    density=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
)
def test_tie_heavy_blocks_match_oracle(b, out_blocks, in_blocks, kernel, density, seed, dtype):
    shape = (out_blocks * b, in_blocks * b, *kernel)
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(-3, 4, shape, generator=g).to(dtype)
    mask = mask_blocks(w, b, density)
    assert torch.equal(mask, blocks_loop(w, b, density))
    n_blocks = out_blocks * in_blocks * math.prod(kernel)
    assert int(mask.sum()) == max(1, round(density * n_blocks)) * b * b


def test_numpy_scalars_are_accepted():
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(6))
    assert torch.equal(mask_blocks(w, np.int64(2), np.float32(0.5)), mask_blocks(w, 2, 0.5))


def test_block_size_one_equals_topk():
    w = torch.randint(0, 3, (8, 12, 3), generator=torch.Generator().manual_seed(0)).float()
    assert torch.equal(mask_blocks(w, 1, 0.4), mask_topk(w, 0.4))


def test_blocks_are_all_or_nothing_and_nan_scores_lowest():
    w = torch.randn(8, 8, generator=torch.Generator().manual_seed(5))
    w[0:4, 0:4] = math.nan
    mask = mask_blocks(w, 4, 0.75)
    tiles = mask.view(2, 4, 2, 4).permute(0, 2, 1, 3).reshape(4, 16)
    assert tiles.all(1).tolist() == [False, True, True, True]
    assert (tiles.all(1) | ~tiles.any(1)).all()


def test_indivisible_shape_names_shape_b_and_fix():
    with pytest.raises(StructureError, match=r"b=3; got a layer of shape \(8, 16\).*divides"):
        mask_blocks(torch.randn(8, 16), 3, 0.5)
    with pytest.raises(StructureError, match=r"shape \(8, 6, 3, 3\) \(out=8, in=6\)"):
        mask_blocks(torch.randn(8, 6, 3, 3), 4, 0.5)


@pytest.mark.parametrize("b", [0, -2, 1.0, True, None])
def test_bad_block_size_is_a_config_error(b):
    with pytest.raises(ConfigError, match="block size b must be an integer >= 1"):
        mask_blocks(torch.randn(4, 4), b, 0.5)


def test_one_dimensional_weight_is_a_structure_error():
    with pytest.raises(StructureError, match=r"at least 2 dimensions.*got shape \(16,\)"):
        mask_blocks(torch.randn(16), 2, 0.5)
