"""The straight-through masking Function and the masked layers' forward/backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from weightscope.sparse import MaskedWeight, masked_weight
from weightscope.sparse.layers import to_dense, to_sparse


def _mask(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < 0.4


def test_gradcheck_exact_gradient_when_grad_scale_is_zero() -> None:
    # s = 0 is the true gradient of m * w, so finite differences must agree (float64).
    w = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    m = _mask((5, 7))
    assert gradcheck(lambda w: MaskedWeight.apply(w, m, 0.0, None), (w,))


def test_gradcheck_identity_when_every_weight_participates() -> None:
    # With m all True, m * w = w and the STE backward g*m + s*g*(1-m) = g is exact for any s.
    w = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    m = torch.ones(4, 3, dtype=torch.bool)
    for s in (0.0, 0.3, 1.0):
        assert gradcheck(lambda w, s=s: MaskedWeight.apply(w, m, s, None), (w,))


@pytest.mark.parametrize("grad_scale", [0.5, 1.0])
def test_gradcheck_input_and_bias_of_masked_layers(grad_scale: float) -> None:
    # Input/bias gradients go through m * w exactly, whatever the weight's STE scale.
    lin = nn.Linear(6, 4).double()
    to_sparse(lin, _mask((4, 6)), grad_scale)
    lin.weight.requires_grad_(False)
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x, b: F.linear(x, lin.masked_weight(), b), (x, lin.bias))
    conv = nn.Conv2d(2, 3, 3).double()
    to_sparse(conv, _mask((3, 2, 3, 3), seed=1), grad_scale)
    xc = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert gradcheck(conv, (xc,))


@pytest.mark.parametrize("grad_scale", [0.0, 0.25, 1.0])
def test_weight_gradient_is_g_on_p_and_scaled_g_on_n(grad_scale: float) -> None:
    w = torch.randn(6, 8, requires_grad=True)
    m = _mask((6, 8))
    g = torch.randn(6, 8)  # d loss / d (m * w) for loss = sum(g * masked)
    (g * masked_weight(w, m, grad_scale)).sum().backward()
    torch.testing.assert_close(w.grad[m], g[m], rtol=0, atol=0)
    torch.testing.assert_close(w.grad[~m], grad_scale * g[~m], rtol=0, atol=0)


def test_forward_is_mask_times_weight_and_stash_accumulates_dense_grad() -> None:
    w = torch.randn(3, 4, requires_grad=True)
    m = _mask((3, 4))
    stash = torch.zeros(3, 4)
    g = torch.randn(3, 4)
    out = masked_weight(w, m, 0.0, stash)
    torch.testing.assert_close(out, w.detach() * m, rtol=0, atol=0)
    (g * out).sum().backward()
    (g * masked_weight(w, m, 0.0, stash)).sum().backward()
    torch.testing.assert_close(stash, 2 * g, rtol=0, atol=0)  # dense, also where m is False
    assert bool((w.grad[~m] == 0).all())


@pytest.mark.parametrize(
    ("layer", "x"),
    [
        (nn.Linear(16, 5), torch.randn(2, 16)),
        (nn.Conv1d(16, 4, 3, padding=1), torch.randn(2, 16, 9)),
        (nn.Conv2d(16, 4, 3, stride=2), torch.randn(2, 16, 7, 7)),
        (nn.Conv3d(16, 2, 2), torch.randn(1, 16, 3, 3, 3)),
    ],
)
def test_masked_layers_compute_with_m_times_w(layer: nn.Module, x: torch.Tensor) -> None:
    m = _mask(tuple(layer.weight.shape))
    dense = type(layer)
    expected_weight = layer.weight.detach() * m
    to_sparse(layer, m, 1.0)
    assert isinstance(layer, dense) and type(layer).__name__ == f"Sparse{dense.__name__}"
    y = layer(x)
    with torch.no_grad():
        layer.weight.copy_(expected_weight)
    to_dense(layer)
    assert type(layer) is dense
    torch.testing.assert_close(y, layer(x))
