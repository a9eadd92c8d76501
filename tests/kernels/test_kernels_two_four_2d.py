"""mask_24_2d against brute force over all 90 patterns on every 4x4 block."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_oracles import all_patterns, blocks_of, brute_2d

from weightscope.errors import StructureError
from weightscope.kernels import mask_24_2d, patterns_24_2d

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
PATTERNS = patterns_24_2d()


def test_patterns_are_the_90_transposable_ones():
    assert PATTERNS.shape == (90, 4, 4) and PATTERNS.dtype == torch.bool
    listed = [tuple(p.flatten().tolist()) for p in PATTERNS]
    assert len(set(listed)) == 90
    assert set(listed) == set(all_patterns())


def check_against_brute_force(w: torch.Tensor, exact: bool) -> None:
    mask = mask_24_2d(w)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    for flags, (best, first, mags) in zip(blocks_of(mask), brute_2d(w, PATTERNS), strict=True):
        block = torch.tensor(flags).view(4, 4)
        assert block.sum(0).tolist() == [2] * 4 and block.sum(1).tolist() == [2] * 4
        kept = sum(m for m, keep in zip(mags, flags, strict=True) if keep)
        if exact:  # integer-valued: sums are exact, tie rule is the lowest pattern index
            assert kept == best
            assert flags == PATTERNS[first].flatten().tolist()
        else:
            assert kept == pytest.approx(best, rel=1e-6, abs=1e-30)


@pytest.mark.parametrize("shape", [(8, 16), (8, 16, 3, 3), (4, 4, 1, 2)])
def test_random_weights_match_brute_force(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(11))
    check_against_brute_force(w, exact=False)


@pytest.mark.parametrize("shape", [(8, 16), (8, 16, 3, 3)])
@pytest.mark.parametrize("levels", [1, 3])
def test_tie_heavy_weights_match_brute_force_and_tie_rule(shape, levels):
    g = torch.Generator().manual_seed(levels)
    w = torch.randint(0, levels + 1, shape, generator=g) * (2 * torch.randint(0, 2, shape) - 1)
    check_against_brute_force(w.float(), exact=True)


def test_all_equal_block_takes_pattern_zero():
    assert torch.equal(mask_24_2d(torch.ones(4, 4)), PATTERNS[0])
    assert torch.equal(mask_24_2d(torch.zeros(4, 4)), PATTERNS[0])


def test_conv_blocks_are_per_kernel_position():
    w = torch.randn(8, 12, 3, 2, generator=torch.Generator().manual_seed(4))
    mask = mask_24_2d(w)
    for i in range(3):
        for j in range(2):
            assert torch.equal(mask[:, :, i, j], mask_24_2d(w[:, :, i, j].contiguous()))


def test_nan_counts_as_zero_and_inf_is_kept():
    w = torch.arange(1.0, 17.0).view(4, 4)
    w[0, 3], w[1, 1] = math.nan, math.inf
    mask = mask_24_2d(w)
    zeroed = mask_24_2d(torch.nan_to_num(w, nan=0.0, posinf=1e30))
    assert torch.equal(mask, zeroed) and bool(mask[1, 1])


def matmul_brute_force(w: torch.Tensor) -> torch.Tensor:
    """Vectorized oracle: score all 90 patterns per block in float64, first optimal index."""
    out_dim, in_dim = w.shape[:2]
    grid = (out_dim // 4, 4, in_dim // 4, 4, -1)
    mags = w.abs().double().reshape(grid).permute(0, 2, 4, 1, 3)
    sums = mags.reshape(-1, 16) @ PATTERNS.view(90, 16).double().t()
    first = (sums == sums.max(1, keepdim=True).values).double().argmax(1)
    best = PATTERNS.view(90, 16)[first].view(*mags.shape)
    return best.permute(0, 3, 1, 4, 2).reshape(w.shape)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("shape", [(96, 2048), (36, 16, 3, 3), (20, 8, 5)])
def test_large_weights_match_matmul_brute_force(shape, chunked, request):
    # integer weights make float64 pattern sums exact, so ties must follow pattern order
    if chunked:  # 4096-element chunks: several chunks and a partial last one
        request.getfixturevalue("small_chunks")
    g = torch.Generator().manual_seed(9)
    w = torch.randint(-3, 4, shape, generator=g).float()
    assert torch.equal(mask_24_2d(w), matmul_brute_force(w))


@settings(max_examples=40, deadline=None)
@given(
    out_blocks=st.integers(1, 3),
    in_blocks=st.integers(1, 3),
    kernel=st.sampled_from([(), (1,), (2,), (2, 2)]),
    dtype=st.sampled_from(DTYPES),
    levels=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_properties(out_blocks, in_blocks, kernel, dtype, levels, seed):
    shape = (4 * out_blocks, 4 * in_blocks, *kernel)
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(-levels, levels + 1, shape, generator=g).to(dtype)
    mask = mask_24_2d(w)
    check_against_brute_force(w, exact=True)
    assert torch.equal(mask_24_2d(w * mask), mask)  # idempotent on the masked weight
    if dtype != torch.float32:
        assert torch.equal(mask, mask_24_2d(w.float()))


def test_indivisible_shapes_are_structure_errors():
    with pytest.raises(StructureError, match=r"got a layer of shape \(6, 16\) \(out=6, in=16\)"):
        mask_24_2d(torch.randn(6, 16))
    with pytest.raises(StructureError, match=r"\(8, 6, 3, 3\) \(out=8, in=6\).*mask_24_1d"):
        mask_24_2d(torch.randn(8, 6, 3, 3))
    with pytest.raises(StructureError, match="at least 2 dimensions"):
        mask_24_2d(torch.randn(16))
