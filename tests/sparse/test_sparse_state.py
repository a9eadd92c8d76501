"""LayerState: one state object per masked layer, invalidated where weights or masks change."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sparse_helpers import mlp
from torch import nn

from weightscope.kernels import mask_topk
from weightscope.sparse import Search, sparsify
from weightscope.sparse.state import LayerState
from weightscope.sparse.topk import TorchTopk


def _train_and_check(model: nn.Module, opt: torch.optim.Optimizer, steps: int,
                     dtype: torch.dtype = torch.float32) -> None:
    x = torch.randn(8, 256, generator=torch.Generator().manual_seed(0)).to(dtype)
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        for layer in (model[0], model[2]):
            assert torch.equal(layer.weight_mask, mask_topk(layer.weight, 0.1))
            expected = F.linear(x, layer.weight * layer.weight_mask, layer.bias)
            assert torch.equal(layer(x), expected)


def test_each_masked_layer_has_one_state_and_nothing_else() -> None:
    model = mlp()
    sp = sparsify(model, 0.25)
    for module in sp.modules:
        assert isinstance(module.sparse_state, LayerState)
        assert module.sparse_state.module is module
        assert not [k for k in module.__dict__ if k.startswith("_ws_")]
    sp.remove()
    assert not hasattr(model[0], "sparse_state") and type(model[0]) is nn.Linear


def test_weights_converted_after_sparsify_rebind_the_state() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 16))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sp = sparsify(model, 0.1, method=Search()).attach(opt)
    _train_and_check(model, opt, 3)
    model.double()  # same Parameters, new storage and dtype: the state sees it
    _train_and_check(model, opt, 3, torch.float64)
    assert model[0].sparse_state.float_mask().dtype == torch.float64
    model.bfloat16()  # numba does not take bfloat16: the factory is asked again
    _train_and_check(model, opt, 2, torch.bfloat16)
    assert isinstance(sp.topk_tracker(model[0]), TorchTopk)
    assert sp.topk_tracker(model[2]) is None  # small layer: the kernel


def test_loading_a_checkpoint_invalidates_the_state() -> None:
    model = mlp(widths=(256, 256, 16))
    sp = sparsify(model, 0.25)
    state = model[0].sparse_state
    tracker = sp.topk_tracker(model[0])
    other = mlp(seed=1, widths=(256, 256, 16))
    sparsify(other, 0.25)
    model.load_state_dict(other.state_dict())
    assert state._tracker is None and state._mask_f is None  # explicitly dropped
    assert tracker is not None and sp.topk_tracker(model[0]) is not tracker  # made anew
    torch.testing.assert_close(state.float_mask(), other[0].weight_mask.float())


def test_mask_changed_keeps_the_float_mask_in_sync() -> None:
    lin = nn.Linear(16, 4)
    sparsify(lin, 0.5)
    state = lin.sparse_state
    assert torch.equal(state.float_mask(), lin.weight_mask.float())
    with torch.no_grad():
        lin.weight_mask.logical_not_()
    state.mask_changed()
    assert torch.equal(state.float_mask(), lin.weight_mask.float())
