"""Exact per-step exploration of sparse layers: mask flips and the ever-participated set.

An element participates at a step when its mask is 1 (it is in the forward pass).
:class:`ExplorationTracker` keeps, per masked parameter, a copy of the previous mask and the
set of elements that ever had mask 1, and after each optimizer step counts

* ``flips``: elements whose mask differs from the previous step's (``schema.FLIPS``);
* ``explored``: elements in the ever-participated set (``schema.EXPLORED``, ITOP's R_s
  numerator).

It compares the masks themselves, so it counts right whoever changed them (the sparsifier, a
user's ``weight_mask.fill_``, a checkpoint load). A mask whose tensor and version counter are
those of the last step (a method that did not rewire, STATIC) is known unchanged: no pass over
it. Otherwise the cost is three memory-bound passes over one-byte masks plus two counts, in
numpy on CPU and as torch kernels whose counts stay on the device (no sync) on a GPU; why, and
what it costs: ``docs/performance.md``, "Exploration".

Examples
--------
>>> import torch
>>> mask = torch.tensor([True, False, False, True])
>>> tracker = ExplorationTracker([mask, None])
>>> _ = mask.copy_(torch.tensor([False, True, False, True]))  # one weight swapped
>>> tracker.update([mask, None])
>>> tracker.flips, tracker.explored
([2, None], [3, None])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["ExplorationTracker", "count_true"]

Count = int | torch.Tensor  # a CPU count is an int, a device count a 0-d tensor (no sync)
_NAN = float("nan")


def count_true(mask: torch.Tensor) -> Count:
    """Number of True elements of a bool tensor: an int on CPU, a 0-d int64 tensor elsewhere.

    Examples
    --------
    >>> count_true(torch.tensor([True, False, True]))
    2
    """
    if _on_host(mask):
        return int(np.count_nonzero(mask.detach().numpy()))
    return mask.sum()


class ExplorationTracker:
    """Flips and explored counts of each mask since construction (see the module).

    Parameters
    ----------
    masks : sequence of Tensor or None
        The bool mask of each parameter at the start (None: a parameter without a mask,
        whose counts stay None). They are copied.

    Attributes
    ----------
    flips : list of int, Tensor or None
        Elements of each mask that changed at the last :meth:`update` (0 before the first).
    explored : list of int, Tensor or None
        Elements of each mask that were 1 at construction or at any update since.
    """

    def __init__(self, masks: Sequence[torch.Tensor | None]) -> None:
        flat = [None if m is None else m.detach().reshape(-1) for m in masks]
        self._prev = [None if m is None else m.clone() for m in flat]
        self._ever = [None if m is None else m.clone() for m in flat]
        self._scratch = [None if m is None else torch.empty_like(m) for m in flat]
        self._seen = [_key(m) for m in flat]
        self._held = list(flat)  # keeps the seen tensors alive, so no other takes their address
        self.flips: list[Count | None] = [None if m is None else 0 for m in flat]
        self.explored: list[Count | None] = [None if m is None else count_true(m) for m in flat]

    def update(self, masks: Sequence[torch.Tensor | None]) -> None:
        """Count the flips and the ever-participated set of the masks as they are now.

        ``masks`` are the same parameters' masks, in the same order (flat or not). A mask
        that is gone (the sparsifier was removed) has counts None from then on.
        """
        for i, mask in enumerate(masks):
            prev = self._prev[i]
            if prev is None:
                continue
            if mask is None:
                self._prev[i] = self._ever[i] = self.flips[i] = self.explored[i] = None
                continue
            key = _key(mask)
            if key == self._seen[i]:
                self.flips[i] = 0  # the same tensor at the same version: unchanged
                continue
            self._seen[i], self._held[i] = key, mask
            self.flips[i], self.explored[i] = self._count(i, mask.detach().reshape(-1), prev)

    def _count(self, i: int, mask: torch.Tensor, prev: torch.Tensor) -> tuple[Count, Count]:
        scratch, ever = self._scratch[i], self._ever[i]
        assert scratch is not None and ever is not None  # set together with prev
        if _on_host(mask):  # numpy (see the module)
            m, p, e, d = mask.numpy(), prev.numpy(), ever.numpy(), scratch.numpy()
            flips = int(np.count_nonzero(np.not_equal(m, p, out=d)))
            np.copyto(p, m)
            if flips == 0:
                return 0, self.explored[i]  # type: ignore[return-value]
            return flips, int(np.count_nonzero(np.logical_or(e, m, out=e)))
        count = torch.ne(mask, prev, out=scratch).sum()
        prev.copy_(mask)
        return count, ever.logical_or_(mask).sum()

    def totals(self) -> tuple[int, int, int]:
        """``(flips, explored, numel)`` summed over the masked parameters (syncs on GPU).

        Examples
        --------
        >>> ExplorationTracker([torch.tensor([True, False]), None]).totals()
        (0, 1, 2)
        """
        live = [i for i, p in enumerate(self._prev) if p is not None]
        return (sum(int(self.flips[i]) for i in live),  # type: ignore[arg-type]
                sum(int(self.explored[i]) for i in live),  # type: ignore[arg-type]
                sum(self._prev[i].numel() for i in live))  # type: ignore[union-attr]

    def write(self, flips: torch.Tensor, explored: torch.Tensor) -> None:
        """Write this step's counts into two float64 rows (one per parameter; NaN without a
        mask), on their device, without a sync."""
        for out, counts in ((flips, self.flips), (explored, self.explored)):
            values = [_NAN if c is None else c for c in counts]
            if all(not isinstance(v, torch.Tensor) for v in values):
                out.copy_(torch.tensor(values, dtype=torch.float64))
            else:
                out.copy_(torch.stack([
                    v.to(out.device, torch.float64) if isinstance(v, torch.Tensor)
                    else torch.full((), v, dtype=torch.float64, device=out.device)
                    for v in values]))


def _on_host(t: torch.Tensor) -> bool:
    """Whether ``t`` is counted with numpy (CPU) rather than torch kernels (a device)."""
    return t.device.type == "cpu"


def _key(mask: torch.Tensor | None) -> tuple[object, ...] | None:
    """What identifies a mask's content without reading it: tensor, storage, version."""
    if mask is None:
        return None
    return (mask.data_ptr(), mask.shape, mask._version)
