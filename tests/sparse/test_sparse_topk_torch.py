"""TorchTopk gives exactly the kernel's mask, step after step."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from weightscope.kernels import mask_topk
from weightscope.sparse import Search, sparsify
from weightscope.sparse.layers import float_mask
from weightscope.sparse.topk import TorchTopk
from weightscope.sparse.topk import numba_topk as numba_module


def _walk(
    shape: tuple[int, int], density: float, steps: int, seed: int, ties: bool, scale: float
) -> TorchTopk:
    """Random walk of a weight; assert tracker == kernel after every step."""
    g = torch.Generator().manual_seed(seed)
    if ties:
        w = torch.randint(-4, 5, shape, generator=g).float()
    else:
        w = torch.randn(shape, generator=g)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask_f = torch.zeros(shape)
    tracker = TorchTopk(w.numel(), density)
    for step in range(steps):
        if ties:
            jump = torch.randint(-1, 2, shape, generator=g).float()
            w = w + jump * (torch.rand(shape, generator=g) < 0.05)
        else:
            w = w + scale * (1 + step % 3) * torch.randn(shape, generator=g)
        tracker.update(w, mask, mask_f)
        expected = mask_topk(w, density)
        assert torch.equal(mask, expected), f"step {step}: {int((mask ^ expected).sum())} wrong"
        assert torch.equal(mask_f, expected.float())
    return tracker


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 64),
    cols=st.sampled_from([16, 48, 100, 256]),
    density=st.sampled_from([1e-4, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
    scale=st.sampled_from([1e-4, 1e-2, 0.3]),
)
def test_tracker_matches_kernel_on_random_walks(
    rows: int, cols: int, density: float, seed: int, ties: bool, scale: float
) -> None:
    _walk((rows, cols), density, steps=8, seed=seed, ties=ties, scale=scale)


def test_tracker_uses_its_fast_path_on_slow_drift() -> None:
    tracker = _walk((256, 256), 0.25, steps=20, seed=0, ties=False, scale=1e-4)
    assert tracker.rebuilds <= 3 and tracker.fallbacks == 0  # not a disguised full sort


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_tracker_handles_non_finite_weights_like_the_kernel(bad: float) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(64, 128, generator=g)
    mask, mask_f = torch.zeros(64, 128, dtype=torch.bool), torch.zeros(64, 128)
    tracker = TorchTopk(w.numel(), 0.25)
    for step in range(6):
        w = w + 0.01 * torch.randn(64, 128, generator=g)
        w[3, 7] = bad if step in (2, 3) else 0.5
        tracker.update(w, mask, mask_f)
        assert torch.equal(mask, mask_topk(w, 0.25)), step


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_tracker_supports_other_float_dtypes(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randn(32, 256, generator=g).to(dtype)
    mask, mask_f = torch.zeros(32, 256, dtype=torch.bool), torch.zeros(32, 256, dtype=dtype)
    tracker = TorchTopk(w.numel(), 0.3)
    for _ in range(5):
        w = w + (0.05 * torch.randn(32, 256, generator=g)).to(dtype)
        tracker.update(w, mask, mask_f)
        assert torch.equal(mask, mask_topk(w, 0.3))


def test_tracker_rewrites_masks_after_invalidate() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(64, 64, generator=g)
    mask, mask_f = torch.zeros(64, 64, dtype=torch.bool), torch.zeros(64, 64)
    tracker = TorchTopk(w.numel(), 0.25)
    tracker.update(w, mask, mask_f)
    mask.fill_(True)
    mask_f.fill_(1.0)
    tracker.invalidate()
    tracker.update(w, mask, mask_f)
    assert torch.equal(mask, mask_topk(w, 0.25)) and torch.equal(mask_f, mask.float())


def test_search_without_numba_tracks_large_layers_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba_module, "_band_kernels", lambda: None)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    sp = sparsify(model, 0.1, method=Search()).attach(opt)
    assert isinstance(sp.topk_tracker(model[0]), TorchTopk)  # 65536 weights: incremental
    assert sp.topk_tracker(model[2]) is None  # small layer: the kernel
    x = torch.randn(64, 256)
    for _ in range(8):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        for layer in (model[0], model[2]):
            assert torch.equal(layer.weight_mask, mask_topk(layer.weight, 0.1))
            assert torch.equal(float_mask(layer), layer.weight_mask.float())


def test_float_mask_follows_in_place_changes_of_the_bool_mask() -> None:
    lin = nn.Linear(16, 4)
    sparsify(lin, 0.5)
    x = torch.randn(3, 16)
    lin(x)
    lin.weight_mask.fill_(False)  # a user edit: the cached float copy must not be used
    torch.testing.assert_close(lin(x), lin.bias.expand(3, 4))
