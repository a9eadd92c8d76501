"""2:4 semi-structured conversion: CPU behaviour here, numerics on CUDA sm80+ when present."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightscope.errors import ConfigError, StructureError
from weightscope.kernels import (
    mask_24_1d,
    mask_24_2d,
    semi_structured_available,
    semi_structured_status,
    to_semi_structured_linear,
)

needs_sm80 = pytest.mark.skipif(
    not semi_structured_available(), reason=f"semi-structured 2:4: {semi_structured_status()}"
)


def test_cpu_is_unavailable_with_a_reason():
    assert semi_structured_available("cpu") is False
    assert semi_structured_status("cpu") == (
        "unavailable: device cpu is not a CUDA device; the masked dense path is used"
    )
    assert semi_structured_status(torch.device("cpu")).startswith("unavailable")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_no_cuda_status():
    assert semi_structured_available() is False
    assert semi_structured_status() == (
        "unavailable: torch sees no CUDA device; the masked dense path is used"
    )
    assert semi_structured_available("cuda:0") is False


def test_conversion_on_cpu_is_a_config_error_and_leaves_the_layer_dense():
    layer = nn.Linear(64, 32).half()
    before = layer.weight.detach().clone()
    with pytest.raises(ConfigError, match=r"compute capability >= 8.0; unavailable: device cpu"):
        to_semi_structured_linear(layer, mask=mask_24_1d(layer.weight))
    assert type(layer.weight) is nn.Parameter and torch.equal(layer.weight, before)


def test_argument_errors():
    with pytest.raises(ConfigError, match=r"needs a torch\.nn\.Linear; got Conv2d"):
        to_semi_structured_linear(nn.Conv2d(4, 4, 3))
    layer = nn.Linear(64, 32).half()
    with pytest.raises(StructureError, match=r"at most 2 nonzeros .* shape \(32, 64\)"):
        to_semi_structured_linear(layer)
    with pytest.raises(ConfigError, match=r"mask must be a tensor of the weight's shape"):
        to_semi_structured_linear(layer, mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(StructureError, match=r"in_features divisible by 4.*\(8, 30\)"):
        to_semi_structured_linear(nn.Linear(30, 8).half())
    float_layer = nn.Linear(64, 32)
    with pytest.raises(ConfigError, match=r"float16 or bfloat16 weight.*got torch\.float32"):
        to_semi_structured_linear(float_layer, mask=mask_24_1d(float_layer.weight))


def test_two_d_masks_are_accepted_as_two_four_along_inputs():
    layer = nn.Linear(64, 32).half()
    with pytest.raises(ConfigError, match="compute capability"):  # passes the 2:4 check first
        to_semi_structured_linear(layer, mask=mask_24_2d(layer.weight))


@pytest.mark.cuda
@needs_sm80
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("structure", [mask_24_1d, mask_24_2d])
def test_cuda_numerics_match_masked_dense(dtype, structure):
    torch.manual_seed(0)
    layer = nn.Linear(256, 128).to("cuda", dtype)
    mask = structure(layer.weight)
    x = torch.randn(64, 256, device="cuda", dtype=dtype)
    expected = nn.functional.linear(x, layer.weight.detach() * mask, layer.bias.detach())
    sparse = to_semi_structured_linear(layer, mask=mask)
    assert sparse is layer and not layer.weight.requires_grad
    with torch.no_grad():
        got = layer(x)
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.cuda
@needs_sm80
def test_cuda_bad_shape_is_a_structure_error():
    layer = nn.Linear(64, 36).to("cuda", torch.float16)
    with pytest.raises(StructureError, match="out_features a multiple of"):
        to_semi_structured_linear(layer, mask=mask_24_1d(layer.weight))
