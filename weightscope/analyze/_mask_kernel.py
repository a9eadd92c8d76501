"""Per-snapshot mask counts of every parameter, for :func:`weightscope.analyze.exploration`.

:func:`mask_counts` is the per-weight kernel (numpy, one block of snapshots x weights);
:func:`run_mask_counts` applies it to a run's ``mask`` block by block (dask), so the masks are
read once, in place, and memory stays a few stored chunks whatever the run's size.

Examples
--------
>>> import numpy as np
>>> mask = np.array([[1, 0, 1, 0], [0, 1, 1, 0]], dtype=bool)   # 2 snapshots, 4 weights
>>> pid = np.array([0, 0, 1, 1])                                  # 2 parameters
>>> mask_counts(mask, mask[-1], pid, 2)[:, 0].tolist()            # differs from the last
[[2, 0], [0, 0]]
>>> mask_counts(mask, mask[-1], pid, 2)[:, 1].tolist()            # mask set
[[1, 1], [1, 1]]
"""

from __future__ import annotations

import dask.array as da
import numpy as np

__all__ = ["mask_counts", "run_mask_counts"]


def mask_counts(mask: np.ndarray, final: np.ndarray, pid: np.ndarray,
                n_params: int) -> np.ndarray:
    """Counts per snapshot and parameter: ``[:, 0]`` elements whose mask differs from
    ``final``, ``[:, 1]`` elements whose mask is set. Shape ``(snapshots, 2, n_params)``.

    ``mask`` is ``(snapshots, weights)`` bool, ``final`` ``(weights,)`` bool and ``pid`` the
    parameter of each weight (any order; runs of equal ids are summed at once).
    """
    mask = np.asarray(mask, dtype=bool)
    pid = np.asarray(pid).reshape(-1)
    final = np.asarray(final, dtype=bool).reshape(-1)
    out = np.zeros((mask.shape[0], 2, n_params), dtype=np.int64)
    if pid.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    ids = pid[starts]
    differ = np.add.reduceat(mask != final[None, :], starts, axis=1, dtype=np.int64)
    ones = np.add.reduceat(mask, starts, axis=1, dtype=np.int64)
    for row, counts in ((0, differ), (1, ones)):
        np.add.at(out[:, row], (slice(None), ids), counts)
    return out


def _block(mask: np.ndarray, final: np.ndarray, pid: np.ndarray, n_params: int) -> np.ndarray:
    """:func:`mask_counts` of one (snapshots, weights) block, as a (snapshots, 1, 2P) block."""
    counts = mask_counts(mask, final[0], pid[0], n_params)
    return counts.reshape(mask.shape[0], 1, 2 * n_params)


def run_mask_counts(mask: da.Array | np.ndarray, last: int, pid: np.ndarray,
                    n_params: int) -> np.ndarray:
    """:func:`mask_counts` of a whole run's ``mask`` against its row ``last``, computed.

    ``mask`` may be dask-backed (then each stored block is read by one task, the final row's
    blocks once more, and only the ``(snapshots, 2, n_params)`` counts are held in memory).
    """
    if not isinstance(mask, da.Array):
        mask = np.asarray(mask)
        return mask_counts(mask, mask[last], pid, n_params)
    w_chunks = mask.chunks[1]
    final = mask[last][None, :].rechunk(((1,), w_chunks))
    pid_d = da.from_array(np.asarray(pid)[None, :], chunks=((1,), w_chunks))
    blocks = da.map_blocks(
        _block, mask, final, pid_d, n_params, dtype=np.int64, new_axis=2,
        chunks=(mask.chunks[0], (1,) * len(w_chunks), (2 * n_params,)))  # final, pid: 1 row
    counts = blocks.sum(axis=1).compute()
    return counts.reshape(mask.shape[0], 2, n_params)
