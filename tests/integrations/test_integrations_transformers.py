"""Hugging Face callback: real Trainer runs give the store of a plain loop; resume; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weightscope as ws
from weightscope.errors import ConfigError, ResumeError, RunExistsError


@pytest.fixture(scope="module")
def kit():
    """tests/_support/hf_kit.py, imported only when a test runs: collecting the suite does not
    import transformers, and without it these tests skip."""
    pytest.importorskip("transformers")
    import hf_kit

    return hf_kit


def assert_same_run(got, want):
    assert got.param.values.tolist() == want.param.values.tolist()
    assert got.step.values.tolist() == want.step.values.tolist()
    assert got.iteration.values.tolist() == want.iteration.values.tolist()
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    for name in ("distance", "loss", "lr"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert got.attrs["complete"] and got.attrs["total_steps"] == want.attrs["total_steps"]


def test_train_with_accumulation_equals_plain_loop(kit, tmp_path):
    trainer = kit.trainer(tmp_path, [kit.WeightscopeCallback(tmp_path / "hf.zarr", every=3)],
                          max_steps=7)
    trainer.train()
    assert len(trainer.model.seen) == 7 * kit.ACCUM
    got = ws.open_run(tmp_path / "hf.zarr")
    assert got.step.values.tolist() == [0, 3, 6, 7]  # one snapshot per optimizer step
    assert got.iteration.values.tolist() == list(range(1, 8))
    assert_same_run(got, kit.plain(tmp_path / "plain.zarr", trainer.model.seen, every=3))
    assert got.lr.values.tolist() == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125, 0.00625]


def test_crash_then_resume_from_checkpoint_continues_the_run(kit, tmp_path):
    ref = kit.trainer(tmp_path / "ref", [kit.WeightscopeCallback(tmp_path / "ref.zarr", every=3)],
                      max_steps=7, save_steps=2)
    ref.train()
    want = ws.open_run(tmp_path / "ref.zarr")
    assert want.step.values.tolist() == [0, 2, 3, 4, 6, 7]  # + checkpoint snapshots at 2, 4, 7

    run = tmp_path / "run.zarr"
    callback = kit.WeightscopeCallback(run, every=3)
    trainer = kit.trainer(tmp_path, [callback, kit.CrashOnce(at=5)], max_steps=7, save_steps=2)
    with pytest.raises(RuntimeError, match="node lost"):
        trainer.train()
    assert not callback.recorder.closed  # the Trainer has no exception event
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))
    assert_same_run(ws.open_run(run), want)


def test_crashed_run_is_stored_by_abort_and_resumed_by_a_new_trainer(kit, tmp_path):
    ref = kit.trainer(tmp_path / "ref", [kit.WeightscopeCallback(tmp_path / "ref.zarr", every=2)],
                      max_steps=6, save_steps=3)
    ref.train()
    run = tmp_path / "run.zarr"
    callback = kit.WeightscopeCallback(run, every=2)
    with pytest.raises(RuntimeError, match="node lost"):
        kit.trainer(tmp_path, [callback, kit.CrashOnce(at=5)], max_steps=6, save_steps=3).train()
    callback.recorder.abort()
    crashed = ws.open_run(run)
    assert crashed.attrs["complete"] is False and crashed.step.values.tolist() == [0, 2, 3, 4]
    trainer = kit.trainer(tmp_path, [kit.WeightscopeCallback(run, every=2, overwrite=True)],
                          max_steps=6, save_steps=3)
    trainer.train(resume_from_checkpoint=True)  # the last checkpoint: step 3
    assert_same_run(ws.open_run(run), ws.open_run(tmp_path / "ref.zarr"))


def test_errors(kit, tmp_path):
    with pytest.raises(ConfigError, match="decides rank= itself"):
        kit.WeightscopeCallback(tmp_path / "run.zarr", rank=0)
    kit.trainer(tmp_path, [kit.WeightscopeCallback(tmp_path / "run.zarr", every=2)], max_steps=2,
                save_steps=2).train()
    with pytest.raises(RunExistsError, match="pass overwrite=True"):
        kit.trainer(tmp_path, [kit.WeightscopeCallback(tmp_path / "run.zarr")], max_steps=2).train()
    with pytest.raises(ResumeError, match=r"resumes from global step 2.*no run at"):
        kit.trainer(tmp_path, [kit.WeightscopeCallback(tmp_path / "other.zarr")],
                    max_steps=4).train(
            resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    assert not (tmp_path / "other.zarr").exists()


@pytest.mark.slow  # two processes importing transformers: ~25 s on 2 loaded cores
def test_ddp_two_processes_record_once(kit, tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp
    from ddp_worker import hf_ddp_record

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(hf_ddp_record, args=(2, port, str(tmp_path), 5, 2), nprocs=2)
    reports = [json.loads((tmp_path / f"report{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in reports] == [2, 2]
    assert [r["active"] for r in reports] == [True, False]
    assert reports[1]["repr"].endswith("rank=1, inactive, closed)")
    ds = ws.open_run(tmp_path / "run.zarr")
    assert ds.step.values.tolist() == [0, 2, 4, 5] and ds.attrs["complete"]
    assert ds.loss.notnull().all()  # the Trainer's loss, averaged over both processes
    final = torch.load(tmp_path / "final.pt")
    for i, name in enumerate(ds.param.values):  # the last snapshot = the trained weights
        got = ds.w.values[-1, ds.param_id.values == i]
        assert np.array_equal(got, final[name].numpy().reshape(-1)), name
