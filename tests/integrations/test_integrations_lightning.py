"""Lightning callback: real fits give the store of a plain loop; checkpoint resume; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import tiny_model
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import weightscope as ws
from weightscope.errors import ConfigError, ResumeError, RunExistsError

pl = pytest.importorskip("lightning.pytorch")
from weightscope.integrations.lightning import WeightscopeCallback  # noqa: E402

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


def _data() -> TensorDataset:
    gen = torch.Generator().manual_seed(7)
    n = ACCUM * MICRO * STEPS_PER_EPOCH
    x, y = torch.randn(n, 16, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return TensorDataset(x, y)


def _fit(tmp_path, callbacks, max_steps, ckpt_path=None, checkpoint_every_epoch=False):
    ckpt = [pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2,
                                         save_top_k=-1)]
    trainer = pl.Trainer(
        max_steps=max_steps, accumulate_grad_batches=ACCUM, accelerator="cpu", devices=1,
        logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=checkpoint_every_epoch, default_root_dir=tmp_path,
        callbacks=[*callbacks, *(ckpt if checkpoint_every_epoch else [])])
    trainer.fit(Tiny(), DataLoader(_data(), batch_size=MICRO), ckpt_path=ckpt_path)
    return trainer


def _plain(path, steps, every):
    """The same optimizer steps in a plain loop, recorded with Recorder.attach + log."""
    module = Tiny()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    loader = DataLoader(_data(), batch_size=MICRO)
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


def assert_same_run(got, want):
    assert got.param.values.tolist() == want.param.values.tolist()
    assert got.step.values.tolist() == want.step.values.tolist()
    assert got.iteration.values.tolist() == want.iteration.values.tolist()
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    for name in ("distance", "loss", "lr"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert got.attrs["complete"] and got.attrs["total_steps"] == want.attrs["total_steps"]


def test_fit_with_accumulation_equals_plain_loop(tmp_path):
    _fit(tmp_path, [WeightscopeCallback(tmp_path / "pl.zarr", every=3)], max_steps=7)
    got = ws.open_run(tmp_path / "pl.zarr")
    want = _plain(tmp_path / "plain.zarr", steps=7, every=3)
    assert got.step.values.tolist() == [0, 3, 6, 7]  # one snapshot per optimizer step, not batch
    assert got.iteration.values.tolist() == list(range(1, 8))
    assert_same_run(got, want)
    assert got.lr.values.tolist() == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625]


class _Crash(pl.Callback):
    """Raise in the middle of the third epoch (after optimizer step 5)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 5:
            raise RuntimeError("node lost")


def test_crash_then_resume_from_checkpoint_continues_the_run(tmp_path):
    # reference: one uninterrupted fit, with the same checkpoints (one per epoch = 2 steps)
    ref = tmp_path / "ref"
    _fit(ref, [WeightscopeCallback(ref / "run.zarr", every=3)], max_steps=7,
         checkpoint_every_epoch=True)
    want = ws.open_run(ref / "run.zarr")
    assert want.step.values.tolist() == [0, 2, 3, 4, 6, 7]  # + checkpoint snapshots at 2, 4

    run = tmp_path / "run.zarr"
    with pytest.raises(RuntimeError, match="node lost"):
        _fit(tmp_path, [WeightscopeCallback(run, every=3), _Crash()], max_steps=7,
             checkpoint_every_epoch=True)
    crashed = ws.open_run(run)
    assert crashed.attrs["complete"] is False  # aborted: stored, resumable
    assert crashed.step.values.tolist() == [0, 2, 3, 4]
    assert crashed.sizes["iteration"] == 5
    ckpt = tmp_path / "ckpt" / "epoch=1-step=4.ckpt"
    assert torch.load(ckpt, weights_only=False)["callbacks"][
        WeightscopeCallback(run).state_key] == {"path": str(run), "step": 4}

    _fit(tmp_path, [WeightscopeCallback(run, every=3, overwrite=True)], max_steps=7,
         ckpt_path=ckpt, checkpoint_every_epoch=True)
    assert_same_run(ws.open_run(run), want)


