"""The IncrementalTopk contract, checked with the same assertions on every implementation."""

from __future__ import annotations

import pytest
import torch

from weightscope.kernels import mask_topk
from weightscope.sparse.topk import (  # noqa: F401  (numba_available: a skipif string)
    IncrementalTopk,
    NumbaTopk,
    TorchTopk,
    numba_available,
)

IMPLEMENTATIONS = [
    pytest.param(NumbaTopk, id="numba",
                 marks=pytest.mark.skipif("not numba_available()",  # at run time, not collection
                                          reason="needs numba")),
    pytest.param(TorchTopk, id="torch"),
]
SHAPE = (96, 80)


def _masks(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(SHAPE, dtype=torch.bool), torch.zeros(SHAPE, dtype=dtype)


def _update_and_check(tracker: IncrementalTopk, w: torch.Tensor, mask: torch.Tensor,
                      mask_f: torch.Tensor, density: float) -> None:
    product = tracker.update(w, mask, mask_f)
    expected = mask_topk(w, density)
    assert torch.equal(mask, expected)
    assert torch.equal(mask_f, expected.to(mask_f.dtype))
    assert product is None or (isinstance(product, torch.Tensor)
                               and torch.equal(product, w * mask_f))


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_implements_the_protocol(cls: type) -> None:
    tracker = cls(numel=1000, density=0.1)
    assert isinstance(tracker, IncrementalTopk)
    assert (tracker.n, tracker.k) == (1000, 100)
    assert isinstance(tracker.releases_gil, bool)
    assert tracker.rebuilds == tracker.fallbacks == 0


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
@pytest.mark.parametrize("density", [0.001, 0.25, 0.9, 1.0])
def test_update_gives_the_kernels_mask_step_after_step(cls: type, density: float) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(SHAPE, generator=g)
    mask, mask_f = _masks()
    tracker = cls(w.numel(), density)
    for step in range(10):
        w = w + 0.02 * (1 + step % 3) * torch.randn(SHAPE, generator=g)
        _update_and_check(tracker, w, mask, mask_f, density)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_invalidate_makes_an_edited_mask_exact_again(cls: type) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(SHAPE, generator=g)
    mask, mask_f = _masks()
    tracker = cls(w.numel(), 0.3)
    _update_and_check(tracker, w, mask, mask_f, 0.3)
    mask.fill_(False)
    mask_f.fill_(0.0)
    tracker.invalidate()
    _update_and_check(tracker, w + 1e-3 * torch.randn(SHAPE, generator=g), mask, mask_f, 0.3)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS)
def test_ties_nan_and_float64_follow_the_kernel(cls: type) -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randint(-3, 4, SHAPE, generator=g).double()  # many ties
    mask, mask_f = _masks(torch.float64)
    tracker = cls(w.numel(), 0.25)
    for step in range(4):
        w = w + (torch.rand(SHAPE, generator=g, dtype=torch.float64) < 0.05).double()
        if step == 2:
            w[5, 7] = float("nan")
        _update_and_check(tracker, w, mask, mask_f, 0.25)
