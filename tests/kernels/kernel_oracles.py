"""Slow, obvious reference implementations of the mask kernels (Python loops, brute force)."""

from __future__ import annotations

import itertools
import math

import torch


def rank_key(value: float, index: int) -> tuple[float, int]:
    """Sort key: larger magnitude first, NaN below every number, lower index first on ties."""
    mag = abs(value)
    return (-(-1.0 if math.isnan(mag) else mag), index)


def topk_loop(w: torch.Tensor, density: float) -> torch.Tensor:
    values = w.double().flatten().tolist()
    k = max(1, round(density * len(values)))
    order = sorted(range(len(values)), key=lambda i: rank_key(values[i], i))
    mask = [False] * len(values)
    for i in order[:k]:
        mask[i] = True
    return torch.tensor(mask).view(w.shape)


def blocks_loop(w: torch.Tensor, b: int, density: float) -> torch.Tensor:
    out_dim, in_dim = w.shape[:2]
    flat = w.double().reshape(out_dim, in_dim, -1)
    kpos = flat.shape[2]
    scores = []  # (score, block number) with blocks numbered over (out block, in block, kpos)
    for ob, ib, k in itertools.product(range(out_dim // b), range(in_dim // b), range(kpos)):
        vals = [flat[ob * b + r, ib * b + c, k].item() for r in range(b) for c in range(b)]
        mags = [-1.0 if math.isnan(v) else abs(v) for v in vals]
        scores.append(max(mags))
    keep = max(1, round(density * len(scores)))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:keep]
    mask = torch.zeros(out_dim, in_dim, kpos, dtype=torch.bool)
    for number in order:
        ob, rest = divmod(number, (in_dim // b) * kpos)
        ib, k = divmod(rest, kpos)
        mask[ob * b : (ob + 1) * b, ib * b : (ib + 1) * b, k] = True
    return mask.view(w.shape)


def one_d_loop(w: torch.Tensor) -> torch.Tensor:
    out_dim, in_dim = w.shape[:2]
    flat = w.double().reshape(out_dim, in_dim, -1)
    mask = torch.zeros(flat.shape, dtype=torch.bool)
    for o, g, k in itertools.product(range(out_dim), range(in_dim // 4), range(flat.shape[2])):
        vals = [flat[o, 4 * g + j, k].item() for j in range(4)]
        for j in sorted(range(4), key=lambda j: rank_key(vals[j], j))[:2]:
            mask[o, 4 * g + j, k] = True
    return mask.view(w.shape)


def all_patterns() -> list[tuple[bool, ...]]:
    """Every 4x4 0/1 matrix with 2 ones per row and column, as 16 flags (unordered set)."""
    rows = [tuple(c in pair for c in range(4)) for pair in itertools.combinations(range(4), 2)]
    found = []
    for choice in itertools.product(rows, repeat=4):
        if all(sum(row[c] for row in choice) == 2 for c in range(4)):
            found.append(tuple(x for row in choice for x in row))
    return found


def brute_2d(w: torch.Tensor, patterns: torch.Tensor) -> list[tuple[float, int, list[float]]]:
    """For every block (numbered over out block, in block, kpos): (best kept sum, lowest index
    of an optimal pattern in ``patterns`` (90, 4, 4), the block's 16 magnitudes)."""
    out_dim, in_dim = w.shape[:2]
    flat = w.double().reshape(out_dim, in_dim, -1)
    pats = [p.flatten().tolist() for p in patterns]
    result = []
    grid = (range(out_dim // 4), range(in_dim // 4), range(flat.shape[2]))
    for ob, ib, k in itertools.product(*grid):
        vals = [flat[4 * ob + r, 4 * ib + c, k].item() for r in range(4) for c in range(4)]
        mags = [0.0 if math.isnan(v) else abs(v) for v in vals]
        sums = [sum(m for m, keep in zip(mags, p, strict=True) if keep) for p in pats]
        best = max(sums)
        result.append((best, sums.index(best), mags))
    return result


def blocks_of(mask: torch.Tensor) -> list[list[bool]]:
    """The 16 flags of every 4x4 block of a mask, in :func:`brute_2d`'s block order."""
    out_dim, in_dim = mask.shape[:2]
    flat = mask.reshape(out_dim, in_dim, -1)
    blocks = flat.view(out_dim // 4, 4, in_dim // 4, 4, -1).permute(0, 2, 4, 1, 3)
    return blocks.reshape(-1, 16).tolist()
