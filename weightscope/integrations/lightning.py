"""Record a Lightning fit: :class:`WeightscopeCallback` (``pip install 'weightscope[lightning]'``).

The callback creates a :class:`~weightscope.Recorder` when training starts, records after every
real optimizer step (``trainer.global_step`` is the step, so gradient accumulation does not
repeat snapshots), logs the step's loss and learning rate, and closes the run when training
ends (or leaves it resumable when the fit fails). Only global rank 0 records. A fit resumed
from a Lightning checkpoint (``trainer.fit(..., ckpt_path=...)``) continues the same run.

Usage::

    from weightscope.integrations.lightning import WeightscopeCallback

    trainer = lightning.pytorch.Trainer(
        max_steps=1000, accumulate_grad_batches=2,
        callbacks=[WeightscopeCallback("run.zarr", every=10, sample=0.1)])
    trainer.fit(model, loader)                      # records run.zarr
    trainer.fit(model, loader, ckpt_path="last")    # a resumed fit continues run.zarr

Examples
--------
>>> import os, tempfile, torch
>>> import lightning.pytorch as pl
>>> from torch import nn
>>> import weightscope as ws
>>> class Tiny(pl.LightningModule):
...     def __init__(self):
...         super().__init__()
...         self.net = nn.Linear(4, 2)
...     def training_step(self, batch, batch_idx):
...         return self.net(batch[0]).pow(2).mean()
...     def configure_optimizers(self):
...         return torch.optim.SGD(self.parameters(), lr=0.1)
>>> tmp = tempfile.mkdtemp()
>>> data = torch.utils.data.TensorDataset(torch.randn(16, 4))
>>> trainer = pl.Trainer(max_steps=3, accumulate_grad_batches=2, logger=False,
...                      enable_checkpointing=False, enable_progress_bar=False,
...                      enable_model_summary=False, default_root_dir=tmp,
...                      callbacks=[WeightscopeCallback(os.path.join(tmp, "run.zarr"), every=2)])
>>> trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=2))
>>> ds = ws.open_run(os.path.join(tmp, "run.zarr"))
>>> ds.step.values.tolist(), ds.iteration.values.tolist(), bool(ds.attrs["complete"])
([0, 2, 3], [1, 2, 3], True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import ResumeError
from ..record import Recorder
from ..store import paths
from ._common import check_recorder_kwargs, require

pl = require("lightning.pytorch", "lightning", "Lightning")

__all__ = ["WeightscopeCallback"]


class WeightscopeCallback(pl.Callback):
    """Record the weights of a Lightning fit into a weightscope run.

    Parameters
    ----------
    path : str or os.PathLike
        Where the run goes (a directory ``run.zarr`` or an fsspec URL).
    **recorder_kwargs
        Any :class:`~weightscope.Recorder` argument except ``model``, ``resume`` and ``rank``,
        which the callback sets: the LightningModule, the checkpoint's step, the global rank.

    Notes
    -----
    * Step ``s`` of the run is ``trainer.global_step == s``: the callback records in
      ``on_train_batch_end`` whenever the global step advanced, so micro-batches of gradient
      accumulation add no steps. Snapshot 0 holds the weights when training starts.
    * ``loss`` is the mean of the step's micro-batch losses (``outputs["loss"]`` of
      ``training_step``, which Lightning divides by ``accumulate_grad_batches``), kept on the
      device (no sync). It is rank 0's own loss under DDP (not averaged over ranks).
    * Every rank calls its Recorder at the same hooks, so a model sharded with FSDP2
      (DTensor parameters) is gathered by all ranks and written by rank 0 (untested with
      Lightning's strategies; see :mod:`weightscope.record.distributed`).
    * ``lr`` is ``param_groups[0]["lr"]`` of the optimizer read right before it steps (so
      a per-step scheduler's change shows from the next step on, as with
      :meth:`Recorder.attach <weightscope.Recorder.attach>`).
    * Saving a Lightning checkpoint calls :meth:`Recorder.checkpoint
      <weightscope.Recorder.checkpoint>`: the run gets a snapshot at that step (off the
      ``every`` grid unless it falls on it) and is written up to it, so a fit resumed from
      that checkpoint continues the run exactly. ``overwrite=True`` only applies to fits that
      start at step 0; a resumed fit always continues the run.
    * Manual optimization works the same; if one batch advances the global step by more
      than one (several optimizers), each of those steps is recorded, the first one with
      the batch's whole weight change and the last one with its loss and lr.
    """

    def __init__(self, path: paths.PathLike, **recorder_kwargs: Any) -> None:
        self.path = path
        self.recorder_kwargs = check_recorder_kwargs(recorder_kwargs)
        self._rec: Recorder | None = None
        self._trainer: pl.Trainer | None = None
        self._loaded: dict[str, Any] | None = None
        self._step = 0  # last global step given to the Recorder
        self._loss: torch.Tensor | None = None
        self._micro = 0  # micro-batches whose loss is in self._loss
        self._lr: float | None = None

    @property
    def recorder(self) -> Recorder | None:
        """The Recorder of the current (or last) fit; None before training starts."""
        return self._rec

    @property
    def state_key(self) -> str:
        return self._generate_state_key(path=str(self.path))

    # ------------------------------------------------------------------ training hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._rec is not None and not self._rec.closed:
            self._rec.abort()
        step = int(trainer.global_step)
        self._check_resume(trainer, step)
        kwargs = dict(self.recorder_kwargs)
        if step > 0:
            kwargs.pop("overwrite", None)
        self._rec = Recorder(self.path, pl_module, rank=trainer.global_rank,
                             resume=step if step > 0 else False, **kwargs)
        self._trainer, self._step, self._loaded = trainer, step, None
        self._loss, self._micro, self._lr = None, 0, None

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if self._recording():
            lr = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
            self._lr = None if lr is None else float(lr)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._recording():
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.detach().reshape(())
            self._loss = loss if self._loss is None else self._loss + loss
            self._micro += 1
        self._catch_up(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._rec is not None:
            self._rec.close()
        self._trainer = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if self._rec is not None:
            self._rec.abort()  # everything recorded is stored; the run stays resumable
        self._trainer = None

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if self._recording():
            self._catch_up(trainer)
            self._rec.checkpoint()  # type: ignore[union-attr]

    def state_dict(self) -> dict[str, Any]:
        step = self._trainer.global_step if self._trainer is not None else self._step
        return {"path": str(self.path), "step": int(step)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = dict(state_dict)

    # ------------------------------------------------------------------ internals
    def _recording(self) -> bool:
        # every rank calls its Recorder: inert ones (DDP ranks > 0) return at once, and the
        # ranks of a sharded (FSDP2) model must gather the snapshots together
        return self._rec is not None and not self._rec.closed

    def _check_resume(self, trainer: pl.Trainer, step: int) -> None:
        saved = None if self._loaded is None else self._loaded.get("step")
        if saved is not None and int(saved) != step:
            raise ResumeError(
                f"the checkpoint's weightscope state is at step {saved} but the fit resumes at "
                f"global step {step}; the checkpoint is inconsistent. Resume from a checkpoint "
                "saved by Lightning with this callback."
            )
        if step > 0 and trainer.is_global_zero and not paths.exists(
                self.path, self.recorder_kwargs.get("storage_options")):
            raise ResumeError(
                f"the fit continues from global step {step} (a checkpoint), but there is no run "
                f"at '{self.path}' to continue, and a run starts at step 0. Pass the path of "
                "the run recorded before the checkpoint, or start the fit without ckpt_path."
            )

    def _catch_up(self, trainer: pl.Trainer) -> None:
        """Record the optimizer steps taken since the last call (usually one or none)."""
        target = int(trainer.global_step)
        while self._step < target:
            self._step += 1
            last = self._step == target
            self._rec.step(loss=self._mean_loss(trainer) if last else None,  # type: ignore
                           lr=self._lr if last else None)

    def _mean_loss(self, trainer: pl.Trainer) -> torch.Tensor | None:
        loss, n = self._loss, self._micro
        self._loss, self._micro = None, 0
        if loss is None:
            return None
        automatic = trainer.lightning_module.automatic_optimization
        accumulate = trainer.accumulate_grad_batches if automatic else 1
        return loss if n == accumulate else loss * (accumulate / n)
