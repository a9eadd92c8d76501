"""Checks of a run's metadata when it is opened, before anything is allocated or decoded.

:func:`committed_lengths` checks the valid lengths against the stored arrays (exact integers
within the arrays' rows: ``valid_steps: 30.7`` is refused, not read as 30);
:func:`check_arrays` checks that the arrays' shapes agree, that no size is beyond what a real
run reaches (:data:`weightscope.schema.MAX_WEIGHTS` and its siblings), and the parameters
(unique names, element counts that match ``param_shapes``). :func:`check_values` adds the
checks of the values themselves, lazily: a parameter id out of range, a weight index outside
its parameter (:func:`check_indices`) or a negative or infinite distance raises when the block
holding it is read (NaN distances stay: they mark unknown steps); steps and iterations that do
not increase strictly are refused at once.
Each refusal is a :class:`~weightscope.errors.CorruptRunError` naming the rule, the value
and the fix.

Examples
--------
>>> committed_lengths({"valid_steps": 30.7}, {"step": 64, "iteration": 64}, "'run.zarr'")
Traceback (most recent call last):
...
weightscope.errors.CorruptRunError: 'run.zarr': 'valid_steps' must be an integer...; got 30.7...
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import schema
from .._validate import check_int
from ..errors import CorruptRunError

__all__ = ["capacities", "check_arrays", "check_indices", "check_sizes", "check_values",
           "committed_lengths"]

_FIX = "The run's metadata is damaged: restore the run from a backup or re-record it."
_LENGTHS = {schema.STEP: schema.VALID_STEPS, schema.ITERATION: schema.VALID_ITERATIONS}


def _refuse(where: str, rule: str, value: Any) -> None:
    raise CorruptRunError(f"{where}: {rule}; got {value!r}. {_FIX}")


def capacities(arrays: dict[str, Any]) -> dict[str, int]:
    """Rows stored along ``step`` / ``iteration``: the fewest of the arrays along each."""
    caps: dict[str, int] = {}
    for arr in arrays.values():
        names = arr.metadata.dimension_names or ()
        if names and names[0] in _LENGTHS:
            caps[names[0]] = min(caps.get(names[0], arr.shape[0]), arr.shape[0])
    return caps


def committed_lengths(attrs: dict[str, Any], caps: dict[str, int], where: str
                      ) -> dict[str, int]:
    """The valid lengths of ``attrs``, each an integer within the rows ``caps`` stores."""
    out = {}
    for dim, key in _LENGTHS.items():
        cap = min(caps.get(dim, 0), schema.MAX_ROWS)
        value = attrs.get(key, 0)
        out[dim] = check_int(value, f"{where}: '{key}' must be an integer from 0 to the {cap} "
                             f"rows stored along '{dim}'", minimum=0, fix=_FIX,
                             error=CorruptRunError)
        if out[dim] > cap:
            _refuse(where, f"'{key}' must be an integer from 0 to the {cap} rows stored along "
                           f"'{dim}'", value)
    return out


def check_arrays(arrays: dict[str, Any], attrs: dict[str, Any], where: str) -> None:
    """Sizes within reach, shapes that agree, unique parameters matching ``param_shapes``.

    ``arrays`` maps names to zarr arrays (only ``param`` and ``numel`` are read: small).
    """
    sizes = check_sizes(arrays, where)
    if schema.PARAM in arrays and schema.NUMEL in arrays:
        _check_params(arrays, attrs, sizes.get(schema.WEIGHT, 0), where)


def check_sizes(arrays: dict[str, Any], where: str) -> dict[str, int]:
    """Sizes within reach and shapes that agree (metadata only, no chunk read); the size of
    each shared dimension."""
    for name, arr in arrays.items():
        chunk = math.prod(arr.chunks) * arr.dtype.itemsize if arr.dtype.itemsize else 0
        if chunk > schema.MAX_CHUNK_BYTES:
            _refuse(where, f"a chunk of '{name}' must hold at most {schema.MAX_CHUNK_BYTES} "
                           "bytes", f"chunks {tuple(arr.chunks)}")
    sizes = _dimension_sizes(arrays, where)
    if sizes.get(schema.WEIGHT, 0) > schema.MAX_WEIGHTS:
        _refuse(where, f"a run records at most {schema.MAX_WEIGHTS} weights per snapshot",
                sizes[schema.WEIGHT])
    if sizes.get(schema.PARAM, 0) > schema.MAX_PARAMS:
        _refuse(where, f"a run has at most {schema.MAX_PARAMS} parameters",
                sizes[schema.PARAM])
    return sizes


def _dimension_sizes(arrays: dict[str, Any], where: str) -> dict[str, int]:
    """The size of each dimension but the leading ``step``/``iteration``, which must agree
    between the arrays that share it."""
    sizes: dict[str, tuple[str, int]] = {}
    for name, arr in sorted(arrays.items()):
        dims = arr.metadata.dimension_names or ()
        for i, (dim, size) in enumerate(zip(dims, arr.shape)):
            if i == 0 and dim in _LENGTHS:
                continue
            first = sizes.setdefault(dim, (name, size))
            if first[1] != size:
                _refuse(where, f"'{name}' and '{first[0]}' must agree on the size of "
                               f"'{dim}' ({first[1]} in '{first[0]}')", size)
    return {dim: size for dim, (_, size) in sizes.items()}


def _check_params(arrays: dict[str, Any], attrs: dict[str, Any], n_weights: int,
                  where: str) -> None:
    names = [str(n) for n in arrays[schema.PARAM][:]]
    numel = np.asarray(arrays[schema.NUMEL][:])
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        _refuse(where, "parameter names must be unique", dup[:5])
    if (numel < 0).any() or n_weights > int(numel.sum()):
        _refuse(where, f"'numel' must count the elements of each parameter (>= 0, at least "
                       f"the {n_weights} recorded weights in all)", numel[:5].tolist())
    shapes = attrs.get(schema.PARAM_SHAPES)
    if shapes is None:
        return
    if not isinstance(shapes, dict) or list(shapes) != names:
        _refuse(where, f"'{schema.PARAM_SHAPES}' must give the shape of each parameter of "
                       "'param', in order", str(shapes)[:200])
    for (name, shape), n in zip(shapes.items(), numel):
        if not isinstance(shape, list) or math.prod(shape) != int(n):
            _refuse(where, f"the shape of '{name}' in '{schema.PARAM_SHAPES}' must have "
                           f"'numel' ({int(n)}) elements", shape)


def check_values(ds: Any, where: str) -> Any:
    """``ds`` with lazy checks: parameter ids in range, weight indices within their parameter,
    distances finite or NaN and not negative; and at once: steps and iterations strictly
    increasing."""
    _check_increasing(ds, where)
    n_params = ds.sizes.get(schema.PARAM, 0)
    checks = {schema.PARAM_ID: (_ids_in_range, n_params), schema.DISTANCE: (_not_negative,)}
    for name, (check, *args) in checks.items():
        if name not in ds.variables:
            continue
        var = ds[name].variable
        data = (var.data.map_blocks(check, *args, where=where, dtype=var.dtype)
                if hasattr(var.data, "map_blocks") else check(var.values, *args, where=where))
        ds = ds.assign({name: var.copy(data=data)}) if name in ds.data_vars else (
            ds.assign_coords({name: var.copy(data=data)}))
    return _with_index_check(ds, where)


def _with_index_check(ds: Any, where: str) -> Any:
    """``ds`` whose ``index`` raises when read if a value is outside its parameter (lazily,
    block by block with the already checked ``param_id``; ``numel`` is small: read now)."""
    if not all(n in ds.variables for n in (schema.INDEX, schema.PARAM_ID, schema.NUMEL)):
        return ds
    numel = np.asarray(ds[schema.NUMEL].values)
    index, pid = ds[schema.INDEX].variable, ds[schema.PARAM_ID].variable
    if hasattr(index.data, "map_blocks"):
        import dask.array as da

        ids = pid.data if hasattr(pid.data, "map_blocks") else da.from_array(
            np.asarray(pid.values), chunks=index.data.chunks)
        data = da.map_blocks(check_indices, index.data, ids, numel, where=where,
                             dtype=index.dtype)
    else:
        data = check_indices(np.asarray(index.values), np.asarray(pid.values), numel, where)
    var = index.copy(data=data)
    return (ds.assign({schema.INDEX: var}) if schema.INDEX in ds.data_vars
            else ds.assign_coords({schema.INDEX: var}))


def check_indices(index: np.ndarray, param_id: np.ndarray, numel: np.ndarray,
                  where: str) -> np.ndarray:
    """``index`` (weights' flat indices in their parameters, aligned with ``param_id``), or
    :class:`CorruptRunError` if one is outside ``[0, numel)`` of its parameter.

    Examples
    --------
    >>> check_indices(np.array([0, 9]), np.array([0, 0]), np.array([10]), "'r'")
    array([0, 9])
    >>> check_indices(np.array([10]), np.array([0]), np.array([10]), "'r'")
    Traceback (most recent call last):
    ...
    weightscope.errors.CorruptRunError: 'r': 'index' must be a weight's flat index...; got 10...
    """
    if not index.size:
        return index
    limit = np.take(np.asarray(numel), param_id, mode="clip")  # ids checked on their own
    bad = (index < 0) | (index >= limit)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        _refuse(where, f"'index' must be a weight's flat index within its parameter, from 0 "
                       f"to its 'numel' - 1 ({int(limit[at]) - 1} for weight {at} of this "
                       "block)", int(index[at]))
    return index


def _ids_in_range(block: np.ndarray, n_params: int, where: str) -> np.ndarray:
    if block.size and (block.min() < 0 or block.max() >= n_params):
        bad = block[(block < 0) | (block >= n_params)][0]
        _refuse(where, f"'param_id' must be a parameter index from 0 to {n_params - 1}",
                int(bad))
    return block


def _not_negative(block: np.ndarray, where: str) -> np.ndarray:
    bad = (block < 0) | np.isinf(block)  # the writer stores an unknown distance as NaN
    if block.size and bad.any():
        _refuse(where, "'distance' must be finite and not negative (NaN: unknown)",
                float(block[bad][0]))
    return block


def _check_increasing(ds: Any, where: str) -> None:
    """``step`` and ``iteration`` (in memory: they index the dataset) strictly increase
    from 0 or more: a reordered or repeated step would silently misplace snapshots."""
    for name in (schema.STEP, schema.ITERATION):
        if name not in ds.coords or not ds.sizes.get(name):
            continue
        values = np.asarray(ds[name].values)
        bad = np.flatnonzero(np.diff(values) <= 0)
        if values[0] < 0 or bad.size:
            at = 0 if values[0] < 0 else int(bad[0]) + 1
            _refuse(where, f"'{name}' must increase strictly from 0 or more (at row {at})",
                    int(values[at]))
