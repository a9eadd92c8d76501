"""Shared checks and helpers of the mask kernels (validation, magnitudes, exact top-k).

Every kernel works on a weight viewed as ``(out, in, K)`` where ``K`` is the product of the
kernel dimensions (1 for a Linear weight). Ranking magnitudes use ``|w|`` with NaN replaced by
``-1`` so that NaN ranks below every number (including 0).

Examples
--------
>>> import torch
>>> from weightscope.kernels._common import keep_count, topk_flat
>>> keep_count(0.5, 5)
2
>>> topk_flat(torch.tensor([1.0, -3.0, 3.0, 2.0]), 2).tolist()
[False, True, True, False]
"""

from __future__ import annotations

import math

import torch

from weightscope._validate import check_real
from weightscope.errors import ConfigError, StructureError

__all__ = [
    "SUPPORTED_DTYPES",
    "check_density",
    "check_weight",
    "chunk_elements",
    "chunks",
    "keep_count",
    "kth_largest",
    "ranking_magnitude",
    "split_out_in",
    "topk_flat",
]

#: Elements per step and per thread of the chunked passes on CPU, by kind of kernel: "stream"
#: kernels keep a few buffers per element (topk, 2:4 1D), "search" ~40 (2:4 2D). Sized to stay
#: in cache; scaling with the threads keeps the per-thread share and halves the number of
#: parallel regions (each a synchronisation of the intra-op threads) per doubling.
CPU_CHUNK = {"stream": 1 << 20, "search": 1 << 18}
#: The same on accelerators: large steps, few kernel launches, bounded scratch memory.
ACCEL_CHUNK = {"stream": 1 << 24, "search": 1 << 21}

#: Inputs up to this many elements go straight to ``torch.kthvalue``.
_EXACT_SELECT_MAX = 1 << 17

#: Floating dtypes every mask kernel accepts.
SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_weight(w: object, kernel: str, min_dim: int = 0) -> torch.Tensor:
    """Validate a weight tensor for ``kernel`` and return it detached.

    Raises :class:`ConfigError` for a non-tensor, an unsupported dtype or an empty tensor and
    :class:`StructureError` for too few dimensions.
    """
    if not isinstance(w, torch.Tensor):
        raise ConfigError(
            f"{kernel} needs a torch.Tensor weight; got {type(w).__name__}. "
            "Pass the parameter itself, e.g. layer.weight."
        )
    if w.dtype not in SUPPORTED_DTYPES:
        raise ConfigError(
            f"{kernel} needs a floating weight (float16, bfloat16, float32 or float64); "
            f"got dtype {w.dtype}. Convert it first, e.g. w.float()."
        )
    if w.numel() == 0:
        raise ConfigError(
            f"{kernel} needs a weight with at least one element; got shape {tuple(w.shape)}. "
            "Exclude empty parameters."
        )
    if w.dim() < min_dim:
        raise StructureError(
            f"{kernel} needs a weight with at least {min_dim} dimensions (out, in, *kernel); "
            f"got shape {tuple(w.shape)}. Exclude this parameter (biases and norms are not "
            "sparsified)."
        )
    return w.detach()


def check_density(density: object, kernel: str | None = None) -> float:
    """Validate ``density`` (a real number in (0, 1]) and return it as a float.

    The one check of a density in weightscope; ``kernel`` prefixes the message with the
    function that got it.
    """
    where = f"{kernel}: " if kernel else ""
    return check_real(density, f"{where}density must be in (0, 1]", low=0.0, high=1.0,
                      low_open=True,
                      fix="Pass the fraction of weights to keep, such as density=0.25.")


def keep_count(density: float, n: int) -> int:
    """Number kept out of ``n``: ``max(1, round(density * n))`` (Python's round), at most ``n``."""
    return min(n, max(1, round(density * n)))


def split_out_in(w: torch.Tensor) -> tuple[int, int, int]:
    """Return ``(out, in, K)`` for a weight of shape ``(out, in, *kernel)``."""
    return w.shape[0], w.shape[1], math.prod(w.shape[2:])


