"""Lightning callback: real fits give the store of a plain loop; checkpoint resume; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weightscope as ws
from weightscope.errors import ConfigError, ResumeError, RunExistsError


@pytest.fixture(scope="module")
def kit():
    """tests/_support/lightning_kit.py, imported only when a test runs: collecting the suite
    does not import Lightning, and without it these tests skip."""
    pytest.importorskip("lightning.pytorch")
    import lightning_kit

    return lightning_kit


def assert_same_run(got, want):
    assert got.param.values.tolist() == want.param.values.tolist()
    assert got.step.values.tolist() == want.step.values.tolist()
    assert got.iteration.values.tolist() == want.iteration.values.tolist()
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    for name in ("distance", "loss", "lr"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert got.attrs["complete"] and got.attrs["total_steps"] == want.attrs["total_steps"]


def test_fit_with_accumulation_equals_plain_loop(kit, tmp_path):
    kit.fit(tmp_path, [kit.WeightscopeCallback(tmp_path / "pl.zarr", every=3)], max_steps=7)
    got = ws.open_run(tmp_path / "pl.zarr")
    want = kit.plain(tmp_path / "plain.zarr", steps=7, every=3)
    assert got.step.values.tolist() == [0, 3, 6, 7]  # one snapshot per optimizer step, not batch
    assert got.iteration.values.tolist() == list(range(1, 8))
    assert_same_run(got, want)
    assert got.lr.values.tolist() == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625]


def test_crash_then_resume_from_checkpoint_continues_the_run(kit, tmp_path):
    # reference: one uninterrupted fit, with the same checkpoints (one per epoch = 2 steps)
    ref = tmp_path / "ref"
    kit.fit(ref, [kit.WeightscopeCallback(ref / "run.zarr", every=3)], max_steps=7,
            checkpoint_every_epoch=True)
    want = ws.open_run(ref / "run.zarr")
    assert want.step.values.tolist() == [0, 2, 3, 4, 6, 7]  # + checkpoint snapshots at 2, 4

    run = tmp_path / "run.zarr"
    with pytest.raises(RuntimeError, match="node lost"):
        kit.fit(tmp_path, [kit.WeightscopeCallback(run, every=3), kit.Crash()], max_steps=7,
                checkpoint_every_epoch=True)
    crashed = ws.open_run(run)
    assert crashed.attrs["complete"] is False  # aborted: stored, resumable
    assert crashed.step.values.tolist() == [0, 2, 3, 4]
    assert crashed.sizes["iteration"] == 5
    ckpt = tmp_path / "ckpt" / "epoch=1-step=4.ckpt"
    assert torch.load(ckpt, weights_only=False)["callbacks"][
        kit.WeightscopeCallback(run).state_key] == {"path": str(run), "step": 4}

    kit.fit(tmp_path, [kit.WeightscopeCallback(run, every=3, overwrite=True)], max_steps=7,
            ckpt_path=ckpt, checkpoint_every_epoch=True)
    assert_same_run(ws.open_run(run), want)


def test_fit_stopped_then_continued_from_its_last_checkpoint(kit, tmp_path):
    ref = tmp_path / "ref"
    kit.fit(ref, [kit.WeightscopeCallback(ref / "run.zarr", every=2)], max_steps=6,
            checkpoint_every_epoch=True)
    run = tmp_path / "run.zarr"
    kit.fit(tmp_path, [kit.WeightscopeCallback(run, every=2)], max_steps=4,
            checkpoint_every_epoch=True)
    assert ws.open_run(run).attrs["complete"] is True
    kit.fit(tmp_path, [kit.WeightscopeCallback(run, every=2)], max_steps=6,
            ckpt_path=tmp_path / "ckpt" / "epoch=1-step=4.ckpt", checkpoint_every_epoch=True)
    got = ws.open_run(run)
    assert got.step.values.tolist() == [0, 2, 4, 6]
    assert_same_run(got, ws.open_run(ref / "run.zarr"))


def test_errors(kit, tmp_path):
    with pytest.raises(ConfigError, match="decides resume= itself"):
        kit.WeightscopeCallback(tmp_path / "run.zarr", resume=True)
    with pytest.raises(ConfigError, match=r"'evry' is not an argument of weightscope\.Recorder"):
        kit.WeightscopeCallback(tmp_path / "run.zarr", evry=3)
    with pytest.raises(ConfigError, match=r"every must be an int >= 1.*got 0"):  # before the fit
        kit.WeightscopeCallback(tmp_path / "run.zarr", every=0)
    kit.fit(tmp_path, [kit.WeightscopeCallback(tmp_path / "run.zarr", every=2)], max_steps=2,
            checkpoint_every_epoch=True)
    with pytest.raises(RunExistsError, match="pass overwrite=True"):
        kit.fit(tmp_path, [kit.WeightscopeCallback(tmp_path / "run.zarr", every=2)], max_steps=2)
    kit.fit(tmp_path, [kit.WeightscopeCallback(tmp_path / "run.zarr", every=2, overwrite=True)],
            max_steps=2)
    with pytest.raises(ResumeError, match=r"continues from global step 2.*no run at"):
        kit.fit(tmp_path, [kit.WeightscopeCallback(tmp_path / "other.zarr", every=2)],
                max_steps=4, ckpt_path=tmp_path / "ckpt" / "epoch=0-step=2.ckpt")
    assert not (tmp_path / "other.zarr").exists()


def test_ddp_spawn_two_processes_records_once(kit, tmp_path):
    path = tmp_path / "ddp.zarr"
    trainer = kit.pl.Trainer(
        strategy="ddp_spawn", accelerator="cpu", devices=2, max_steps=3,
        accumulate_grad_batches=kit.ACCUM, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
        use_distributed_sampler=False, callbacks=[kit.WeightscopeCallback(path, every=2)])
    trainer.fit(kit.TinyDDP())
    got = ws.open_run(path)
    assert got.step.values.tolist() == [0, 2, 3] and got.attrs["complete"]
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # Lightning gives each of the 2 CPU processes 1 thread
    try:
        want = kit.ddp_reference(tmp_path / "ref.zarr", steps=3, every=2)
    finally:
        torch.set_num_threads(old)
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    np.testing.assert_array_equal(got.distance.values, want.distance.values)
    np.testing.assert_array_equal(got.lr.values, want.lr.values)
    assert got.loss.notnull().all()  # rank 0's own loss (not averaged over ranks)
