"""Training-thread work of the Recorder: copy snapshots out, and measure exact distance.

Both run right after an optimizer step, on the model's device, and allocate nothing per step:
:class:`Capture` copies the recorded elements of every parameter into one host row (pinned and
non-blocking on CUDA), :class:`DistanceTracker` adds ``sum |w(s) - w(s-1)|`` per parameter
over all of its elements, keeping one copy of the previous weights.

Examples
--------
>>> import torch, numpy as np
>>> from torch import nn
>>> from weightscope.record.selection import select_params
>>> model = nn.Linear(3, 2)
>>> sel = select_params(model)
>>> with torch.no_grad():
...     _ = model.weight.fill_(0.0)
>>> dist = DistanceTracker(sel)
>>> with torch.no_grad():
...     _ = model.weight.fill_(0.5)
>>> row = torch.zeros(1, dtype=torch.float64)
>>> dist.update(row)
>>> float(row[0])
3.0
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import torch

from ..errors import ShapeChangedError
from ..kernels._jit import jit_module
from ..store import Layout
from .selection import Selected

__all__ = ["Capture", "DistanceTracker", "distance_step", "effective_weight", "mask_of"]

_KERNEL_DTYPES = (torch.float32, torch.float64)


def mask_of(sel: Selected) -> torch.Tensor | None:
    """The sparse mask buffer of a parameter (``<attr>_mask`` on its module), if any."""
    mask = getattr(sel.module, f"{sel.attr}_mask", None)
    return mask if isinstance(mask, torch.Tensor) else None


def effective_weight(sel: Selected, out: torch.Tensor | None = None) -> torch.Tensor:
    """The weight the forward pass uses: ``mask * w`` for sparse layers, ``w`` otherwise."""
    w = sel.tensor.detach()
    mask = mask_of(sel)
    if mask is None:
        return w
    return torch.mul(w, mask, out=out) if out is not None else w * mask


class Capture:
    """Copy the recorded elements of the selected parameters into host rows.

    Parameters
    ----------
    selected : sequence of Selected
        Recorded parameters, in store order.
    layout : Layout
        Their packing along ``weight`` (which elements, at which offsets).
    """

    def __init__(self, selected: Sequence[Selected], layout: Layout) -> None:
        self.selected = list(selected)
        self.layout = layout
        self.offsets = layout.offsets.tolist()
        self.shapes = [tuple(s) for s in layout.shapes]
        self.device = self.selected[0].tensor.device
        self.non_blocking = self.device.type == "cuda"
        self.index = [None if layout.is_full(i) else torch.as_tensor(ix, device=self.device)
                      for i, ix in enumerate(layout.indices)]
        self.has_mask = any(mask_of(s) is not None for s in self.selected)

    def check_shapes(self) -> None:
        """Raise :class:`ShapeChangedError` if a parameter no longer has its recorded shape."""
        for sel, shape in zip(self.selected, self.shapes):
            now = tuple(sel.tensor.shape)
            if now != shape:
                raise ShapeChangedError(
                    f"parameter '{sel.name}' changed shape from {shape} to {now} during "
                    "recording; a run records fixed shapes. Close this Recorder and start a new "
                    "run for the new shape."
                )

    @torch.no_grad()
    def copy_into(self, w_row: torch.Tensor, mask_row: torch.Tensor | None = None) -> None:
        """Copy the current weights (and masks) into host rows ``w_row`` / ``mask_row``."""
        for i, sel in enumerate(self.selected):
            lo, hi = self.offsets[i], self.offsets[i + 1]
            self._copy(sel.tensor.detach(), i, w_row[lo:hi])
            if mask_row is not None:
                mask = mask_of(sel)
                if mask is None:
                    mask_row[lo:hi] = True
                else:
                    self._copy(mask, i, mask_row[lo:hi])

    def _copy(self, src: torch.Tensor, i: int, dst: torch.Tensor) -> None:
        flat = src.reshape(-1)
        index = self.index[i]
        if index is None:
            dst.copy_(flat, non_blocking=self.non_blocking)
        elif flat.device.type == "cpu" and flat.dtype == dst.dtype:
            torch.index_select(flat, 0, index, out=dst)
        else:
            dst.copy_(flat.index_select(0, index), non_blocking=self.non_blocking)


class DistanceTracker:
    """Exact per-step distance ``sum |w(s) - w(s-1)|`` per parameter, over all its elements.

    For sparse layers (a ``weight_mask`` buffer next to the weight) the distance is of the
    effective weights ``mask * w``. One copy of the previous (effective) weights is kept on
    the parameters' device; :func:`distance_step` does the work.
    """

    #: Elements summed in float32 before the float64 accumulation (torch path).
    ROW = 1024

    def __init__(self, selected: Sequence[Selected]) -> None:
        self.selected = list(selected)
        self.prev = [effective_weight(s).clone(memory_format=torch.contiguous_format)
                     for s in self.selected]
        self.scratch = [torch.empty_like(p) if mask_of(s) is not None else None
                        for s, p in zip(self.selected, self.prev)]

    def reset(self) -> None:
        """Forget the previous weights: the next update measures from the current ones."""
        with torch.no_grad():
            for sel, prev, tmp in zip(self.selected, self.prev, self.scratch):
                prev.copy_(effective_weight(sel, out=tmp))

    @torch.no_grad()
    def update(self, out: torch.Tensor) -> None:
        """Write this step's distance per parameter into ``out`` (float64, one per param)."""
        norms = [distance_step(sel.tensor.detach(), prev, mask_of(sel), tmp)
                 for sel, prev, tmp in zip(self.selected, self.prev, self.scratch)]
        torch.stack([n.to(out.device, non_blocking=True) for n in norms], out=out)


