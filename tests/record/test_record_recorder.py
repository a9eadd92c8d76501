"""Recorder: exact round trip, exact distance, coordinates, attrs, options."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from testutil import tiny_model, train, weight_history

import weightscope as ws
from weightscope import schema
from weightscope.errors import ConfigError, RunExistsError, ShapeChangedError

STEPS = 23


def _record(path, every=5, sample=None, steps=STEPS, **kw):
    model = tiny_model()
    rec = ws.Recorder(path, model, every=every, sample=sample, **kw)
    train(model, steps, after_step=lambda s, loss, opt: rec.step(loss=loss))
    rec.close()
    return ws.open_run(path)


def _stored_param(ds, name):
    """Values of one parameter as stored: (steps, recorded elements), and their flat indices."""
    pid = list(ds.param.values).index(name)
    sel = ds.param_id.values == pid
    return ds.w.values[:, sel], ds["index"].values[sel]


@pytest.mark.parametrize("sample", [None, 7, 0.3])
def test_round_trip_is_bit_exact(tmp_path, sample):
    ds = _record(tmp_path / "run.zarr", every=5, sample=sample)
    hist = weight_history(STEPS)
    assert ds.step.values.tolist() == [0, 5, 10, 15, 20, 23]
    for name, full in hist.items():
        values, index = _stored_param(ds, name)
        expected = full[ds.step.values][:, index]
        assert values.dtype == np.float32
        assert np.array_equal(values.view(np.uint32), expected.view(np.uint32)), name
        if sample is None:
            assert index.tolist() == list(range(full.shape[1]))


def test_sample_counts_and_determinism(tmp_path):
    a = _record(tmp_path / "a.zarr", sample=0.25)
    b = _record(tmp_path / "b.zarr", sample=0.25)
    assert np.array_equal(a["index"].values, b["index"].values)
    numel = dict(zip(a.param.values, a.numel.values))
    counts = np.bincount(a.param_id.values)
    for pid, name in enumerate(a.param.values):
        assert counts[pid] == max(1, round(0.25 * numel[name]))
        idx = a["index"].values[a.param_id.values == pid]
        assert np.all(np.diff(idx) > 0)


def test_distance_matches_float64_oracle(tmp_path):
    ds = _record(tmp_path / "run.zarr", every=7, sample=5)  # distance ignores sampling
    hist = weight_history(STEPS)
    assert ds.iteration.values.tolist() == list(range(1, STEPS + 1))
    for name, full in hist.items():
        oracle = np.abs(np.diff(full.astype(np.float64), axis=0)).sum(axis=1)
        got = ds.distance.sel(param=name).values
        np.testing.assert_allclose(got, oracle, rtol=1e-6)


def test_loss_lr_and_attrs(tmp_path):
    model = tiny_model()
    path = tmp_path / "run.zarr"
    losses = []
    with ws.Recorder(path, model, every=4) as rec:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rec.attach(opt)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)

        def after(s, loss, _opt):
            rec.log(loss=loss)
            losses.append(loss.item())
            sched.step()

        train(model, 12, optimizer=opt, after_step=after)
    ds = ws.open_run(path)
    np.testing.assert_allclose(ds.loss.values, losses, rtol=1e-7)
    assert ds.lr.values.tolist() == [0.05] * 5 + [0.025] * 5 + [0.0125] * 2
    assert ds.step.values.tolist() == [0, 4, 8, 12]  # 12 is on the grid: no extra snapshot
    attrs = ds.attrs
    assert attrs["complete"] is True and attrs["total_steps"] == 12
    assert attrs["every"] == 4 and attrs["sample"] is None
    assert attrs["weightscope_format"] == schema.FORMAT_VERSION
    assert attrs["param_shapes"]["1.weight"] == [4, 2, 3]
    assert {"torch", "zarr", "weightscope"} <= set(attrs["versions"])
    assert ds.numel.values.tolist() == [24, 768, 72]


def test_no_distance_and_no_lr_when_unknown(tmp_path):
    ds = _record(tmp_path / "run.zarr", track_distance=False)
    assert "distance" not in ds and "lr" not in ds
    assert "loss" in ds


def test_params_names_and_predicate(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "a.zarr", model, params=["4.bias", "6.weight"])
    rec.close()
    assert ws.open_run(tmp_path / "a.zarr").param.values.tolist() == ["4.bias", "6.weight"]
    rec = ws.Recorder(tmp_path / "b.zarr", model, params=lambda n, m: isinstance(
        m, torch.nn.Conv1d))
    rec.close()
    assert ws.open_run(tmp_path / "b.zarr").param.values.tolist() == ["1.weight", "1.bias"]


def test_live_run_is_readable_after_flush_seconds(tmp_path):
    model = tiny_model()
    path = tmp_path / "run.zarr"
    rec = ws.Recorder(path, model, every=1, flush_seconds=0.05)
    train(model, 3, after_step=lambda s, loss, opt: rec.step())
    deadline = time.monotonic() + 10
    while ws.open_run(path).sizes["step"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    ds = ws.open_run(path)
    assert ds.step.values.tolist() == [0, 1, 2, 3]
    assert ds.attrs["complete"] is False
    rec.close()
    assert ws.open_run(path).attrs["complete"] is True


def test_nonfinite_values_are_recorded_and_counted(tmp_path):
    model = tiny_model()
    path = tmp_path / "run.zarr"
    with ws.Recorder(path, model, every=1) as rec:
        with torch.no_grad():
            model[6].weight[0, :2] = torch.tensor([float("nan"), float("inf")])
        rec.step()
    ds = ws.open_run(path)
    assert ds.attrs["nonfinite_count"] == 2
    values, _ = _stored_param(ds, "6.weight")
    assert np.isnan(values[1, 0]) and np.isinf(values[1, 1])


def test_many_chunks_and_growth(tmp_path):
    ds = _record(tmp_path / "run.zarr", every=1, steps=150, buffer_mb=0.05)
    assert ds.sizes["step"] == 151
    assert ds.w.data.chunksize[0] < 151  # several chunk rows, grown geometrically
    hist = weight_history(150)
    values, _ = _stored_param(ds, "4.weight")
    assert np.array_equal(values, hist["4.weight"])


def test_existing_path_and_argument_errors(tmp_path):
    model = tiny_model()
    path = tmp_path / "run.zarr"
    ws.Recorder(path, model).close()
    with pytest.raises(RunExistsError, match=r"already exists.*overwrite=True"):
        ws.Recorder(path, model)
    ws.Recorder(path, model, overwrite=True).close()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("precious")
    with pytest.raises(RunExistsError, match="not a weightscope run"):
        ws.Recorder(tmp_path / "notes", model, overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "precious"
    with pytest.raises(ConfigError, match=r"every must be an int >= 1.*got 0"):
        ws.Recorder(tmp_path / "x.zarr", model, every=0)
    with pytest.raises(ConfigError, match=r"sample as a float .* \(0, 1\]; got 1.5"):
        ws.Recorder(tmp_path / "x.zarr", model, sample=1.5)
    with pytest.raises(ConfigError, match=r"sample as an int .* >= 1; got 0"):
        ws.Recorder(tmp_path / "x.zarr", model, sample=0)
    with pytest.raises(ConfigError, match=r"\['nope'\] are not among them.*Valid names: 1.weight"):
        ws.Recorder(tmp_path / "x.zarr", model, params=["nope"])
    with pytest.raises(ConfigError, match="matches no parameter"):
        ws.Recorder(tmp_path / "x.zarr", model, params=lambda n, m: False)
    with pytest.raises(ConfigError, match="exclude each other"):
        ws.Recorder(tmp_path / "x.zarr", model, overwrite=True, resume=True)


def test_shape_change_raises(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "run.zarr", model)
    model[6].weight = torch.nn.Parameter(torch.zeros(5, 24))
    with pytest.raises(ShapeChangedError, match=r"'6.weight' changed shape from \(3, 24\) to "
                                                 r"\(5, 24\)"):
        rec.step()
    rec.abort()


def test_closed_recorder_refuses_steps(tmp_path):
    rec = ws.Recorder(tmp_path / "run.zarr", tiny_model())
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(ConfigError, match="is closed"):
        rec.step()


@pytest.mark.parametrize("sample", [None, 5])
def test_snapshots_follow_swapped_storage_and_replaced_parameters(tmp_path, sample):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    swaps = [
        lambda p: p.data.add_(1.0),  # in place: the same storage
        lambda p: setattr(p, "data", p.data.clone() * 2),  # a new storage
        lambda p: setattr(p, "data", p.data.t().contiguous().t() + 1),  # non-contiguous
        lambda p: p.data.mul_(-1.0),
        lambda p: setattr(p, "data", p.data.contiguous() - 3),  # contiguous again
    ]
    expected = []
    with ws.Recorder(tmp_path / "run.zarr", model, every=1, sample=sample) as rec:
        expected.append(model[0].weight.detach().clone())
        for swap in swaps:
            with torch.no_grad():
                swap(model[0].weight)
            expected.append(model[0].weight.detach().clone())
            rec.step()
        model[0].weight = torch.nn.Parameter(torch.randn(3, 4))  # a replaced Parameter
        expected.append(model[0].weight.detach().clone())
        rec.step()
    values, index = _stored_param(ws.open_run(tmp_path / "run.zarr"), "0.weight")
    want = torch.stack(expected).reshape(len(expected), -1).numpy()[:, index]
    assert np.array_equal(values.view(np.uint32), want.view(np.uint32))


def test_shape_change_through_data_of_the_same_storage_raises(tmp_path):
    model = tiny_model()
    rec = ws.Recorder(tmp_path / "run.zarr", model, every=1)
    rec.step()
    model[6].weight.data = model[6].weight.data[:2]  # same object, same pointer, new shape
    with pytest.raises(ShapeChangedError, match=r"'6.weight' changed shape from \(3, 24\) to "
                                                 r"\(2, 24\)"):
        rec.step()
    rec.abort()


def test_slot_memory_starts_on_a_page_boundary() -> None:  # O_DIRECT writes it without a copy
    from weightscope.record.pipeline import _empty

    for shape, dtype in (((3, 1000), torch.float32), ((5, 7), torch.bool)):
        t = _empty(shape, dtype, pin=False)
        assert t.shape == shape and t.dtype == dtype and t.is_contiguous()
        assert t.data_ptr() % 4096 == 0
