"""Continuing a crashed or closed run (``Recorder(..., resume=True)``).

A run is resumed from one of its snapshots: by default the last one whose per-iteration data
(distance, loss, lr) is also stored, or the step given as ``resume=<step>``. Everything after
it is dropped (its rows are overwritten as training continues), and the model passed to the
Recorder must hold exactly the weights of that snapshot, i.e. the checkpoint of that step.
A run killed before its first snapshot reached the store holds nothing: it resumes from step 0
(the model must hold the initial weights, which cannot be checked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from .. import schema
from ..errors import ResumeError
from ..store import Layout, RunWriter, paths

__all__ = ["ResumePoint", "check_same_layout", "find_resume_point", "resume_step"]


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run continues: after snapshot ``row`` taken at optimizer ``step``."""

    step: int
    row: int


def check_same_layout(stored: Layout, now: Layout, every: int, stored_every: int) -> None:
    """Raise :class:`ResumeError` unless the model records exactly what the run holds."""
    if stored.names != now.names or stored.shapes != now.shapes:
        raise ResumeError(
            "resume=True needs the model the run was recorded from: the run holds "
            f"{_summary(stored)} but the model gives {_summary(now)}. Pass the same model and "
            "params=..., or record a new run."
        )
    if stored != now:
        raise ResumeError(
            "resume=True needs the same sample= as the run was recorded with (the recorded "
            "elements differ). Pass the original sample= value."
        )
    if every != stored_every:
        raise ResumeError(
            f"resume=True needs the run's every={stored_every}; got every={every}. "
            f"Pass every={stored_every}."
        )


def _summary(layout: Layout) -> str:
    return ", ".join(f"{n}{list(s)}" for n, s in zip(layout.names, layout.shapes))


def resume_step(path: paths.PathLike, storage_options: dict[str, Any] | None = None) -> int:
    """The optimizer step ``Recorder(path, ..., resume=True)`` continues from.

    Load the checkpoint of this step into the model before resuming.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> import weightscope as ws
    >>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
    >>> ws.Recorder(path, torch.nn.Linear(2, 2), every=1).abort()
    >>> resume_step(path)
    0
    """
    group = paths.open_group(path, "r", storage_options)
    schema.check_format_version(dict(group.attrs), f"'{path}'")
    return find_resume_point(group, True).step


def find_resume_point(group: zarr.Group, resume: bool | int) -> ResumePoint:
    """The snapshot a run continues from (see the module docstring)."""
    attrs = dict(group.attrs)
    rows = int(attrs.get(schema.VALID_STEPS, 0))
    iterations = int(attrs.get(schema.VALID_ITERATIONS, 0))
    steps = group[schema.STEP][:rows] if rows else np.zeros(0, np.int64)
    usable = np.flatnonzero(steps <= iterations)
    if not len(usable) and (resume is True or (type(resume) is int and resume == 0)):
        return ResumePoint(0, -1)  # nothing stored yet: start over from the initial weights
    if resume is True:
        row = int(usable[-1])
        return ResumePoint(int(steps[row]), row)
    hits = np.flatnonzero(steps == int(resume))
    if not len(hits) or hits[0] not in usable:
        valid = steps[usable]
        raise ResumeError(
            f"resume={resume} must be a step with a stored snapshot (and its iterations); the "
            f"run can resume at steps {_preview(valid)}. Pass one of them, or resume=True "
            "for the last."
        )
    return ResumePoint(int(resume), int(hits[0]))


def _preview(steps: np.ndarray) -> str:
    if len(steps) <= 8:
        return str(steps.tolist())
    return f"[{steps[0]}, {steps[1]}, ..., {steps[-1]}] ({len(steps)} in all)"


def check_weights(writer: RunWriter, point: ResumePoint, current: np.ndarray) -> None:
    """Raise :class:`ResumeError` unless ``current`` equals the stored snapshot bit for bit."""
    stored = writer.read_rows(point.row, point.row + 1)[schema.W][0]
    if not np.array_equal(stored.view(np.uint32), current.view(np.uint32)):
        changed = int(np.count_nonzero(stored.view(np.uint32) != current.view(np.uint32)))
        raise ResumeError(
            f"the model's weights differ from the run's snapshot at step {point.step} "
            f"({changed} of {stored.size} recorded values); load the checkpoint of step "
            f"{point.step} before resuming, or pass resume=<the step of your checkpoint>."
        )
