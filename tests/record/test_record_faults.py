"""Recorder faults: writer failures surface, resume rules, interrupted `with` blocks."""

from __future__ import annotations

import errno
import time

import numpy as np
import pytest
import torch
from testutil import sgd, tiny_model, train, weight_history

import weightscope as ws
from weightscope.errors import ResumeError, WriterError
from weightscope.record.resume import ResumePoint, find_resume_point
from weightscope.store import Layout, RunWriter


def test_writer_failure_raises_at_next_step_and_keeps_the_prefix(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    model = tiny_model()
    rec = ws.Recorder(path, model, every=1, flush_seconds=0.01, buffer_mb=0.001)
    train(model, 6, after_step=lambda s, loss, opt: rec.step())
    rec._pipeline.flush()
    stored = ws.open_run(path).sizes["step"]

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RunWriter, "write_snapshots", disk_full)
    with pytest.raises(WriterError, match=r"background writer failed.*No space left.*resume=True"):
        def step(s, loss, opt):
            rec.step()
            time.sleep(0.01)

        train(model, 200, start=6, optimizer=sgd(model), after_step=step)
    with pytest.raises(WriterError):
        rec.close()
    monkeypatch.undo()
    ds = ws.open_run(path)
    assert ds.attrs["complete"] is False and ds.sizes["step"] >= stored
    hist = weight_history(6)
    pid = list(ds.param.values).index("4.weight")
    got = ds.w.values[:, ds.param_id.values == pid]
    assert np.array_equal(got[: stored], hist["4.weight"][: stored])


def test_resume_from_an_earlier_step_drops_later_snapshots(tmp_path):
    path = tmp_path / "run.zarr"
    model = tiny_model()
    with ws.Recorder(path, model, every=4) as rec:
        train(model, 20, after_step=lambda s, loss, opt: rec.step(loss=loss))
    model = tiny_model()
    opt = train(model, 8)
    with ws.Recorder(path, model, every=4, resume=8) as rec:
        assert ws.open_run(path).step.values.tolist() == [0, 4, 8]
        train(model, 13, start=8, optimizer=opt, after_step=lambda s, loss, o: rec.step(loss=loss))
    ds = ws.open_run(path)
    assert ds.step.values.tolist() == [0, 4, 8, 12, 13]
    assert ds.iteration.values.tolist() == list(range(1, 14))
    hist = weight_history(13)
    pid = list(ds.param.values).index("6.weight")
    assert np.array_equal(ds.w.values[:, ds.param_id.values == pid],
                          hist["6.weight"][[0, 4, 8, 12, 13]])
    oracle = np.abs(np.diff(hist["6.weight"].astype(np.float64), axis=0)).sum(axis=1)
    np.testing.assert_allclose(ds.distance.sel(param="6.weight").values, oracle, rtol=1e-6)


def test_resume_errors(tmp_path):
    path = tmp_path / "run.zarr"
    model = tiny_model()
    with ws.Recorder(path, model, every=4) as rec:
        train(model, 8, after_step=lambda s, loss, opt: rec.step())
    with pytest.raises(ResumeError, match=r"differ from the run's snapshot at step 8.*load the "
                                          r"checkpoint of step 8"):
        ws.Recorder(path, tiny_model(), every=4, resume=True)
    with pytest.raises(ResumeError, match=r"resume=5 must be a step with a stored snapshot.*"
                                          r"\[0, 4, 8\]"):
        ws.Recorder(path, tiny_model(), every=4, resume=5)
    with pytest.raises(ResumeError, match=r"needs the run's every=4; got every=2"):
        ws.Recorder(path, tiny_model(), every=2, resume=0)
    other = torch.nn.Sequential(torch.nn.Linear(16, 3))
    with pytest.raises(ResumeError, match="needs the model the run was recorded from"):
        ws.Recorder(path, other, every=4, resume=True)
    with pytest.raises(ResumeError, match="same sample="):
        ws.Recorder(path, tiny_model(), every=4, sample=3, resume=0)
    ws.Recorder(path, tiny_model(), every=4, resume=0).close()  # the initial weights match


def test_exception_in_with_block_leaves_a_resumable_run(tmp_path):
    path = tmp_path / "run.zarr"
    model = tiny_model()
    with pytest.raises(RuntimeError, match="diverged"), ws.Recorder(path, model, every=2) as rec:
        train(model, 5, after_step=lambda s, loss, opt: rec.step())
        raise RuntimeError("diverged")
    ds = ws.open_run(path)
    assert ds.attrs["complete"] is False
    assert ds.step.values.tolist() == [0, 2, 4]
    assert ds.sizes["iteration"] == 5
    assert ws.record.resume_step(path) == 4


def test_a_run_holding_no_snapshot_resumes_only_from_step_0(tmp_path):
    writer = RunWriter.create(tmp_path / "run.zarr", Layout.build(["w"], [(6,)], [None]),
                              attrs={"every": 1})  # killed before its first flush: 0 rows
    assert find_resume_point(writer.group, True) == ResumePoint(0, -1)
    assert find_resume_point(writer.group, 0) == ResumePoint(0, -1)
    with pytest.raises(ResumeError, match=r"resume=1 must be a step with a stored snapshot"):
        find_resume_point(writer.group, 1)  # 1 == True in Python: not taken for resume=True
