"""mask_24_1d against a per-group loop, and its invariants."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_oracles import one_d_loop

from weightscope.errors import StructureError
from weightscope.kernels import mask_24_1d

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def groups(t: torch.Tensor) -> torch.Tensor:
    """(n_groups, 4) view of the input-dimension groups of a (out, in, *kernel) tensor."""
    flat = t.reshape(t.shape[0], t.shape[1] // 4, 4, -1)
    return flat.permute(0, 1, 3, 2).reshape(-1, 4)


@pytest.mark.parametrize("shape", [(8, 16), (8, 16, 3, 3), (3, 4, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_loop_oracle(shape, dtype):
    g = torch.Generator().manual_seed(0)
    for w in (torch.randn(shape, generator=g), torch.randint(0, 4, shape, generator=g)):
        w = w.to(dtype)
        assert torch.equal(mask_24_1d(w), one_d_loop(w))


def test_ties_lower_input_index_wins_and_nan_ranks_last():
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0, math.nan, 0.0, math.nan, -0.0]])
    assert mask_24_1d(w).int().tolist() == [[1, 1, 0, 0, 0, 1, 0, 1]]


@pytest.mark.usefixtures("small_chunks")
def test_many_chunks_match_oracle_on_a_slice():
    g = torch.Generator().manual_seed(1)
    w = torch.randint(-2, 3, (301, 64), generator=g).float()  # 64 rows per chunk, 5 rest
    mask = mask_24_1d(w)
    assert bool((groups(mask).sum(1) == 2).all())
    assert torch.equal(mask[250:], one_d_loop(w[250:]))
    conv = torch.randn(37, 16, 3, 3, generator=g)  # 28 rows per chunk
    assert torch.equal(mask_24_1d(conv), one_d_loop(conv))


@settings(max_examples=60, deadline=None)
@given(
    out_dim=st.integers(1, 6),
    in_groups=st.integers(1, 5),
    kernel=st.sampled_from([(), (1,), (3,), (2, 3)]),
    dtype=st.sampled_from(DTYPES),
    levels=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_properties(out_dim, in_groups, kernel, dtype, levels, seed):
    shape = (out_dim, 4 * in_groups, *kernel)
    w = torch.randint(-levels, levels + 1, shape, generator=torch.Generator().manual_seed(seed))
    w = w.to(dtype)
    mask = mask_24_1d(w)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    mags, keep = groups(w.abs().double()), groups(mask)
    assert bool((keep.sum(1) == 2).all())
    kept_min = mags.masked_fill(~keep, math.inf).min(1).values
    dropped_max = mags.masked_fill(keep, -math.inf).max(1).values
    assert bool((kept_min >= dropped_max).all())  # kept dominate dropped in every group
    assert torch.equal(mask_24_1d(w * mask), mask)  # idempotent on the masked weight
    assert torch.equal(mask, one_d_loop(w))


def test_indivisible_input_dimension_is_a_structure_error():
    with pytest.raises(StructureError, match=r"dim 1\) divisible by 4; got .*\(8, 18\) \(in=18\)"):
        mask_24_1d(torch.randn(8, 18))
    with pytest.raises(StructureError, match=r"shape \(4, 6, 3, 3\).*pad its input dimension"):
        mask_24_1d(torch.randn(4, 6, 3, 3))
    with pytest.raises(StructureError, match="at least 2 dimensions"):
        mask_24_1d(torch.randn(8))
