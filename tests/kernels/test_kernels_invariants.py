"""Contract shared by every mask kernel: bool mask, same shape/device, input untouched, no
autograd, all float dtypes, non-contiguous inputs."""

from __future__ import annotations

import pytest
import torch

from weightscope.errors import ConfigError
from weightscope.kernels import mask_24_1d, mask_24_2d, mask_blocks, mask_topk

KERNELS = {
    "topk": lambda w: mask_topk(w, 0.3),
    "blocks": lambda w: mask_blocks(w, 2, 0.3),
    "24_1d": mask_24_1d,
    "24_2d": mask_24_2d,
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(8, 16), (8, 8, 3, 3)])
def test_mask_contract(name, dtype, shape):
    w = torch.randn(shape, dtype=dtype).requires_grad_(True)
    before = w.detach().clone()
    mask = KERNELS[name](w)
    assert mask.dtype == torch.bool and mask.shape == w.shape and mask.device == w.device
    assert not mask.requires_grad and mask.grad_fn is None
    assert torch.equal(w.detach(), before)


@pytest.mark.parametrize("name", KERNELS)
def test_non_contiguous_input_gives_the_same_mask(name):
    base = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    w = base.t()  # (8, 16) view, not contiguous
    assert not w.is_contiguous()
    assert torch.equal(KERNELS[name](w), KERNELS[name](w.contiguous()))


@pytest.mark.parametrize("name", KERNELS)
def test_integer_weight_is_a_config_error(name):
    with pytest.raises(ConfigError, match="needs a floating weight"):
        KERNELS[name](torch.ones(8, 16, dtype=torch.int32))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", KERNELS)
def test_cuda_mask_equals_cpu_mask(name):
    g = torch.Generator().manual_seed(1)
    w = torch.randint(-3, 4, (64, 256, 3), generator=g).float()  # exact sums, tie-heavy
    mask = KERNELS[name](w.cuda())
    assert mask.device.type == "cuda"
    assert torch.equal(mask.cpu(), KERNELS[name](w))
