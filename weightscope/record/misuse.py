"""Checks that stop a Recorder from silently recording a wrong run.

* **One record per optimizer step.** A Recorder attached to an optimizer
  (:meth:`Recorder.attach <weightscope.Recorder.attach>`) records from the optimizer's step
  hook; a direct :meth:`Recorder.step <weightscope.Recorder.step>` as well would count every
  step twice, so it raises :func:`double_step_error`.
* **Sparsify before recording.** A run knows whether it is sparse (``mask``, the sparsifier's
  configuration) when it is created. A model sparsified after its Recorder was made would be
  recorded as dense; :func:`check_still_dense` notices it at the Recorder's first step (one
  look-up per recorded parameter, once per Recorder). A model sparsified after the first step
  is not noticed: its run keeps recording the dense weights ``w`` without masks.

Examples
--------
>>> import torch
>>> from weightscope.record.selection import select_params
>>> from weightscope.sparse.layers import to_sparse
>>> model = torch.nn.Linear(2, 2)
>>> watched = dense_params(select_params(model))
>>> check_still_dense(watched, "run.zarr")  # still dense: nothing to say
>>> to_sparse(model, torch.ones(2, 2, dtype=torch.bool), grad_scale=1.0)
>>> check_still_dense(watched, "run.zarr")
Traceback (most recent call last):
...
weightscope.errors.ConfigError: the Recorder must be created after sparsify(): ...
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .capture import mask_of
from .selection import Selected

__all__ = ["check_still_dense", "dense_params", "double_step_error"]


def dense_params(selected: Sequence[Selected]) -> list[Selected] | None:
    """The parameters to watch for a mask appearing later: all of them when none has a mask
    now (a dense run), None when the run records masks already (nothing to watch)."""
    if any(mask_of(s) is not None for s in selected):
        return None
    return list(selected)


def check_still_dense(watched: Sequence[Selected], path: object) -> None:
    """Raise :class:`ConfigError` if a parameter of a dense run has gained a sparse mask."""
    masked = [s.name for s in watched if mask_of(s) is not None]
    if masked:
        raise ConfigError(
            f"the Recorder must be created after sparsify(): the model was sparsified after "
            f"the Recorder of '{path}' was made, so {len(masked)} recorded parameter(s) now "
            f"have a mask (e.g. {masked[0]!r}) but the run was created dense (no mask, "
            "sparse=None). Create the Recorder after ws.sparse.sparsify(model, ...)."
        )


def double_step_error(path: object, step: int) -> ConfigError:
    """The error of a direct ``rec.step()`` on a Recorder attached to an optimizer."""
    return ConfigError(
        f"one record per optimizer step: the Recorder of '{path}' is attached to an optimizer "
        f"(rec.attach(opt)), which records every opt.step() already, and rec.step() was "
        f"called as well (after step {step}), which would count each step twice. Use either "
        "rec.attach(opt) or rec.step() after opt.step(), not both (with attach, pass the "
        "loss with rec.log(loss))."
    )
