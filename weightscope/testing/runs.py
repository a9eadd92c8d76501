"""Synthetic runs: in memory (:func:`synthetic_run`) or in a store (:func:`write_run`).

Both take the weight values as a ``(step, weight)`` array and the recorded parameters as a
mapping ``{name: number of weights}`` in store order (every element of each parameter is
recorded, flat indices ``0..n-1``).

Examples
--------
>>> import tempfile, os
>>> import weightscope as ws
>>> path = write_run(os.path.join(tempfile.mkdtemp(), "run.zarr"), random_walks(6, 4),
...                  params={"a.weight": 3, "b.weight": 1}, every=2)
>>> ds = ws.open_run(path)
>>> ds.step.values.tolist(), ds.param.values.tolist(), ds.sizes["iteration"]
([0, 2, 4, 6, 8, 10], ['a.weight', 'b.weight'], 10)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from .._validate import check_int
from ..errors import ConfigError
from ..store import Layout, RunWriter, paths

__all__ = ["random_walks", "synthetic_run", "write_run"]


def random_walks(n_steps: int, n_weights: int, *, seed: int = 0, scale: float = 1e-2,
                 drift: float = 0.0) -> np.ndarray:
    """``(n_steps, n_weights)`` float32 random walks from ``N(0, 0.1)`` starting values.

    Each step adds ``N(drift, scale)`` noise; the same ``seed`` gives the same values.
    """
    rng = np.random.default_rng(seed)
    start = rng.normal(0.0, 0.1, n_weights)
    moves = rng.normal(drift, scale, (n_steps, n_weights))
    moves[0] = 0.0
    return (start + np.cumsum(moves, axis=0)).astype(np.float32)


def synthetic_run(w: Any, *, params: Mapping[str, int] | None = None, steps: Any = None,
                  every: int = 1, chunks: tuple[int, int] | None = None,
                  distance: Any = None, complete: bool = True, mask: Any = None,
                  flips: Any = None, explored: Any = None) -> xr.Dataset:
    """A run ``Dataset`` as :func:`weightscope.open_run` returns it, held in memory.

    Parameters
    ----------
    w : array_like, shape (T, n)
        Weight values at each snapshot (float arrays keep their dtype, others become float32).
    params : mapping of str to int, optional
        Recorded parameters and their weight counts (summing to ``n``); default
        ``{"fc.weight": n}``.
    steps : array_like of int, optional
        The snapshots' steps; default ``0, every, 2 every...``.
    every : int
        The run's snapshot interval (its ``every`` attribute).
    chunks : (int, int), optional
        Dask chunks ``(steps, weights)`` of ``w`` (default: numpy-backed).
    distance : array_like, shape (S, len(params)), optional
        Per-iteration search distance of iterations ``1..S``.
    complete : bool
        The run's ``complete`` attribute.
    mask : array_like of bool, shape (T, n), optional
        Sparse masks at each snapshot (chunked like ``w``).
    flips, explored : array_like, shape (S, len(params)), optional
        Per-iteration exploration counts of iterations ``1..S`` (NaN for dense parameters).
    """
    w = np.asarray(w)
    if w.dtype.kind != "f":
        w = w.astype(np.float32)
    names, counts = _params(params, w)
    step_values = _steps(steps, every, len(w))
    data: Any = w
    import dask.array as da

    if chunks is not None:
        data = da.from_array(w, chunks=chunks)
    ds = xr.Dataset(
        {schema.W: ((schema.STEP, schema.WEIGHT), data),
         schema.NUMEL: ((schema.PARAM,), np.asarray(counts, dtype=np.int64))},
        coords={schema.STEP: step_values, schema.PARAM: np.array(names),
                schema.PARAM_ID: ((schema.WEIGHT,), _param_id(counts)),
                schema.INDEX: ((schema.WEIGHT,), _index(counts))},
        attrs={schema.FORMAT_ATTR: schema.FORMAT_VERSION, schema.EVERY: every,
               schema.COMPLETE: bool(complete)})
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        ds[schema.MASK] = ((schema.STEP, schema.WEIGHT), m if chunks is None else
                           da.from_array(m, chunks=chunks))
    for name, values in ((schema.DISTANCE, distance), (schema.FLIPS, flips),
                         (schema.EXPLORED, explored)):
        if values is not None:
            arr = np.asarray(values, dtype=np.float64)
            ds[name] = ((schema.ITERATION, schema.PARAM), arr)
            ds = ds.assign_coords({schema.ITERATION: np.arange(1, len(arr) + 1, dtype=np.int64)})
    return ds


def write_run(path: paths.PathLike, w: Any, *, params: Mapping[str, int] | None = None,
              steps: Any = None, every: int = 1, distance: Any = None, complete: bool = True,
              overwrite: bool = False) -> paths.PathLike:
    """Write a run store holding ``w`` through :class:`~weightscope.store.RunWriter`.

    Parameters are those of :func:`synthetic_run`. ``distance`` defaults to the distance
    ``w`` implies: each snapshot interval's ``sum |w(s) - w(s')|`` per parameter, spread
    evenly over the iterations of that interval (iterations ``1..last step``). A run with
    ``complete=False`` is left as a crashed recording leaves it. Returns ``path``.
    """
    w = np.asarray(w, dtype=np.float32)
    names, counts = _params(params, w)
    step_values = _steps(steps, every, len(w))
    dist = _implied_distance(w, step_values, counts) if distance is None else np.asarray(
        distance, dtype=np.float64)
    layout = Layout.build(names, [(c,) for c in counts], [None] * len(names))
    wr = RunWriter.create(path, layout, attrs={schema.EVERY: every}, overwrite=overwrite)
    wr.write_snapshots(0, step_values, w)
    iterations = np.arange(1, len(dist) + 1, dtype=np.int64)
    if len(dist):
        wr.write_iterations(0, iterations, distance=dist)
    wr.commit(len(w), len(dist))
    if complete:
        wr.finish(int(step_values[-1]) if len(step_values) else 0)
    return path


def _params(params: Mapping[str, int] | None, w: np.ndarray) -> tuple[list[str], list[int]]:
    """Names and weight counts of the recorded parameters, checked against ``w``."""
    if w.ndim != 2:
        raise ConfigError(f"w must be a 2-D (step, weight) array; got shape {w.shape}. "
                          "Reshape it, e.g. w.reshape(len(w), -1).")
    spec = {"fc.weight": w.shape[1]} if params is None else dict(params)
    counts = [check_int(c, f"the weight count of {name!r} must be an integer >= 1",
                        fix="Pass e.g. params={'fc.weight': 10}.") for name, c in spec.items()]
    if sum(counts) != w.shape[1]:
        raise ConfigError(f"params must hold as many weights as w has columns ({w.shape[1]}); "
                          f"got {sum(counts)} in {spec}. Fix the counts or the array.")
    return list(spec), counts


def _steps(steps: Any, every: int, n: int) -> np.ndarray:
    every = check_int(every, "every must be an integer >= 1", fix="Pass e.g. every=10.")
    if steps is None:
        return np.arange(n, dtype=np.int64) * every
    values = np.asarray(steps, dtype=np.int64)
    if values.shape != (n,):
        raise ConfigError(f"steps must hold one step per snapshot ({n}); got shape "
                          f"{values.shape}. Pass steps=None for 0, every, 2*every...")
    return values


def _param_id(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts), dtype=np.int32), counts)


def _index(counts: list[int]) -> np.ndarray:
    return np.concatenate([np.arange(c, dtype=np.int64) for c in counts])


def _implied_distance(w: np.ndarray, steps: np.ndarray, counts: list[int]) -> np.ndarray:
    """Per-iteration distance ``(last step, params)`` spread evenly over snapshot intervals."""
    if len(steps) < 2 or steps[-1] <= 0:
        return np.zeros((0, len(counts)))
    moved = np.abs(np.diff(w.astype(np.float64), axis=0))
    per_param = np.add.reduceat(moved, np.cumsum([0, *counts[:-1]]), axis=1)  # (T-1, P)
    iters = np.arange(1, int(steps[-1]) + 1)
    interval = np.searchsorted(steps, iters) - 1  # snapshot interval holding each iteration
    before = interval < 0  # iterations before the first snapshot: nothing known, 0
    interval[before] = 0
    out = per_param[interval] / np.diff(steps)[interval][:, None]
    out[before] = 0.0
    return out
