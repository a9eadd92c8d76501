"""Hugging Face pieces of tests/integrations/test_integrations_transformers.py: a tiny model
behind the Trainer's interface, its data, Trainers and their plain-loop oracle.

Importing this module imports transformers, so the tests load it in a fixture (after
``pytest.importorskip``) and collecting the suite stays free of transformers.
"""

from __future__ import annotations

import torch
import transformers as hf
from testutil import tiny_model
from torch import nn

import weightscope as ws
from weightscope.integrations.transformers import WeightscopeCallback

__all__ = ["ACCUM", "MICRO", "CrashOnce", "Tiny", "WeightscopeCallback", "data", "hf",
           "optimizers", "plain", "trainer"]

ACCUM, MICRO = 2, 4  # micro-batches per optimizer step, samples per micro-batch


class Tiny(nn.Module):
    """tiny_model() behind the interface the Trainer expects; remembers its training batches."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_model()
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x, labels):
        if self.training:
            self.seen.append((x.clone(), labels.clone()))
        return {"loss": nn.functional.cross_entropy(self.net(x), labels)}


def optimizers(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)


def data():
    gen = torch.Generator().manual_seed(7)
    return [{"x": torch.randn(16, generator=gen), "labels": torch.randint(0, 3, (), generator=gen)}
            for _ in range(24)]  # 3 optimizer steps per epoch


def trainer(tmp_path, callbacks, max_steps, save_steps=None):
    model = Tiny()
    args = hf.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=max_steps, per_device_train_batch_size=MICRO,
        gradient_accumulation_steps=ACCUM, logging_steps=1, max_grad_norm=0.0, seed=0,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        report_to="none", disable_tqdm=True, use_cpu=True, remove_unused_columns=False)
    result = hf.Trainer(model=model, args=args, train_dataset=data(),
                        optimizers=optimizers(model), callbacks=callbacks)
    result.remove_callback(hf.PrinterCallback)
    return result


def plain(path, seen, every):
    """Replay the Trainer's micro-batches in a plain loop, recorded with attach + log."""
    model = Tiny()
    opt, sched = optimizers(model)
    with ws.Recorder(path, model, every=every) as rec:
        rec.attach(opt)
        for i in range(0, len(seen), ACCUM):
            total = torch.zeros(())
            for x, y in seen[i:i + ACCUM]:
                loss = model(x, y)["loss"] / ACCUM
                loss.backward()
                total = total + loss.detach()
            opt.step()
            rec.log(loss=total)
            opt.zero_grad()
            sched.step()
    return ws.open_run(path)


class CrashOnce(hf.TrainerCallback):
    """Raise once, at the end of optimizer step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            self.at = -1
            raise RuntimeError("node lost")
