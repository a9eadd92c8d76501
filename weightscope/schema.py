"""The run store format (version 1): names of dimensions, variables and attributes.

A run is one zarr v3 group. :func:`weightscope.open_run` presents it as one lazy
``xarray.Dataset`` with these names (DESIGN.md section 2). Both the writer and the analyzers
import the names from here, so the format is spelled in exactly one place.

Examples
--------
>>> import numpy as np, xarray as xr
>>> from weightscope import schema
>>> ds = xr.Dataset(
...     {schema.W: ((schema.STEP, schema.WEIGHT), np.zeros((2, 3), np.float32)),
...      schema.NUMEL: ((schema.PARAM,), np.array([3]))},
...     coords={schema.STEP: [0, 1], schema.PARAM: ["fc.weight"],
...             schema.PARAM_ID: ((schema.WEIGHT,), np.zeros(3, np.int32)),
...             schema.INDEX: ((schema.WEIGHT,), np.arange(3))},
...     attrs={schema.FORMAT_ATTR: schema.FORMAT_VERSION, schema.COMPLETE: True,
...            schema.EVERY: 1})
>>> schema.validate(ds)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import SchemaError

__all__ = [
    "ALIASES",
    "COMPLETE",
    "CREATED",
    "DISTANCE",
    "EVERY",
    "EXPLORED",
    "FORMAT_ATTR",
    "FLIPS",
    "FORMAT_VERSION",
    "INDEX",
    "ITERATION",
    "LOSS",
    "LR",
    "MASK",
    "MAX_CHUNK_BYTES",
    "MAX_PARAMS",
    "MAX_ROWS",
    "MAX_WEIGHTS",
    "MIN_SNAPSHOTS",
    "NONFINITE",
    "NUMEL",
    "PARAM",
    "PARAM_ID",
    "PARAM_SHAPES",
    "SAMPLE",
    "SPARSE",
    "STEP",
    "TOTAL_STEPS",
    "VALID_ITERATIONS",
    "VALID_STEPS",
    "VERSIONS",
    "W",
    "WEIGHT",
    "validate",
]

FORMAT_VERSION = 1

# dimensions (and their coordinates)
STEP = "step"
ITERATION = "iteration"
PARAM = "param"
WEIGHT = "weight"

# coordinates along `weight`
PARAM_ID = "param_id"
INDEX = "index"

# variables
W = "w"
MASK = "mask"
DISTANCE = "distance"
NUMEL = "numel"
LOSS = "loss"
LR = "lr"
#: Sparse layers, every optimizer step: elements whose mask changed since the previous step
#: (the first recorded step: since the Recorder started). float64 counts, NaN for a parameter
#: without a mask; absent in dense runs and in runs recorded before it existed.
FLIPS = "flips"
#: Sparse layers, every optimizer step: elements whose mask has been 1 at any step since the
#: Recorder started, its first mask included (the ever-participated set; ITOP's R_s
#: numerator). float64 counts, NaN without a mask; absent like ``flips``. After a resume the
#: set restarts from the mask at the resume step (the set itself is not stored): ``explored``
#: then counts from there, while ``flips`` stays exact.
EXPLORED = "explored"

# group attributes
FORMAT_ATTR = "weightscope_format"
COMPLETE = "complete"
EVERY = "every"
SAMPLE = "sample"
TOTAL_STEPS = "total_steps"
CREATED = "created"
VERSIONS = "versions"
SPARSE = "sparse"
PARAM_SHAPES = "param_shapes"
NONFINITE = "nonfinite_count"
#: {recorded parameter name: [its other names]} of parameters reached under several names (tied)
ALIASES = "aliases"
# valid lengths along `step` / `iteration`: committed only after the data they cover is stored
VALID_STEPS = "valid_steps"
VALID_ITERATIONS = "valid_iterations"

#: Fewest uniformly spaced snapshots the decay time (and so Figure 1) needs: its lagged
#: windows must keep >= 2 points (>= 3 at the default largest lag, T - 3).
MIN_SNAPSHOTS = 4

# Sizes no real run reaches: a store claiming more is refused before anything is allocated.
#: Most recorded weights per snapshot (2**36: a 256 GiB float32 snapshot).
MAX_WEIGHTS = 2**36
#: Most parameters of a run (their names are read whole when a run is opened).
MAX_PARAMS = 2**24
#: Most rows along ``step`` or ``iteration`` (their coordinates are read whole).
MAX_ROWS = 2**31
#: Largest chunk of any array, in bytes before compression (the writer's are ~8 MiB).
MAX_CHUNK_BYTES = 2**31

#: name -> (dims, numpy dtype kind(s)) of what every run holds
_REQUIRED: dict[str, tuple[tuple[str, ...], str]] = {
    W: ((STEP, WEIGHT), "f"),
    NUMEL: ((PARAM,), "iu"),
    STEP: ((STEP,), "iu"),
    PARAM: ((PARAM,), "UOT"),
    PARAM_ID: ((WEIGHT,), "iu"),
    INDEX: ((WEIGHT,), "iu"),
}
#: name -> (dims, kinds) of what a run may hold
_OPTIONAL: dict[str, tuple[tuple[str, ...], str]] = {
    MASK: ((STEP, WEIGHT), "b"),
    DISTANCE: ((ITERATION, PARAM), "f"),
    FLIPS: ((ITERATION, PARAM), "f"),
    EXPLORED: ((ITERATION, PARAM), "f"),
    LOSS: ((ITERATION,), "f"),
    LR: ((ITERATION,), "f"),
    ITERATION: ((ITERATION,), "iu"),
}


def check_format_version(attrs: dict[str, Any], where: str) -> None:
    """Raise :class:`SchemaError` unless ``attrs`` carry a format version this library reads."""
    version = attrs.get(FORMAT_ATTR)
    if version is None:
        raise SchemaError(
            f"{where} has no '{FORMAT_ATTR}' attribute, so it is not a weightscope run; "
            "record one with weightscope.Recorder."
        )
    if int(version) > FORMAT_VERSION:
        raise SchemaError(
            f"{where} is weightscope format {version}, newer than this library reads "
            f"(format {FORMAT_VERSION}); upgrade weightscope (pip install -U weightscope)."
        )


def validate(ds: Any) -> None:
    """Check that ``ds`` (an ``xarray.Dataset``) follows the store format.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset as returned by :func:`weightscope.open_run`.

    Raises
    ------
    SchemaError
        Naming the first missing or malformed variable, coordinate or attribute.
    """
    check_format_version(dict(ds.attrs), "the dataset")
    for name, spec in _REQUIRED.items():
        if name not in ds.variables:
            raise SchemaError(
                f"a weightscope run must hold '{name}'; this dataset has only "
                f"{sorted(map(str, ds.variables))}. Open runs with weightscope.open_run."
            )
        _check_var(ds, name, spec)
    for name, spec in _OPTIONAL.items():
        if name in ds.variables:
            _check_var(ds, name, spec)


def _check_var(ds: Any, name: str, spec: tuple[tuple[str, ...], str]) -> None:
    dims, kinds = spec
    var = ds.variables[name]
    if tuple(var.dims) != dims:
        raise SchemaError(
            f"'{name}' must have dims {dims}; got {tuple(var.dims)}. The store is malformed: "
            "re-record it with weightscope.Recorder."
        )
    kind = np.dtype(var.dtype).kind
    if kind not in kinds:
        raise SchemaError(
            f"'{name}' must have a dtype of kind {kinds!r}; got {var.dtype}. The store is "
            "malformed: re-record it with weightscope.Recorder."
        )