def chunk_elements(device: torch.device, kind: str = "stream") -> int:
    """Elements processed per step by the chunked kernels (cache-sized per thread on CPU)."""
    if device.type != "cpu":
        return ACCEL_CHUNK[kind]
    return CPU_CHUNK[kind] * min(4, max(1, torch.get_num_threads()))


def chunks(n: int, size: int) -> list[slice]:
    """Split ``range(n)`` into consecutive slices of at most ``size`` elements."""
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def ranking_magnitude(w: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Return ``|w|`` (same dtype) with NaN replaced by ``-1``, written to ``out`` if given.

    Without ``out`` the result is a new contiguous tensor; ``w`` is never modified.
    """
    mag = torch.abs(w.contiguous()) if out is None else torch.abs(w, out=out)
    return mag.nan_to_num_(nan=-1.0, posinf=math.inf)


def _ranked(flat: torch.Tensor, magnitude: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    if magnitude:
        return ranking_magnitude(flat, out=out)
    return flat if out is None else out.copy_(flat)


def _chunk_buffer(flat: torch.Tensor) -> torch.Tensor:
    size = min(flat.numel(), chunk_elements(flat.device))
    return torch.empty(size, dtype=flat.dtype, device=flat.device)


def _flat_piece(flat: torch.Tensor, buf: torch.Tensor, piece: slice, magnitude: bool):
    return _ranked(flat[piece], magnitude, out=buf[: piece.stop - piece.start])


def kth_largest(flat: torch.Tensor, k: int, magnitude: bool = True) -> torch.Tensor:
    """Return the ``k``-th largest ranking magnitude of the 1-D ``flat`` (a 0-d tensor).

    With ``magnitude=False`` the values of ``flat`` (NaN-free) are ranked as they are.

    A strided sample brackets the answer, one chunked pass counts the values above the bracket
    and keeps those inside it, and ``kthvalue`` runs on that band only. The result is exact
    whatever the sample (a bad bracket falls back to ``kthvalue`` on everything).
    """
    n = flat.numel()
    if n <= _EXACT_SELECT_MAX:
        return torch.kthvalue(_ranked(flat, magnitude), n - k + 1).values
    sample = _ranked(flat[:: n >> 14], magnitude).sort().values
    pos = (n - k + 0.5) / n * sample.numel()
    margin = 4.0 * math.sqrt(sample.numel()) + 2.0
    lo_i, hi_i = math.floor(pos - margin), math.ceil(pos + margin)
    lo = sample[lo_i] if lo_i >= 0 else sample.new_tensor(-math.inf)
    hi = sample[hi_i] if hi_i < sample.numel() else sample.new_tensor(math.inf)
    buf = _chunk_buffer(flat)
    above, bands = 0, []
    for piece in chunks(n, buf.numel()):
        mag = _flat_piece(flat, buf, piece, magnitude)
        above += int(torch.count_nonzero(mag > hi))
        bands.append(mag[(mag >= lo) & (mag <= hi)])
    band, rank = torch.cat(bands), k - above
    if 1 <= rank <= band.numel():
        return torch.kthvalue(band, band.numel() - rank + 1).values
    return torch.kthvalue(_ranked(flat, magnitude), n - k + 1).values


def topk_flat(flat: torch.Tensor, k: int, magnitude: bool = True) -> torch.Tensor:
    """Exact top-``k`` by ranking magnitude of the 1-D ``flat`` as a bool mask.

    Among equal magnitudes lower indices win; ``magnitude=False`` ranks the (NaN-free) values
    of ``flat`` as they are. A selection (:func:`kth_largest`) and one chunked comparison
    pass, never a full sort.
    """
    n = flat.numel()
    mask = torch.empty(n, dtype=torch.bool, device=flat.device)
    if k >= n:
        return mask.fill_(True)
    threshold = kth_largest(flat, k, magnitude)
    buf = _chunk_buffer(flat)
    kept = 0
    for piece in chunks(n, buf.numel()):
        mag = _flat_piece(flat, buf, piece, magnitude)
        kept += int(torch.count_nonzero(torch.ge(mag, threshold, out=mask[piece])))
    if kept > k:  # ties at the threshold: drop the highest-index ones
        tied = torch.nonzero(_ranked(flat, magnitude) == threshold).squeeze(1)
        mask[tied[tied.numel() - (kept - k) :]] = False
    return mask
