"""Incremental exact top-k on the CPU in about one pass per step (numba kernels).

Between two optimizer steps the threshold of the top ``k`` magnitudes moves by a few ranks.
:class:`NumbaTopk` keeps two edges ``lo <= hi`` a few ranks either side of it. One pass over
the layer puts every weight with ``|w| > hi`` in the mask, every weight with ``|w| < lo`` out
of it, and counts the former; the candidates in between are gathered and ranked, and the top
``k - #above`` of them join the mask. That is the exact top ``k`` whenever ``#above <= k <=
#above + #candidates``; when the threshold has left the band the edges are recomputed exactly
(:func:`weightscope.kernels._common.kth_largest`) and the pass repeated.

The kernels (:mod:`weightscope.sparse.topk._band_kernels`) need numba (``pip install
"weightscope[fast]"``) and plain contiguous CPU float32/float64 tensors;
:func:`~weightscope.sparse.topk.make_topk` hands everything else to
:class:`~weightscope.sparse.topk.TorchTopk`. A NaN magnitude (or an input the kernels do not
take) sends the step to :func:`weightscope.kernels.mask_topk`.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_topk
>>> w = torch.randn(300, 400)
>>> mask, mask_f = torch.zeros(300, 400, dtype=torch.bool), torch.zeros(300, 400)
>>> tracker = NumbaTopk(numel=w.numel(), density=0.25)
>>> for step in range(3):
...     w += 0.01 * torch.randn(300, 400)
...     product = tracker.update(w, mask, mask_f)  # mask * w, computed on the way
...     assert torch.equal(mask, mask_topk(w, 0.25)) and torch.equal(product, mask * w)
"""

from __future__ import annotations

import functools
import importlib.util
import math
from types import ModuleType
from typing import cast

import numpy as np
import torch
from torch.autograd.graph import increment_version

from weightscope import kernels
from weightscope.kernels._common import keep_count, kth_largest

__all__ = ["NumbaTopk", "fits_numba", "numba_available"]

_DTYPES = (torch.float32, torch.float64)


def numba_available() -> bool:
    """True when the numba kernels load.

    The first call imports numba; any failure to load it (no numba, an incompatible numpy, no
    writable cache directory) means False.
    """
    return _band_kernels() is not None


@functools.cache
def _band_kernels() -> ModuleType | None:
    if importlib.util.find_spec("numba") is None:
        return None
    try:
        from . import _band_kernels as module
    except Exception:  # numba present but unusable here: fall back, do not fail training
        return None
    return module


