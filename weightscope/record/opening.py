"""How a Recorder opens its run: a new store, or an existing one reopened to resume.

A new run's attributes are the Recorder's stored settings (:meth:`RecorderConfig.to_dict
<weightscope.config.RecorderConfig.to_dict>`), the configuration of the model's sparsifier if
it has one (so the analyzers know how the masks were made), and the torch version. Reopening
checks that the model records what the run holds, with the run's ``every`` and the snapshot's
weights (:mod:`weightscope.record.resume`), and marks the run incomplete again.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .. import schema
from ..config import RecorderConfig
from ..errors import SchemaError
from ..store import Layout, RunWriter, paths
from .protocols import SnapshotSource
from .resume import ResumePoint, check_same_layout, check_weights, find_resume_point

__all__ = ["open_writer", "run_attrs"]


def run_attrs(config: RecorderConfig, model: nn.Module) -> dict[str, Any]:
    """The attributes a new run is created with."""
    return {**config.to_dict(), schema.SPARSE: _sparse_config(model),
            schema.VERSIONS: {"torch": torch.__version__}}


def open_writer(path: paths.PathLike, layout: Layout, config: RecorderConfig,
                attrs: dict[str, Any], capture: SnapshotSource,
                storage_options: dict[str, Any] | None,
                current: torch.Tensor | None = None) -> tuple[RunWriter, ResumePoint, int]:
    """Create the run, or reopen it to resume: ``(writer, resume point, non-finite count)``.

    ``current`` holds the model's recorded weights (read through ``capture`` when not given);
    a resumed snapshot must equal them.
    """
    if config.resume is not False and paths.exists(path, storage_options):
        return _reopen(path, layout, config, capture, storage_options, current)
    writer = RunWriter.create(
        path, layout, attrs=attrs, has_mask=capture.has_mask, storage_options=storage_options,
        has_distance=config.track_distance, buffer_bytes=config.buffer_bytes,
        compression=config.compression, overwrite=config.overwrite)
    return writer, ResumePoint(step=0, row=-1), 0


def _reopen(path: paths.PathLike, layout: Layout, config: RecorderConfig,
            capture: SnapshotSource, storage_options: dict[str, Any] | None,
            current: torch.Tensor | None) -> tuple[RunWriter, ResumePoint, int]:
    writer = RunWriter.reopen(path, storage_options)
    try:
        stored = RecorderConfig.from_dict({schema.EVERY: config.every, **writer.attrs},
                                          error=SchemaError)
        check_same_layout(writer.layout, layout, config.every, stored.every)
        point = find_resume_point(writer.group, config.resume)
        if current is None:
            current = torch.empty(layout.n_weights, dtype=torch.float32)
            capture.copy_into(capture.split(current))
        if point.row >= 0:
            check_weights(writer, point, current.numpy())
        nonfinite = _count_nonfinite(writer, point.row + 1)
        writer.commit(point.row + 1, point.step, **{
            schema.COMPLETE: False, schema.TOTAL_STEPS: None, schema.NONFINITE: nonfinite})
    except BaseException:
        writer.close()  # a refused resume releases the run's lock at once
        raise
    return writer, point, nonfinite


def _sparse_config(model: nn.Module) -> dict[str, Any] | None:
    """The configuration of the model's sparsifier (:func:`weightscope.sparse.sparsify`)."""
    try:
        from ..sparse import get_sparsifier
    except ImportError:
        return None
    sp = get_sparsifier(model)
    return None if sp is None else dict(sp.config)


def _count_nonfinite(writer: RunWriter, rows: int) -> int:
    """NaN/Inf values among the first ``rows`` stored snapshots (0 unless the run has some)."""
    if int(writer.attrs.get(schema.NONFINITE, 0)) == 0 or rows == 0:
        return 0
    import dask.array as da

    w = da.from_zarr(writer.group[schema.W])[:rows]
    return int((~da.isfinite(w)).sum().compute())
