"""Mask kernels: which weights of a layer participate, for each sparsity structure.

Every kernel takes a weight tensor and returns a bool mask of the same shape and device
(True = kept). They never modify the weight and never record autograd history.

- :func:`mask_topk`: unstructured, the ``max(1, round(density * numel))`` largest ``|w|``.
- :func:`mask_blocks`: ``b x b`` blocks over ``(out, in)`` scored by max ``|w|``.
- :func:`mask_24_1d`: 2 of every 4 consecutive weights along the input dimension.
- :func:`mask_24_2d`: transposable 2:4, the best of the 90 patterns in every 4x4 block.
- :mod:`weightscope.kernels.semi_structured`: torch's 2:4 sparse kernels on CUDA sm80+.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_24_1d
>>> mask_24_1d(torch.tensor([[1.0, -4.0, 3.0, 2.0]])).tolist()
[[False, True, True, False]]
"""

from weightscope.kernels._patterns_24 import patterns_24_2d
from weightscope.kernels.blocks import mask_blocks
from weightscope.kernels.semi_structured import (
    semi_structured_available,
    semi_structured_status,
    to_semi_structured_linear,
)
from weightscope.kernels.topk import mask_topk
from weightscope.kernels.two_four import mask_24_1d
from weightscope.kernels.two_four_2d import mask_24_2d

__all__ = [
    "mask_24_1d",
    "mask_24_2d",
    "mask_blocks",
    "mask_topk",
    "patterns_24_2d",
    "semi_structured_available",
    "semi_structured_status",
    "to_semi_structured_linear",
]
