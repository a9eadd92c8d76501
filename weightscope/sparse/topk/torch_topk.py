"""Incremental exact top-k in pure torch (any device, any float dtype).

:class:`TorchTopk` keeps each weight in one of three sets, split by two edges ``lo < hi``
around the threshold: ``A`` (``|w| > hi``, kept), ``B`` (``|w| < lo``, dropped) and the
candidates ``C`` in between. Each step it selects the top ``k - |A|`` of ``C`` and *proves*
the result exact: with ``q = hi`` on ``A``, ``q = -lo`` on ``B`` and ``q = -huge`` on ``C``,
``v = copysign(w, q) - q`` must be positive everywhere, and the selected / unselected
candidates must straddle the edges. Blocks where the proof fails hand their offending weights
to ``C`` first; if the threshold leaves the band the sets are rebuilt from a sample. Only the
candidates' positions of the mask are written. NaN magnitudes send the step to
:func:`weightscope.kernels.mask_topk`.

Examples
--------
>>> import torch
>>> from weightscope.kernels import mask_topk
>>> w = torch.randn(300, 400)
>>> mask = torch.zeros(300, 400, dtype=torch.bool)
>>> tracker = TorchTopk(numel=w.numel(), density=0.25)
>>> for step in range(3):
...     w += 0.01 * torch.randn(300, 400)
...     assert tracker.update(w, mask, mask.float()) is None
...     assert torch.equal(mask, mask_topk(w, 0.25))
"""

from __future__ import annotations

import math

import torch

from weightscope import kernels
from weightscope.kernels._common import keep_count

__all__ = ["TorchTopk"]

_BLOCKS = (64, 32, 16, 8, 4, 2, 1)  # elements per block of the violation check
_EVICT_EVERY = 8  # steps between evictions of far candidates (unless C grows large)


