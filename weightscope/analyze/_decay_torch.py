"""Optional torch path of the decay-time kernel: the float32 FFT pass on a GPU.

Only :func:`torch_for` decides whether torch is used, and imports it lazily (never at module
import: ``weightscope.analyze`` stays torch-free). The float32 pass is the same as the numpy one
(same bound); the undecided columns are settled by the numpy float64 pass and the exact
two-pass formula on the CPU, so both backends return the same results.

Examples
--------
>>> torch_for("numpy", 10**9) is None
True
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from typing import Any

import numpy as np
import scipy.fft as sfft

from ..errors import ConfigError
from ._decay_exact import apply_exact
from ._decay_fft import error_bound, prepare, settle

__all__ = ["TORCH_BLOCK_ELEMENTS", "TORCH_MIN_ELEMENTS", "torch_block", "torch_for"]

#: elements ``T * n`` from which the ``"auto"`` backend sends the input to a CUDA GPU
TORCH_MIN_ELEMENTS = 1 << 22
#: elements ``T * n`` of one block on the device (a few float64 copies of it are alive at once)
TORCH_BLOCK_ELEMENTS = 1 << 25


def torch_for(backend: str, size: int) -> Any:
    """The torch module when this call should use it, else None (imports torch lazily)."""
    if backend == "numpy" or (backend == "auto" and (size < TORCH_MIN_ELEMENTS or not
                                                     _gpu_possible())):
        return None
    torch = _import_torch()
    if backend == "torch":
        if torch is None:
            raise ConfigError(
                "backend='torch' needs PyTorch, which is not installed; got backend='torch'. "
                "Install torch or pass backend='numpy'."
            )
        return torch
    return torch if torch is not None and torch.cuda.is_available() else None


@functools.cache
def _gpu_possible() -> bool:
    """False only when no GPU can be there: torch not yet imported and, on Linux, no NVIDIA or
    ROCm driver (so a CPU-only analysis never pays for importing torch)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/kfd"))


@functools.cache
def _import_torch() -> Any:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


def torch_block(
    torch: Any, x: np.ndarray, lag: int, delta: np.ndarray, censored: np.ndarray, cut: slice
) -> None:
    """Float32 pass on the torch device (CUDA when available); settling on the CPU."""
    xb = x[:, cut]
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with np.errstate(over="ignore", invalid="ignore"), torch.no_grad():
        mean, limit = prepare(xb, lag)
        first, hit, sure = (t.cpu().numpy() for t in _pass(torch, dev, xb, mean, limit, lag))
        d = np.where(hit, first + 1, lag).astype(np.float64)
        c = ~hit
        deep = np.flatnonzero(hit & ~sure)
        none = np.empty(0, dtype=np.int64)
        if deep.size:
            d[deep], c[deep], cols, taus = settle(xb, mean, limit, lag, deep, none, none)
            apply_exact(xb, d, c, cols, taus)
    d[limit < 0] = np.nan
    c[limit < 0] = False
    delta[cut], censored[cut] = d, c


def _pass(
    torch: Any, dev: Any, xb: np.ndarray, mean: np.ndarray, limit: np.ndarray, lag: int
) -> tuple[Any, Any, Any]:
    """First not-surely-positive lag index, whether it is a usable lag, whether surely <= 0."""
    n_steps, n = xb.shape
    nfft = sfft.next_fast_len(n_steps + lag, real=True)
    x = torch.as_tensor(np.ascontiguousarray(xb), device=dev)
    y = (x.to(torch.float64) - torch.as_tensor(mean, device=dev)).to(torch.float32)
    y[:, torch.as_tensor(limit < 0, device=dev)] = 0
    spec = torch.fft.rfft(y, n=nfft, dim=0)
    r = torch.fft.irfft(spec.real.square() + spec.imag.square(), n=nfft, dim=0)
    prefix = torch.cumsum(y.to(torch.float64), dim=0)
    tau = torch.arange(1, lag + 1, device=dev)
    m = (n_steps - tau).to(torch.float64)[:, None]
    sums = (prefix[n_steps - 1] - prefix[tau - 1]) * prefix[n_steps - 1 - tau] / m
    q = r[1 : lag + 1] - sums.to(torch.float32)
    energy = y.double().square().sum(dim=0).cpu().numpy()
    bound = torch.as_tensor(error_bound(energy, n_steps, nfft, np.float32), device=dev)
    bound = bound.to(torch.float32)
    sure_pos = q > bound
    first = sure_pos.to(torch.uint8).argmin(dim=0)
    cols = torch.arange(n, device=dev)
    hit = ~sure_pos[first, cols] & (first < torch.as_tensor(limit, device=dev))
    return first, hit, q[first, cols] < -bound
