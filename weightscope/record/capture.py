"""Training-thread work of the Recorder: copy snapshots out, and measure the distance of every
step.

Both run right after an optimizer step, on the model's device, and allocate nothing per step:
:class:`Capture` copies the recorded elements of every parameter into one host row (pinned and
non-blocking on CUDA), :class:`DistanceTracker` adds ``sum |w(s) - w(s-1)|`` per parameter
over all of its elements, keeping one copy of the previous weights. They work on detached
views only, so they need no ``torch.no_grad()`` (whose decorator would add its own cost to
every step; see ``docs/performance.md``, "Recording").

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

A non-finite weight flags the steps it takes part in, for its parameter only:

>>> sel = select_params(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)))
>>> dist, row = DistanceTracker(sel), torch.zeros(2, dtype=torch.float64)
>>> with torch.no_grad():
...     _ = sel[0].tensor[0, 0].fill_(float("inf"))
>>> dist.update(row)
>>> row.isnan().tolist()
[True, False]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import ShapeChangedError
from ..store import Layout
from .protocols import Sources
from .selection import Selected

__all__ = ["Capture", "DistanceTracker", "effective_weight", "gather_into", "mask_of"]

_NAN = float("nan")


def mask_of(sel: Selected) -> torch.Tensor | None:
    """The sparse mask buffer of a parameter (``<attr>_mask`` on its module), if any."""
    mask = getattr(sel.module, f"{sel.attr}_mask", None)
    return mask if isinstance(mask, torch.Tensor) else None


def effective_weight(sel: Selected) -> torch.Tensor:
    """The weight the forward pass uses: ``mask * w`` for sparse layers, ``w`` otherwise."""
    w = sel.tensor.detach()
    mask = mask_of(sel)
    return w if mask is None else w * mask


class Capture:
    """Copy the recorded elements of the selected parameters into host rows.

    The flat views of the parameters (and masks) are kept between calls and used while the
    same tensors come back with the same storage, shape and strides (one identity and
    pointer check per tensor instead of rebuilding views, since this runs after every
    optimizer step); a replaced parameter, a swapped ``.data`` or a non-contiguous tensor is
    looked at afresh.

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
        self.sizes = layout.counts.tolist()
        self.shapes = [torch.Size(s) for s in layout.shapes]
        self.device = self.selected[0].tensor.device
        self.non_blocking = self.device.type == "cuda"
        self.index = [None if layout.is_full(i) else torch.as_tensor(ix, device=self.device)
                      for i, ix in enumerate(layout.indices)]
        self.has_mask = any(mask_of(s) is not None for s in self.selected)
        self._slots = [(s.module._parameters, s.module._buffers, s.attr, f"{s.attr}_mask", s)
                       for s in self.selected]
        self._seen: list[tuple[Any, ...]] = []  # (tensor, data_ptr, shape, stride)
        self._flat: list[tuple[torch.Tensor, torch.Tensor | None]] = []  # (weights, mask)

    def copy_into(self, w_parts: Sequence[torch.Tensor],
                  m_parts: Sequence[torch.Tensor] | None = None,
                  sources: Sources | None = None) -> None:
        """Copy the current weights (and masks) into host rows, given as per-parameter views.

        The views are those of :meth:`split`, made once per row (the Pipeline keeps them, so
        no row is split at a step). ``sources`` is what :meth:`sources` returned for this
        step (looked up when not given).
        """
        for i, (w, mask) in enumerate(self.sources() if sources is None else sources):
            gather_into(w, self.index[i], w_parts[i], self.non_blocking)
            if m_parts is not None:
                if mask is None:
                    m_parts[i].fill_(True)
                else:
                    gather_into(mask, self.index[i], m_parts[i], self.non_blocking)

    def split(self, row: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-parameter views of a snapshot row."""
        return row.split(self.sizes)

    def _current(self) -> list[torch.Tensor | None]:
        """The parameters (then, with masks, their masks) as they are now."""
        out = []
        for params, buffers, attr, mask_attr, sel in self._slots:
            t = params.get(attr)
            out.append(sel.tensor if t is None else t)
            if self.has_mask:
                mask = buffers.get(mask_attr)
                out.append(mask_of(sel) if mask is None else mask)
        return out

    def sources(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Flat views ``(weights, mask or None)`` of the parameters as they are now.

        Shapes are checked whenever a tensor changed.

        Raises
        ------
        ShapeChangedError
            A parameter no longer has its recorded shape.
        """
        now = self._current()
        seen = self._seen
        if len(seen) == len(now):
            for t, key in zip(now, seen):
                if t is not key[0] or (t is not None and (t.data_ptr(), t.shape, t.stride())
                                       != key[1:]):
                    break
            else:
                return self._flat
        self._check(now[::2] if self.has_mask else now)
        # a non-contiguous tensor is flattened by a copy: never reused (its pointer is -1)
        self._seen = [(t, -1) if t is None or not t.is_contiguous()
                      else (t, t.data_ptr(), t.shape, t.stride()) for t in now]
        flat = [None if t is None else t.detach().reshape(-1) for t in now]
        self._flat = (list(zip(flat[::2], flat[1::2])) if self.has_mask  # type: ignore[arg-type]
                      else [(w, None) for w in flat])  # type: ignore[misc]
        return self._flat

    def _check(self, tensors: Sequence[torch.Tensor]) -> None:
        for sel, t, shape in zip(self.selected, tensors, self.shapes):
            if t.shape != shape:
                raise ShapeChangedError(
                    f"parameter '{sel.name}' changed shape from {tuple(shape)} to "
                    f"{tuple(t.shape)} during recording; a run records fixed shapes. Close this "
                    "Recorder and start a new run for the new shape."
                )


class DistanceTracker:
    """Per-step distance ``sum |w(s) - w(s-1)|`` per parameter, over all its elements.

    For sparse layers (a ``weight_mask`` buffer next to the weight) the distance is of the
    effective weights ``mask * w``. One flat copy of the previous (effective) weights is kept
    on the parameters' device and reused as scratch: three memory-bound passes per step
    (difference in place, absolute value, copy of the new weights) plus the sum, one parameter
    at a time (its previous weights stay in cache between the passes). Differences are
    rounded to float32 (exact while a weight changes by less than half its value); sums run
    in float32 over rows of :data:`ROW` elements (pairwise) and in float64 across rows:
    within ~2e-7 relative of a float64 computation, not bit for bit, without converting every
    element to float64 (which doubles the distance's cost; accuracy and cost in
    ``docs/performance.md``, "Recording").

    A step whose distance is not finite for a parameter (a NaN or infinite weight before or
    after it) is stored as NaN for that parameter only: the others keep their distances, and
    analyses count the flagged steps (see :func:`weightscope.analyze.search_distance`).

    Parameters
    ----------
    selected : sequence of Selected
        Recorded parameters, in store order.
    read : callable, default :func:`effective_weight`
        The weights of a parameter whose distance is measured (a sharded model's
        :class:`~weightscope.record.distributed.ShardedDistance` reads this rank's slice).
    """

    #: Elements summed in float32 before the float64 accumulation.
    ROW = 1024

    def __init__(self, selected: Sequence[Selected],
                 read: Callable[[Selected], torch.Tensor] = effective_weight) -> None:
        self.selected = list(selected)
        self.prev = [read(s).reshape(-1).clone() for s in self.selected]
        self.scratch = [torch.empty_like(p) if mask_of(s) is not None else None
                        for s, p in zip(self.selected, self.prev)]
        self._one_device = len({p.device for p in self.prev}) == 1  # else move the sums

    def update(self, out: torch.Tensor, sources: Sources | None = None) -> None:
        """Write this step's distance per parameter into ``out`` (float64, one per param).

        ``sources`` are the flat ``(weights, mask)`` of :meth:`Capture.sources` (looked up
        when not given).
        """
        if sources is None:
            sources = [(s.tensor.detach().reshape(-1), _flat(mask_of(s))) for s in self.selected]
        norms = []
        for (w, mask), prev, tmp in zip(sources, self.prev, self.scratch):
            cur = w if mask is None else torch.mul(w, mask, out=tmp)
            torch.sub(cur, prev, out=prev).abs_()
            norms.append(abs_sum(prev, self.ROW))
            prev.copy_(cur)
        if not self._one_device:  # a model spread over devices: sums go to out's device
            norms = [n.to(out.device, non_blocking=True) for n in norms]
        torch.stack(norms, out=out)
        out.nan_to_num_(nan=_NAN, posinf=_NAN, neginf=_NAN)  # unknown: NaN-flagged


def gather_into(flat: torch.Tensor, index: torch.Tensor | None, dst: torch.Tensor,
                non_blocking: bool) -> None:
    """``dst[:] = flat[index]`` (all of ``flat`` when ``index`` is None), into host memory."""
    if index is None:
        dst.copy_(flat, non_blocking=non_blocking)
    elif flat.is_cpu and flat.dtype is dst.dtype:
        torch.index_select(flat, 0, index, out=dst)
    else:
        dst.copy_(flat.index_select(0, index), non_blocking=non_blocking)


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.reshape(-1)


def abs_sum(t: torch.Tensor, row: int = DistanceTracker.ROW) -> torch.Tensor:
    """Sum of a contiguous non-negative tensor: float32 rows of ``row``, float64 across rows."""
    flat = t.view(-1)
    k = flat.numel() - flat.numel() % row
    total = flat[:k].view(-1, row).sum(1).sum(dtype=torch.float64)
    if k < flat.numel():
        total = total + flat[k:].sum(dtype=torch.float64)
    return total
