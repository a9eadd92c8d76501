"""The one place that decides which incremental top-k (if any) rewires a layer.

Examples
--------
>>> import torch
>>> w, mask = torch.randn(4, 16), torch.zeros(4, 16, dtype=torch.bool)
>>> tracker = make_topk(w, mask, mask.float(), density=0.25)
>>> from weightscope.sparse.topk import numba_available
>>> type(tracker).__name__ if numba_available() else "NumbaTopk"  # no numba: None (kernel)
'NumbaTopk'
"""

from __future__ import annotations

import torch

from .numba_topk import NumbaTopk, fits_numba
from .protocol import IncrementalTopk
from .torch_topk import TorchTopk

__all__ = ["MIN_NUMEL", "make_topk"]

#: Smallest layer each implementation tracks; smaller layers call the kernel every rewire
#: (the torch tracker's fixed per-step cost outweighs a full selection on small layers).
MIN_NUMEL = {"numba": 1, "torch": 1 << 16}


def make_topk(
    w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor, density: float
) -> IncrementalTopk | None:
    """The tracker of a layer (weight ``w``, bool ``mask``, float ``mask_f``), or None.

    :class:`NumbaTopk` when numba loads and takes these tensors (plain, contiguous, CPU,
    float32/64); else :class:`TorchTopk` for layers of at least ``MIN_NUMEL["torch"]``
    weights with contiguous masks; else None: call :func:`weightscope.kernels.mask_topk`.
    """
    n = w.numel()
    if n >= MIN_NUMEL["numba"] and fits_numba(w, mask, mask_f):
        return NumbaTopk(n, density)
    if n >= MIN_NUMEL["torch"] and mask.is_contiguous() and mask_f.is_contiguous():
        return TorchTopk(n, density)
    return None
