"""Misuse that would record a wrong run silently raises instead (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from testutil import sgd, tiny_model, train

import weightscope as ws
from weightscope.errors import ConfigError

DOUBLE = r"one record per optimizer step: .*attached to an optimizer.*would count each step twice"
FIX = r"Use either rec\.attach\(opt\) or rec\.step\(\) after opt\.step\(\), not both"
AFTER_SPARSIFY = r"the Recorder must be created after sparsify\(\): .*sparse=None"


def _sparsify(model: torch.nn.Module) -> ws.sparse.Sparsifier:
    return ws.sparse.sparsify(model, density=0.5, exclude=lambda name, module: False)


# ----------------------------------------------------------------- double stepping
def test_attach_then_step_raises_at_the_first_step(tmp_path):
    model = tiny_model()
    with ws.Recorder(tmp_path / "run.zarr", model) as rec:
        opt = train(model, 1)  # a step before attaching: fine
        rec.step()
        rec.attach(opt)
        with pytest.raises(ConfigError, match=DOUBLE):
            train(model, 2, start=1, optimizer=opt, after_step=lambda s, loss, o: rec.step())
        with pytest.raises(ConfigError, match=FIX):
            rec.step(loss=1.0)
        assert rec.step_count == 2  # the hook's record of step 2 only
        rec.log(loss=1.0)  # the way to give the loss with attach


def test_step_before_any_optimizer_step_of_an_attached_recorder_raises(tmp_path):
    model = tiny_model()
    with ws.Recorder(tmp_path / "run.zarr", model) as rec:
        rec.attach(sgd(model))
        with pytest.raises(ConfigError, match=r"after step 0\)"):
            rec.step()


def test_inert_recorder_refuses_double_stepping_too(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "run.zarr", model, rank=1).attach(sgd(model))
    with pytest.raises(ConfigError, match=DOUBLE):
        rec.step()
    rec.close()


def test_attach_twice_counts_each_step_once(tmp_path):
    model = tiny_model()
    opt = sgd(model)
    with ws.Recorder(tmp_path / "run.zarr", model, every=2) as rec:
        rec.attach(opt)
        rec.attach(opt)
        train(model, 6, optimizer=opt)
        assert rec.step_count == 6
    ds = ws.open_run(tmp_path / "run.zarr")
    assert ds.step.values.tolist() == [0, 2, 4, 6]
    assert bool((ds.distance > 0).all())


def test_closed_attached_recorder_says_closed(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "run.zarr", model).attach(sgd(model))
    rec.close()
    with pytest.raises(ConfigError, match="is closed"):
        rec.step()


# ----------------------------------------------------------------- sparsify after the Recorder
def test_recorder_before_sparsify_raises_at_the_first_step(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "run.zarr", model)
    opt = sgd(model)
    _sparsify(model).attach(opt)
    rec.attach(opt)
    with pytest.raises(ConfigError, match=AFTER_SPARSIFY):
        train(model, 1, optimizer=opt)
    with pytest.raises(ConfigError, match=r"Create the Recorder after ws\.sparse\.sparsify"):
        train(model, 2, start=1, optimizer=opt)  # still refused at the next step
    assert rec.step_count == 0
    rec.abort()


def test_recorder_before_sparsify_raises_with_manual_steps_and_when_inert(tmp_path):
    for rank in (0, 1):
        model = tiny_model()
        rec = ws.Recorder(tmp_path / f"run{rank}.zarr", model, rank=rank, overwrite=True)
        _sparsify(model)
        with pytest.raises(ConfigError, match=r"3 recorded parameter\(s\) now have a mask"):
            rec.step()
        rec.abort()


# ----------------------------------------------------------------- the normal paths
def test_step_only_attach_only_agree(tmp_path):
    stores = {}
    for how in ("step", "attach"):
        model = tiny_model()
        opt = sgd(model)
        path = tmp_path / f"{how}.zarr"
        with ws.Recorder(path, model, every=3) as rec:
            if how == "attach":
                rec.attach(opt)
                train(model, 7, optimizer=opt)
            else:
                train(model, 7, optimizer=opt, after_step=lambda s, loss, o: rec.step())
        stores[how] = ws.open_run(path)
    a, b = stores["step"], stores["attach"]
    assert a.step.values.tolist() == b.step.values.tolist() == [0, 3, 6, 7]
    np.testing.assert_array_equal(a.w.values, b.w.values)
    np.testing.assert_array_equal(a.distance.values, b.distance.values)
    assert bool((a.distance > 0).all())


def test_sparsify_then_recorder_records_masks(tmp_path):
    model = tiny_model()
    opt = sgd(model)
    sp = _sparsify(model)
    sp.attach(opt)
    with ws.Recorder(tmp_path / "run.zarr", model, every=2) as rec:
        rec.attach(opt)
        train(model, 4, optimizer=opt)
    ds = ws.open_run(tmp_path / "run.zarr")
    assert "mask" in ds and ds.attrs["sparse"] == sp.config
    assert ds.step.values.tolist() == [0, 2, 4]
