"""Incremental exact top-k masks for SEARCH's every-step rewiring of unstructured layers.

:class:`IncrementalTopk` is the interface; :class:`NumbaTopk` (numba kernels, CPU) and
:class:`TorchTopk` (torch ops, any device) implement it, and :func:`make_topk` alone decides
which one a layer gets (or none: the kernel :func:`weightscope.kernels.mask_topk`). Every
implementation gives exactly the kernel's mask.
"""

from __future__ import annotations

from .factory import MIN_NUMEL, make_topk
from .numba_topk import NumbaTopk, numba_available
from .protocol import IncrementalTopk
from .torch_topk import TorchTopk

__all__ = ["MIN_NUMEL", "IncrementalTopk", "NumbaTopk", "TorchTopk", "make_topk",
           "numba_available"]
