"""The interface of an incremental exact top-k: one layer's mask, updated step after step.

Examples
--------
>>> from weightscope.sparse.topk import IncrementalTopk, TorchTopk
>>> isinstance(TorchTopk(numel=100, density=0.1), IncrementalTopk)
True
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["IncrementalTopk"]


@runtime_checkable
class IncrementalTopk(Protocol):
    """Exact top-``k`` of ``|w|`` of one layer, ``k = max(1, round(d * n))``, kept in place.

    The mask equals :func:`weightscope.kernels.mask_topk`'s (ties: lower flat index wins; NaN
    ranks lowest). An implementation may trust that ``mask`` and ``mask_f`` still hold what its
    last :meth:`update` wrote unless :meth:`invalidate` was called since.

    Attributes
    ----------
    n, k : int
        Weights of the layer and weights kept.
    releases_gil : bool
        Whether :meth:`update` runs without the GIL (two layers can then be rewired at once).
    rebuilds, fallbacks : int
        Counts of the slow paths (exact restarts, steps handed to the kernel).
    """

    n: int
    k: int
    releases_gil: bool
    rebuilds: int
    fallbacks: int

    def update(
        self, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor
    ) -> torch.Tensor | None:
        """Write the top-``k`` mask of ``|w|`` into ``mask`` (bool) and ``mask_f`` (w's dtype).

        Returns ``mask * w`` when it was computed on the way (a buffer of the tracker that the
        next call overwrites and marks modified), else None.
        """
        ...

    def invalidate(self) -> None:
        """Forget what the tracker knows of the mask: the next update starts from scratch."""
        ...