class TorchTopk:
    """:class:`~weightscope.sparse.topk.IncrementalTopk` in torch ops (see the module).

    Parameters
    ----------
    numel : int
        Number of weights ``n`` of the layer.
    density : float
        Fraction ``d`` in (0, 1] of weights kept.
    band : float, default 0.0025
        Target number of candidates on each side of the threshold, as a fraction of ``n``.

    Notes
    -----
    Keeps two float buffers of the layer's size (``q`` and a scratch ``v``). ``rebuilds``,
    ``repairs`` and ``fallbacks`` count the slow paths.
    """

    releases_gil = False

    def __init__(self, numel: int, density: float, band: float = 0.0025) -> None:
        self.n = numel
        self.k = keep_count(density, numel)
        self.half_band = max(64, round(band * numel))
        self.rebuilds = 0
        self.repairs = 0
        self.fallbacks = 0
        self._block = next(b for b in _BLOCKS if numel % b == 0)
        self._age = 0
        self._ready = False

    def invalidate(self) -> None:
        """Forget the sets: the next :meth:`update` rebuilds them and rewrites the mask."""
        self._ready = False

    def update(
        self, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor
    ) -> torch.Tensor | None:
        """Write the exact top-``k`` mask of ``|w|`` into ``mask`` (bool) and ``mask_f`` (float).

        Both must be contiguous with ``w``'s shape. Returns None (no product is computed).
        """
        with torch.no_grad():
            flat = w.detach().reshape(-1)
            self._age += 1
            stale = not self._ready or self._q.dtype != flat.dtype or self._q.device != flat.device
            if stale:
                self._rebuild(flat, mask, mask_f)
            elif self._repair(flat):
                self.repairs += 1
            for _ in range(3):
                if self._select_and_write(flat, mask, mask_f):
                    return None
                self._rebuild(flat, mask, mask_f)
            self._fallback(w, mask, mask_f)
        return None

    # ------------------------------------------------------------------------ internals
    def _rebuild(self, flat: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor) -> None:
        """Choose edges from a sample of ``|w|`` and split every weight into A / B / C.

        Each weight ``i`` of A or B gets its own edge in ``q[i]`` (``hi`` or ``-lo``); the
        proof only needs ``self._hi`` = the lowest edge of A and ``self._lo`` = the highest of B.
        """
        self.rebuilds += 1
        a = flat.abs()
        lo, hi = self._edges(a)
        self._lo, self._hi = lo, hi
        above, below = a > hi, a < lo
        above_f, below_f = above.to(a.dtype), below.to(a.dtype)
        cand_f = 1.0 - above_f - below_f
        big = torch.finfo(a.dtype).max
        self._q = (above_f * hi).add_(below_f, alpha=-lo).add_(cand_f, alpha=-big)
        self._v = torch.empty_like(a)
        self._cand = torch.nonzero(cand_f).squeeze(1)
        self._cmask = torch.zeros(self._cand.numel(), dtype=torch.bool, device=a.device)
        self._n_above = int(torch.count_nonzero(above))
        mask.view(-1).copy_(above)
        mask_f.view(-1).copy_(above_f)
        self._ready = True

    def _edges(self, a: torch.Tensor) -> tuple[float, float]:
        """Sample estimates of the ``(k + h')``-th and ``(k - h')``-th largest magnitudes.

        ``h'`` adds four standard errors of the sample's ranks to the band, and ``_delta``
        is set to the estimated width in ``|w|`` of ``half_band`` ranks around the threshold.
        """
        sample = a[:: max(1, self.n >> 14)]
        m = sample.numel()

        def value_at_rank(rank: int) -> float:  # rank-th largest of the layer, estimated
            j = min(m, max(1, math.ceil(rank / self.n * m)))
            return float(torch.kthvalue(sample, m - j + 1).values)

        p = self.k / self.n
        wide = self.half_band + math.ceil(4 * self.n * math.sqrt(p * (1 - p) / m))
        lo = value_at_rank(self.k + wide) if self.k + wide < self.n else -1.0
        hi = value_at_rank(self.k - wide) if self.k > wide else math.inf
        near_lo = value_at_rank(min(self.n, self.k + self.half_band))
        near_hi = value_at_rank(max(1, self.k - self.half_band))
        self._delta = max(0.5 * (near_hi - near_lo), 0.0)
        return lo, min(hi, float(torch.finfo(a.dtype).max))  # lo <= hi; ties at them go to C

    def _repair(self, flat: torch.Tensor) -> bool:
        """Move weights of A or B that crossed their edge into C; return whether any did.

        ``v = copysign(w, q) - q`` is ``|w| - hi`` on A, ``lo - |w|`` on B and huge on C; a
        block whose minimum is not positive (or NaN) holds weights that crossed.
        """
        v = torch.copysign(flat, self._q, out=self._v).sub_(self._q)
        bad = torch.nonzero(~(v.view(-1, self._block).amin(1) > 0)).squeeze(1)
        if bad.numel() == 0:
            return False
        idx = (bad[:, None] * self._block + self._offsets(v.device)).view(-1)
        moved = idx[~(v.index_select(0, idx) > 0)]
        q = self._q.index_select(0, moved)
        big = torch.finfo(q.dtype).max
        keep = q > -big  # C (q = -big) is never moved twice (only happens for |w| = inf)
        moved, q = moved[keep], q[keep]
        if moved.numel() == 0:
            return False
        was_above = ~torch.signbit(q)  # A: q = edge >= +0.0 (their mask is True)
        self._n_above -= int(torch.count_nonzero(was_above))
        self._q.index_fill_(0, moved, -big)
        self._cand = torch.cat([self._cand, moved])
        self._cmask = torch.cat([self._cmask, was_above])  # their current mask values
        return True

    def _offsets(self, device: torch.device) -> torch.Tensor:
        offsets = getattr(self, "_offsets_cache", None)
        if offsets is None or offsets.device != device:
            offsets = self._offsets_cache = torch.arange(self._block, device=device)
        return offsets

    def _select_and_write(
        self, flat: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor
    ) -> bool:
        """Select the top of C; write it and return True if provably exact."""
        vals = flat.index_select(0, self._cand).abs_()
        need = self.k - self._n_above
        if not 0 <= need <= vals.numel() or math.isnan(float(vals.sum())):
            return False
        chosen, tau, nxt = _top_with_ties(vals, need, self._cand)
        # A > hi >= nxt and B < lo <= tau (strict edges): A and the chosen beat the rest
        if not (self._lo <= tau and nxt <= self._hi and self._lo <= self._hi):
            return False
        changed = torch.nonzero(chosen != self._cmask).squeeze(1)
        if changed.numel():  # write only the flips: random writes are the costly part
            where, flips = self._cand.index_select(0, changed), chosen.index_select(0, changed)
            mask.view(-1).index_copy_(0, where, flips)
            mask_f.view(-1).index_copy_(0, where, flips.to(mask_f.dtype))
        self._cmask = chosen
        if self._age % _EVICT_EVERY == 0 or vals.numel() > 8 * self.half_band:
            self._evict(vals, tau)
        return True

    def _evict(self, vals: torch.Tensor, tau: float) -> None:
        """Hand candidates beyond ``tau +- 2 delta`` to A / B (edges ``tau +- delta``)."""
        up, down = vals > tau + 2 * self._delta, vals < tau - 2 * self._delta
        keep = ~(up | down)
        to_a, to_b = self._cand[up], self._cand[down]
        if to_a.numel():
            self._q.index_fill_(0, to_a, tau + self._delta)
            self._hi = min(self._hi, tau + self._delta)
        if to_b.numel():
            self._q.index_fill_(0, to_b, -(tau - self._delta))
            self._lo = max(self._lo, tau - self._delta)
        self._n_above += to_a.numel()
        self._cand, self._cmask = self._cand[keep], self._cmask[keep]

    def _fallback(self, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor) -> None:
        """Use the kernel (NaN magnitudes, pathological ties); rebuild at the next step."""
        self.fallbacks += 1
        full = kernels.mask_topk(w.detach(), self.k / self.n)
        mask.copy_(full)
        mask_f.copy_(full)
        self._ready = False


def _top_with_ties(
    vals: torch.Tensor, need: int, index: torch.Tensor
) -> tuple[torch.Tensor, float, float]:
    """Top ``need`` of ``vals`` (ties: lower ``index`` first), the smallest chosen value and
    the largest value not chosen (``inf`` / ``-inf`` when there is none)."""
    m = vals.numel()
    if need == 0:
        return torch.zeros(m, dtype=torch.bool, device=vals.device), math.inf, float(vals.max())
    if need == m:
        return torch.ones(m, dtype=torch.bool, device=vals.device), float(vals.min()), -math.inf
    tau = float(torch.kthvalue(vals, m - need + 1).values)  # need-th largest
    chosen = vals >= tau
    nxt = float(vals.masked_fill(chosen, -math.inf).amax())  # largest value below tau
    if int(torch.count_nonzero(chosen)) == need:
        return chosen, tau, nxt
    nxt = tau  # several candidates share the threshold: lower flat indices win
    chosen = vals > tau
    tied = torch.nonzero(vals == tau).squeeze(1)
    room = need - int(torch.count_nonzero(chosen))
    order = torch.argsort(index.index_select(0, tied))
    chosen.index_fill_(0, tied[order[:room]], True)
    return chosen, tau, nxt