class NumbaTopk:
    """:class:`~weightscope.sparse.topk.IncrementalTopk` with the numba kernels (see the module).

    Parameters
    ----------
    numel : int
        Number of weights ``n`` of the layer.
    density : float
        Fraction ``d`` in (0, 1] of weights kept.
    band : float, default 0.0002
        Candidate ranks kept on each side of the threshold, as a fraction of ``n`` (at least 16).

    Notes
    -----
    Memory on the kernels' path: the product ``mask * w`` (one weight-sized buffer, which the
    forward pass uses instead of computing its own), one byte of flags per weight, and room
    for ``8 h + 4096`` candidate indices. ``rebuilds`` counts the steps whose edges had to be
    recomputed and ``fallbacks`` those sent to :func:`~weightscope.kernels.mask_topk` (NaN
    weights, more tied magnitudes at the threshold than that room, or inputs the kernels do
    not take).
    """

    releases_gil = True

    def __init__(self, numel: int, density: float, band: float = 0.0002) -> None:
        self.n = numel
        self.density = density
        self.k = keep_count(density, numel)
        self.h = max(16, round(band * numel))
        self.rebuilds = 0
        self.fallbacks = 0
        self._edges: tuple[float, float] | None = None
        self._idx = torch.empty(min(numel, 8 * self.h + 4096), dtype=torch.int64)
        self._flags = np.empty(0, dtype=np.uint8)  # allocated on the kernels' first use
        self._product = torch.empty(0)
        self._ones_known = False  # whether mask holds exactly k ones (our last write)
        self._bound: tuple | None = None  # see _views()

    def invalidate(self) -> None:
        """Forget the mask: the next :meth:`update` counts its ones again."""
        self._ones_known = False

    def update(
        self, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor
    ) -> torch.Tensor | None:
        """Write the exact top-``k`` mask of ``|w|`` into ``mask`` (bool) and ``mask_f`` (float).

        Both must have ``w``'s shape; ``mask_f`` holds ``mask`` as 1.0 / 0.0 in ``w``'s dtype
        and is updated where ``mask`` changes. ``mask`` may hold any mask before the call.

        Returns ``mask * w`` when the kernels computed it on the way, else None. The product
        lives in a buffer of this tracker that the next call overwrites (and marks modified,
        so autograd refuses a backward pass through a graph that still uses the old values).
        """
        views = self._views(w, mask, mask_f)
        done = views is not None and self._rewire(*views, self.k if self._ones_known else None)
        if views is not None:
            for written in (mask, mask_f, self._product):  # through numpy: tell torch
                increment_version(written)
        if not done:
            self.fallbacks += 1
            self._edges = None
            with torch.no_grad():
                full = kernels.mask_topk(w.detach(), self.density)
                mask.copy_(full)
                mask_f.copy_(full)
        self._ones_known = True
        return self._product if done else None

    def _views(
        self, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor
    ) -> tuple[np.ndarray, ...] | None:
        """Flat numpy views ``(w, mask as uint8, mask_f, product)`` for the kernels, or None
        when the kernels do not take these tensors. Kept from call to call while the same
        tensors (same objects, same memory) come back, as they do in training."""
        key = (w.data_ptr(), mask.data_ptr(), mask_f.data_ptr())
        cached = self._bound
        if (cached is not None and cached[0] is w and cached[1] is mask and cached[2] is mask_f
                and cached[3] == key):
            return cached[4]
        self._bound = None
        if not fits_numba(w, mask, mask_f):
            return None
        flat = w.detach().view(-1)
        if self._product.shape != w.shape or self._product.dtype != w.dtype:
            self._product = torch.empty_like(w, requires_grad=False)
            self._flags = np.empty(self.n, dtype=np.uint8)
        views = (flat.numpy(), mask.view(-1).view(torch.uint8).numpy(),
                 mask_f.view(-1).numpy(), self._product.view(-1).numpy())
        self._bound = (w, mask, mask_f, key, views)
        return views

    def _rewire(
        self, flat: np.ndarray, m: np.ndarray, mf: np.ndarray, product: np.ndarray,
        ones: int | None,
    ) -> bool:
        """Classify, collect and select; retry once with exact edges. False: use the kernel.

        ``ones`` is the number of ones in ``m`` if known.
        """
        kern = cast(ModuleType, _band_kernels())  # loaded: fits_numba() checked
        if ones is None:
            ones = kern.count_ones(m)
        for attempt in range(2):
            if self._edges is None or attempt:
                self._edges = self._exact_edges(torch.from_numpy(flat), widen=attempt > 0)
            lo, hi = self._edges
            status, ones, need, ranked = kern.sweep(flat, m, mf, self._flags, product, lo, hi,
                                                    self._idx.numpy(), self.k, ones)
            if status == 2:  # NaN
                return False
            if status == 0:
                self._edges = self._next_edges(ranked, need, lo, hi)
                return True
        return False  # even the exact edges hold more tied candidates than `out`

    def _next_edges(
        self, ranked: np.ndarray, need: int, lo: float, hi: float
    ) -> tuple[float, float]:
        """Edges ``h`` ranks either side of the new threshold.

        The threshold lies between ranks ``need`` and ``need + 1`` of the candidates
        ``ranked`` (largest first). Beyond the candidates the edges are extrapolated at the
        band's mean spacing; any edges are safe, since the next step checks them.
        """
        c, h = ranked.shape[0], self.h
        spacing = (hi - lo) / (c + 1) if lo >= 0 and math.isfinite(hi) else 0.0
        if need - 1 - h >= 0:
            hi = float(ranked[need - 1 - h])
        else:
            hi += (h + 1 - need) * spacing
        if need + h < c:
            lo = float(ranked[need + h])
        else:
            lo = max(0.0, lo - (need + h + 1 - c) * spacing)
        return lo, hi

    def _exact_edges(self, flat: torch.Tensor, widen: bool) -> tuple[float, float]:
        """The ``(k + h)``-th and ``(k - h)``-th largest magnitudes (NaN ranks lowest).

        ``widen`` (the threshold left the band) first doubles ``h``, up to ``n / 16``.
        """
        self.rebuilds += 1
        if widen:
            self.h = max(self.h, min(2 * self.h, self.n // 16))
            self._idx = torch.empty(min(self.n, 8 * self.h + 4096), dtype=torch.int64)
        hi = float(kth_largest(flat, self.k - self.h)) if self.k > self.h else math.inf
        lo = float(kth_largest(flat, self.k + self.h)) if self.k + self.h <= self.n else -1.0
        return lo, hi


def fits_numba(w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor) -> bool:
    """Whether the numba kernels load and take these tensors: plain (no subclass such as a
    sharded DTensor), on the CPU, float32/64, contiguous."""
    plain = all(type(t) is torch.Tensor for t in (w.detach(), mask, mask_f))
    return (
        plain and w.device.type == "cpu" and w.dtype in _DTYPES and mask_f.dtype == w.dtype
        and w.is_contiguous() and mask.is_contiguous() and mask_f.is_contiguous()
        and numba_available()
    )