@torch.no_grad()
def distance_step(cur: torch.Tensor, prev: torch.Tensor, mask: torch.Tensor | None = None,
                  scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``sum |mask * cur - prev|`` (a float64 scalar tensor) and store ``mask * cur``
    in ``prev``.

    ``prev`` is contiguous with ``cur``'s shape and dtype; ``scratch`` (needed with a mask)
    is a tensor like ``prev``. On the CPU with numba (``weightscope[fast]``) this is one fused
    pass summing exact float64 differences; elsewhere four torch passes (difference in place,
    absolute value, sum in float32 rows of :attr:`DistanceTracker.ROW` added in float64,
    copy), with a relative error of ~3e-8 against a float64 oracle.

    Examples
    --------
    >>> import torch
    >>> prev = torch.zeros(3)
    >>> float(distance_step(torch.tensor([1.0, -2.0, 0.5]), prev)), prev.tolist()
    (3.5, [1.0, -2.0, 0.5])
    """
    kern = _distance_kernels() if _kernel_fits(cur, prev, mask) else None
    if kern is not None:
        flat, last = cur.view(-1).numpy(), prev.view(-1).numpy()
        if mask is None:
            total = kern.absdiff_swap(flat, last)
        else:
            total = kern.masked_absdiff_swap(flat, mask.view(-1).view(torch.uint8).numpy(), last)
        return torch.tensor(total, dtype=torch.float64)
    eff = cur if mask is None else torch.mul(cur, mask, out=scratch)
    torch.sub(eff, prev, out=prev).abs_()
    total = abs_sum(prev)
    prev.copy_(eff)
    return total


def _distance_kernels() -> ModuleType | None:
    return jit_module("weightscope.record._distance_kernels")


def _kernel_fits(cur: torch.Tensor, prev: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether the numba kernels take these: plain contiguous CPU tensors, float32/64."""
    tensors = (cur, prev) if mask is None else (cur, prev, mask)
    return (
        all(type(t) is torch.Tensor and t.device.type == "cpu" and t.is_contiguous()
            and t.numel() == cur.numel() for t in tensors)
        and cur.dtype in _KERNEL_DTYPES and prev.dtype == cur.dtype
        and (mask is None or mask.dtype == torch.bool)
    )


def abs_sum(t: torch.Tensor, row: int = DistanceTracker.ROW) -> torch.Tensor:
    """Sum of a contiguous non-negative tensor: float32 rows of ``row``, float64 across rows."""
    flat = t.view(-1)
    k = flat.numel() - flat.numel() % row
    total = flat[:k].view(-1, row).sum(1).sum(dtype=torch.float64)
    if k < flat.numel():
        total = total + flat[k:].sum(dtype=torch.float64)
    return total
