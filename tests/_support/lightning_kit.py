"""Lightning pieces of tests/integrations/test_integrations_lightning.py: a tiny
LightningModule, its data, fits and their plain-loop oracles.

Importing this module imports Lightning, so the tests load it in a fixture (after
``pytest.importorskip``) and collecting the suite stays free of Lightning.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from testutil import tiny_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import weightscope as ws
from weightscope.integrations.lightning import WeightscopeCallback

__all__ = ["ACCUM", "MICRO", "STEPS_PER_EPOCH", "Crash", "Tiny", "TinyDDP", "WeightscopeCallback",
           "data", "ddp_reference", "fit", "pl", "plain"]

ACCUM, MICRO = 2, 4  # micro-batches per optimizer step, samples per micro-batch
STEPS_PER_EPOCH = 2


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_model()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def data() -> TensorDataset:
    gen = torch.Generator().manual_seed(7)
    n = ACCUM * MICRO * STEPS_PER_EPOCH
    x, y = torch.randn(n, 16, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return TensorDataset(x, y)


def fit(tmp_path, callbacks, max_steps, ckpt_path=None, checkpoint_every_epoch=False):
    ckpt = [pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2,
                                         save_top_k=-1)]
    trainer = pl.Trainer(
        max_steps=max_steps, accumulate_grad_batches=ACCUM, accelerator="cpu", devices=1,
        logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=checkpoint_every_epoch, default_root_dir=tmp_path,
        callbacks=[*callbacks, *(ckpt if checkpoint_every_epoch else [])])
    trainer.fit(Tiny(), DataLoader(data(), batch_size=MICRO), ckpt_path=ckpt_path)
    return trainer


def plain(path, steps, every):
    """The same optimizer steps in a plain loop, recorded with Recorder.attach + log."""
    module = Tiny()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    loader = DataLoader(data(), batch_size=MICRO)
    with ws.Recorder(path, module, every=every) as rec:
        rec.attach(opt)
        step = 0
        while step < steps:
            batches = list(loader)
            for i in range(0, len(batches), ACCUM):
                total = None
                for x, y in batches[i:i + ACCUM]:
                    loss = nn.functional.cross_entropy(module.net(x), y) / ACCUM
                    loss.backward()
                    total = loss.detach() if total is None else total + loss.detach()
                opt.step()
                rec.log(loss=total)
                opt.zero_grad()
                sched.step()
                step += 1
                if step == steps:
                    break
    return ws.open_run(path)


class Crash(pl.Callback):
    """Raise in the middle of the third epoch (after optimizer step 5)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 5:
            raise RuntimeError("node lost")


class TinyDDP(Tiny):
    """Each rank trains on every other sample, in order (a DistributedSampler without shuffle)."""

    def train_dataloader(self):
        sampler = torch.utils.data.DistributedSampler(
            data(), num_replicas=self.trainer.world_size, rank=self.global_rank, shuffle=False)
        return DataLoader(data(), batch_size=MICRO, sampler=sampler)


def ddp_reference(path, steps, every, world=2):
    """One process replaying DDP's reduction: per-rank accumulated gradients, then their mean."""
    module = Tiny()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    x, y = data().tensors
    params = list(module.parameters())
    with ws.Recorder(path, module, every=every) as rec:
        rec.attach(opt)
        for _ in range(steps):  # an epoch is one step here (16 samples = 2 ranks x 2 x 4)
            grads = []
            for r in range(world):
                idx = list(range(r, len(x), world))  # DistributedSampler(shuffle=False)
                for k in range(ACCUM):
                    sl = idx[k * MICRO:(k + 1) * MICRO]
                    loss = nn.functional.cross_entropy(module.net(x[sl]), y[sl]) / ACCUM
                    loss.backward()
                grads.append([p.grad.clone() for p in params])
                opt.zero_grad()
            for p, *g in zip(params, *grads):
                p.grad = sum(g[1:], g[0]) / world
            opt.step()
            opt.zero_grad()
            sched.step()
    return ws.open_run(path)
