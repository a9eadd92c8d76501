"""Record a Hugging Face ``Trainer`` run: :class:`WeightscopeCallback` (``weightscope[hf]``).

The callback creates a :class:`~weightscope.Recorder` when training begins, records after every
optimizer step (``state.global_step`` is the step, so gradient accumulation does not repeat
snapshots), attaches the loss the Trainer logs and the learning rate, and closes the run when
training ends. Only the world's process zero records. ``trainer.train(resume_from_checkpoint=
...)`` continues the same run.

Usage::

    from weightscope.integrations.transformers import WeightscopeCallback

    args = TrainingArguments("out", max_steps=1000, gradient_accumulation_steps=2,
                             logging_steps=1)              # logging_steps=1: a loss every step
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      callbacks=[WeightscopeCallback("run.zarr", every=10, sample=0.1)])
    trainer.train()                                        # records run.zarr
    trainer.train(resume_from_checkpoint=True)             # a resumed run continues run.zarr

Examples
--------
>>> import os, tempfile, torch
>>> from torch import nn
>>> from transformers import PrinterCallback, Trainer, TrainingArguments
>>> import weightscope as ws
>>> class Tiny(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = nn.Linear(4, 2)
...     def forward(self, x, labels):
...         return {"loss": nn.functional.cross_entropy(self.fc(x), labels)}
>>> tmp = tempfile.mkdtemp()
>>> data = [{"x": torch.randn(4), "labels": torch.tensor(i % 2)} for i in range(16)]
>>> args = TrainingArguments(tmp, max_steps=3, per_device_train_batch_size=2,
...                          gradient_accumulation_steps=2, logging_steps=1, use_cpu=True,
...                          report_to="none", save_strategy="no", disable_tqdm=True)
>>> trainer = Trainer(model=Tiny(), args=args, train_dataset=data,
...                   callbacks=[WeightscopeCallback(os.path.join(tmp, "run.zarr"), every=2)])
>>> trainer.remove_callback(PrinterCallback)
>>> _ = trainer.train()
>>> ds = ws.open_run(os.path.join(tmp, "run.zarr"))
>>> ds.step.values.tolist(), ds.iteration.values.tolist(), int(ds.loss.notnull().sum())
([0, 2, 3], [1, 2, 3], 3)
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ResumeError
from ..record import Recorder
from ..store import paths
from ._common import check_recorder_kwargs, require

hf = require("transformers", "hf", "Hugging Face")

__all__ = ["WeightscopeCallback"]


class WeightscopeCallback(hf.TrainerCallback):
    """Record the weights of a Hugging Face ``Trainer`` run into a weightscope run.

    Parameters
    ----------
    path : str or os.PathLike
        Where the run goes (a directory ``run.zarr`` or an fsspec URL).
    **recorder_kwargs
        Any :class:`~weightscope.Recorder` argument except ``model``, ``resume`` and ``rank``,
        which the callback sets: the Trainer's model, the checkpoint's step, the process.

    Notes
    -----
    * Step ``s`` of the run is ``state.global_step == s``, recorded in ``on_step_end`` (after
      the optimizer step and ``zero_grad``). Snapshot 0 holds the weights when training begins.
    * ``loss`` is ``logs["loss"]`` of ``on_log``, attached to the step it is logged at: with
      ``logging_steps=1`` every step has the mean of its micro-batch losses, averaged over
      processes by the Trainer; with ``logging_steps=n`` every n-th step holds the mean over
      its last n steps and the others have none.
    * ``lr`` is ``param_groups[0]["lr"]`` of the optimizer in ``on_optimizer_step``: the rate
      the step used (the scheduler steps after it).
    * ``on_save`` (right after the Trainer wrote a checkpoint) calls
      :meth:`Recorder.checkpoint <weightscope.Recorder.checkpoint>`: the run gets a snapshot
      at that step (off the ``every`` grid unless it falls on it) and is written up to it, so
      ``train(resume_from_checkpoint=...)`` continues the run exactly. (A process killed
      between the two leaves a checkpoint the run cannot resume at; resuming from it raises
      :class:`~weightscope.errors.ResumeError` listing the steps it can.) ``overwrite=True``
      only applies to runs that start at step 0.
    * Every process calls its Recorder at the same events, so a model sharded with FSDP2
      (DTensor parameters) is gathered by all processes and written by process zero
      (untested with accelerate's FSDP; see :mod:`weightscope.record.distributed`).
    * The Trainer has no exception event: if ``train()`` raises, the run stays open until
      the interpreter exits, when weightscope stores it as incomplete (resumable). Call
      ``callback.recorder.abort()`` in your ``except`` block to store it at once; calling
      ``train()`` again does that too.
    """

    def __init__(self, path: paths.PathLike, **recorder_kwargs: Any) -> None:
        self.path = path
        self.recorder_kwargs = check_recorder_kwargs(recorder_kwargs)
        self._rec: Recorder | None = None
        self._step = 0  # last global step given to the Recorder
        self._lr: float | None = None

    @property
    def recorder(self) -> Recorder | None:
        """The Recorder of the current (or last) ``train()``; None before training begins."""
        return self._rec

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args: Any, state: Any, control: Any, model: nn.Module | None = None,
                       **kwargs: Any) -> None:
        if self._rec is not None and not self._rec.closed:
            self._rec.abort()  # a previous train() failed: store it before continuing it
        step = int(state.global_step)
        rank = 0 if state.is_world_process_zero else max(int(args.process_index), 1)
        if step > 0 and rank == 0:
            self._check_resume(step)
        options = dict(self.recorder_kwargs)
        if step > 0:
            options.pop("overwrite", None)
        self._rec = Recorder(self.path, model, rank=rank, resume=step if step > 0 else False,
                             **options)
        self._step, self._lr = step, None

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                          **kwargs: Any) -> None:
        if self._recording() and optimizer is not None and optimizer.param_groups:
            lr = optimizer.param_groups[0].get("lr")
            self._lr = None if lr is None else float(lr)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._recording():
            return
        target = int(state.global_step)
        while self._step < target:
            self._step += 1
            self._rec.step(lr=self._lr if self._step == target else None)  # type: ignore

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._recording() and self._step == state.global_step:
            self._rec.checkpoint()  # type: ignore[union-attr]

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        loss = (logs or {}).get("loss")
        if (self._recording() and isinstance(loss, (int, float)) and self._step > 0
                and self._step == state.global_step):
            self._rec.log(loss=float(loss))  # type: ignore[union-attr]

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._rec is not None:
            self._rec.close()

    # ------------------------------------------------------------------ internals
    def _recording(self) -> bool:
        # every rank calls its Recorder: inert ones (DDP ranks > 0) return at once, and the
        # ranks of a sharded (FSDP2) model must gather the snapshots together
        return self._rec is not None and not self._rec.closed

    def _check_resume(self, step: int) -> None:
        if not paths.exists(self.path, self.recorder_kwargs.get("storage_options")):
            raise ResumeError(
                f"training resumes from global step {step} (a checkpoint), but there is no run "
                f"at '{self.path}' to continue, and a run starts at step 0. Pass the path of "
                "the run recorded before the checkpoint, or train without "
                "resume_from_checkpoint."
            )