def test_fit_stopped_then_continued_from_its_last_checkpoint(tmp_path):
    ref = tmp_path / "ref"
    _fit(ref, [WeightscopeCallback(ref / "run.zarr", every=2)], max_steps=6,
         checkpoint_every_epoch=True)
    run = tmp_path / "run.zarr"
    _fit(tmp_path, [WeightscopeCallback(run, every=2)], max_steps=4, checkpoint_every_epoch=True)
    assert ws.open_run(run).attrs["complete"] is True
    _fit(tmp_path, [WeightscopeCallback(run, every=2)], max_steps=6,
         ckpt_path=tmp_path / "ckpt" / "epoch=1-step=4.ckpt", checkpoint_every_epoch=True)
    got = ws.open_run(run)
    assert got.step.values.tolist() == [0, 2, 4, 6]
    assert_same_run(got, ws.open_run(ref / "run.zarr"))


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="decides resume= itself"):
        WeightscopeCallback(tmp_path / "run.zarr", resume=True)
    with pytest.raises(ConfigError, match=r"'evry' is not an argument of weightscope\.Recorder"):
        WeightscopeCallback(tmp_path / "run.zarr", evry=3)
    with pytest.raises(ConfigError, match=r"every must be an int >= 1.*got 0"):  # before the fit
        WeightscopeCallback(tmp_path / "run.zarr", every=0)
    _fit(tmp_path, [WeightscopeCallback(tmp_path / "run.zarr", every=2)], max_steps=2,
         checkpoint_every_epoch=True)
    with pytest.raises(RunExistsError, match="pass overwrite=True"):
        _fit(tmp_path, [WeightscopeCallback(tmp_path / "run.zarr", every=2)], max_steps=2)
    _fit(tmp_path, [WeightscopeCallback(tmp_path / "run.zarr", every=2, overwrite=True)],
         max_steps=2)
    with pytest.raises(ResumeError, match=r"continues from global step 2.*no run at"):
        _fit(tmp_path, [WeightscopeCallback(tmp_path / "other.zarr", every=2)], max_steps=4,
             ckpt_path=tmp_path / "ckpt" / "epoch=0-step=2.ckpt")
    assert not (tmp_path / "other.zarr").exists()


class TinyDDP(Tiny):
    """Each rank trains on every other sample, in order (a DistributedSampler without shuffle)."""

    def train_dataloader(self):
        sampler = torch.utils.data.DistributedSampler(
            _data(), num_replicas=self.trainer.world_size, rank=self.global_rank, shuffle=False)
        return DataLoader(_data(), batch_size=MICRO, sampler=sampler)


def _ddp_reference(path, steps, every, world=2):
    """One process replaying DDP's reduction: per-rank accumulated gradients, then their mean."""
    module = Tiny()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    x, y = _data().tensors
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


def test_ddp_spawn_two_processes_records_once(tmp_path):
    path = tmp_path / "ddp.zarr"
    trainer = pl.Trainer(
        strategy="ddp_spawn", accelerator="cpu", devices=2, max_steps=3,
        accumulate_grad_batches=ACCUM, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
        use_distributed_sampler=False, callbacks=[WeightscopeCallback(path, every=2)])
    trainer.fit(TinyDDP())
    got = ws.open_run(path)
    assert got.step.values.tolist() == [0, 2, 3] and got.attrs["complete"]
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # Lightning gives each of the 2 CPU processes 1 thread
    try:
        want = _ddp_reference(tmp_path / "ref.zarr", steps=3, every=2)
    finally:
        torch.set_num_threads(old)
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    np.testing.assert_array_equal(got.distance.values, want.distance.values)
    np.testing.assert_array_equal(got.lr.values, want.lr.values)
    assert got.loss.notnull().all()  # rank 0's own loss (not averaged over ranks)
