"""Spawned processes of the distributed-recording tests (torch.multiprocessing, gloo on CPU).

Every rank trains :func:`testutil.tiny_model` on its half of each global batch of
:func:`testutil.batch`; DistributedDataParallel averages the gradients, so the replicas move
like one process on the whole batch. All ranks call the Recorder; only rank 0 records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from testutil import batch, sgd, tiny_model
from torch import nn

import weightscope as ws


def ddp_record(rank: int, world: int, init_file: str, out: str, steps: int, every: int) -> None:
    """Train with DDP, recording ``out/run.zarr`` (rank 0) and a per-rank probe run."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        model = tiny_model()
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = sgd(ddp)
        rec = ws.Recorder(Path(out) / "run.zarr", model, every=every)  # rank auto-detected
        probe = ws.Recorder(Path(out) / f"probe{rank}.zarr", model, every=1).attach(opt)
        part = 8 // world
        for s in range(1, steps + 1):
            x, y = batch(s)
            x, y = x[rank * part:(rank + 1) * part], y[rank * part:(rank + 1) * part]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(ddp(x), y)
            loss.backward()
            opt.step()
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            rec.step(loss=mean / world)
            probe.log(loss=loss)
        rec.checkpoint()
        rec.close()
        probe.close()
        report = {"active": rec.active, "rank": rec.rank, "step_count": rec.step_count,
                  "probe_steps": probe.step_count, "repr": repr(rec)}
        Path(out, f"report{rank}.json").write_text(json.dumps(report))
        dist.barrier()  # no rank tears the group down while another is still in a collective
    finally:
        dist.destroy_process_group()


def single_record(path: str | os.PathLike[str], steps: int, every: int, halves: int,
                  checkpoint_at: int | None = None) -> None:
    """One process on the same global batches: ``halves=1`` the whole batch with the mean loss,
    ``halves=2`` the two halves as accumulated micro-batches (loss / 2 each)."""
    model = tiny_model()
    opt = sgd(model)
    with ws.Recorder(path, model, every=every) as rec:
        for s in range(1, steps + 1):
            x, y = batch(s)
            opt.zero_grad(set_to_none=True)
            part, total = 8 // halves, torch.zeros(())
            for h in range(halves):
                sl = slice(h * part, (h + 1) * part)
                loss = nn.functional.cross_entropy(model(x[sl]), y[sl]) / halves
                loss.backward()
                total = total + loss.detach()
            opt.step()
            rec.step(loss=total)
            if s == checkpoint_at:
                rec.checkpoint()


def fsdp_record(rank: int, world: int, init_file: str, out: str, steps: int, every: int) -> None:
    """Train with FSDP2 (``fully_shard`` per layer and at the root), recording ``out/run.zarr``."""
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        model = tiny_model()
        for layer in model:
            if isinstance(layer, (nn.Linear, nn.Conv1d)):
                fully_shard(layer)
        fully_shard(model)
        opt = sgd(model)
        rec = ws.Recorder(Path(out) / "run.zarr", model, every=every)
        part = 8 // world
        for s in range(1, steps + 1):
            x, y = batch(s)
            x, y = x[rank * part:(rank + 1) * part], y[rank * part:(rank + 1) * part]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            mean = loss.detach().clone()
            dist.all_reduce(mean)
            rec.step(loss=mean / world)
            if s == steps - 1:
                rec.checkpoint()  # an off-grid snapshot, gathered by every rank
        rec.close()
        report = {"active": rec.active, "step_count": rec.step_count, "repr": repr(rec),
                  "local": {n: list(p.to_local().shape) for n, p in model.named_parameters()}}
        try:  # rank 0's error reaches every rank (no rank waits in a collective)
            ws.Recorder(Path(out) / "run.zarr", model, every=every)
        except ws.errors.RunExistsError as err:
            report["error"] = str(err)
        again = ws.Recorder(Path(out) / "run.zarr", model, every=every, resume=True)
        report["resumed_at"] = again.step_count  # every rank learns rank 0's resume point
        again.close()
        Path(out, f"report{rank}.json").write_text(json.dumps(report))
        dist.barrier()  # no rank tears the group down while another is still in a collective
    finally:
        dist.destroy_process_group()


def hf_ddp_record(rank: int, world: int, port: int, out: str, steps: int, every: int) -> None:
    """A Hugging Face Trainer on ``world`` CPU processes (gloo) with the weightscope callback."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import transformers as hf

    from weightscope.integrations.transformers import WeightscopeCallback

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_model()

        def forward(self, x, labels):
            return {"loss": nn.functional.cross_entropy(self.net(x), labels)}

    gen = torch.Generator().manual_seed(7)
    data = [{"x": torch.randn(16, generator=gen), "labels": torch.randint(0, 3, (), generator=gen)}
            for _ in range(32)]
    args = hf.TrainingArguments(
        output_dir=str(Path(out) / "out"), max_steps=steps, per_device_train_batch_size=4,
        gradient_accumulation_steps=2, logging_steps=1, max_grad_norm=0.0, seed=0,
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
        ddp_backend="gloo", remove_unused_columns=False)
    callback = WeightscopeCallback(Path(out) / "run.zarr", every=every)
    trainer = hf.Trainer(model=Tiny(), args=args, train_dataset=data, callbacks=[callback])
    trainer.remove_callback(hf.PrinterCallback)
    trainer.train()
    weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    if rank == 0:
        torch.save(weights, Path(out) / "final.pt")
    report = {"active": callback.recorder.active, "world": trainer.args.world_size,
              "repr": repr(callback.recorder)}
    Path(out, f"report{rank}.json").write_text(json.dumps(report))
