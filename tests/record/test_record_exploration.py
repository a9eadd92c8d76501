"""Recorded ``flips`` and ``explored`` (issue 16) against a Python loop over every step's masks:
SEARCH rewiring every step, edits behind the sparsifier's back, STATIC, resume, old runs."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
import torch
from testutil import batch, tiny_model

import weightscope as ws
from weightscope import schema
from weightscope.record.exploration import ExplorationTracker

STEPS = 10


def _masks(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {n.replace("weight_mask", "weight"): b.numpy().reshape(-1).copy()
            for n, b in model.named_buffers() if n.endswith("weight_mask")}


def _sparse(method) -> tuple[torch.nn.Module, ws.sparse.Sparsifier, torch.optim.Optimizer]:
    model = tiny_model()
    sp = ws.sparse.sparsify(model, density=0.25, method=method,
                            exclude=ws.sparse.default_exclude)  # layers 1 and 6 stay dense
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sp.attach(opt)  # first: the Recorder, attached next, counts each step's rewiring
    return model, sp, opt


def _steps(model, opt, steps, edit=None, first=1) -> list[dict[str, np.ndarray]]:
    """Train ``steps`` steps; the masks after each (as the Recorder sees them)."""
    history = []
    for s in range(first, first + steps):
        x, y = batch(s)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()  # the Recorder counts here: the history is of these masks
        history.append(_masks(model))
        if edit is not None:  # seen by the Recorder at the next step
            edit(s, model)
    return history


def _train(path, method, steps=STEPS, edit=None):
    model, sp, opt = _sparse(method)
    history = [_masks(model)]
    with ws.Recorder(path, model, every=4) as rec:
        rec.attach(opt)
        history += _steps(model, opt, steps, edit)
    return model, sp, history


def _oracle(history: list[dict[str, np.ndarray]], name: str) -> tuple[np.ndarray, np.ndarray]:
    """flips and explored of every step after the first mask of ``history``, by a loop."""
    flips, explored = [], []
    ever = history[0][name].copy()
    for before, after in itertools.pairwise(history):
        flips.append(int((after[name] != before[name]).sum()))
        ever |= after[name]
        explored.append(int(ever.sum()))
    return np.array(flips, float), np.array(explored, float)


def _check(ds, history) -> None:
    masked = set(history[0])
    assert masked and masked < set(ds.param.values.tolist())  # also params without a mask
    for name in ds.param.values.tolist():
        flips = ds[schema.FLIPS].sel(param=name).values
        explored = ds[schema.EXPLORED].sel(param=name).values
        if name not in masked:
            assert np.isnan(flips).all() and np.isnan(explored).all()
            continue
        oracle_flips, oracle_explored = _oracle(history, name)
        np.testing.assert_array_equal(flips, oracle_flips)
        np.testing.assert_array_equal(explored, oracle_explored)


def _edit_behind_the_back(step: int, model: torch.nn.Module) -> None:
    """A user's in-place mask edits between rewires (SEARCH here rewires every 3rd step)."""
    mask = model[4].weight_mask
    if step == 4:
        mask[0].fill_(True)
    elif step == 5:
        mask[1, :7].logical_not_()


@pytest.mark.parametrize("method, edit", [
    (ws.sparse.Search(rewire_every=1), None),
    (ws.sparse.Search(rewire_every=3), _edit_behind_the_back),
], ids=["rewire-every-step", "edits-behind-the-back"])
def test_flips_and_explored_equal_a_loop_over_the_masks(tmp_path, method, edit) -> None:
    _, _, history = _train(tmp_path / "run.zarr", method, edit=edit)
    ds = ws.open_run(tmp_path / "run.zarr")
    assert ds.iteration.values.tolist() == list(range(1, STEPS + 1))
    assert ds[schema.FLIPS].dtype == np.float64 and ds[schema.FLIPS].dims == ("iteration",
                                                                             "param")
    _check(ds, history)
    assert np.nansum(ds[schema.FLIPS].values) > 0


def test_static_never_flips_and_explores_its_density(tmp_path) -> None:
    _, sp, history = _train(tmp_path / "run.zarr", ws.sparse.Static())
    ds = ws.open_run(tmp_path / "run.zarr")
    _check(ds, history)
    for name, mask in sp.masks().items():
        param = f"{name}.weight"
        assert (ds[schema.FLIPS].sel(param=param).values == 0).all()
        assert (ds[schema.EXPLORED].sel(param=param).values == round(0.25 * mask.numel())).all()


def test_resume_keeps_flips_exact_and_restarts_the_ever_set(tmp_path) -> None:
    path = tmp_path / "run.zarr"
    model, _, opt = _sparse(ws.sparse.Search())
    before = [_masks(model)]
    rec = ws.Recorder(path, model, every=4).attach(opt)
    before += _steps(model, opt, 6)
    rec.checkpoint()
    rec.abort()  # a crash after the checkpoint of step 6; the same model continues
    after = [before[-1]]
    with ws.Recorder(path, model, every=4, resume=6) as rec:
        rec.attach(opt)
        after += _steps(model, opt, 4, first=7)
    ds = ws.open_run(path)
    assert ds.iteration.values.tolist() == list(range(1, 11))
    _check(ds.isel(iteration=slice(0, 6)), before)
    _check(ds.isel(iteration=slice(6, None)), after)  # explored counts from the mask at 6
    assert ds[schema.EXPLORED].sel(param="4.weight").values[6] < (
        ds[schema.EXPLORED].sel(param="4.weight").values[5])


def test_dense_and_old_runs_have_no_exploration(tmp_path) -> None:
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with ws.Recorder(tmp_path / "dense.zarr", model, every=2) as rec:
        rec.attach(opt)
        for s in range(1, 4):
            opt.zero_grad()
            model(batch(s)[0]).sum().backward()
            opt.step()
    dense = ws.open_run(tmp_path / "dense.zarr")
    assert schema.FLIPS not in dense and schema.EXPLORED not in dense
    _train(tmp_path / "old.zarr", ws.sparse.Search(), steps=3)  # a sparse run from before
    for name in (schema.FLIPS, schema.EXPLORED):
        shutil.rmtree(tmp_path / "old.zarr" / name)
    old = ws.open_run(tmp_path / "old.zarr")
    assert schema.FLIPS not in old and "mask" in old and old.sizes["iteration"] == 3


def test_tracker_follows_replaced_and_removed_masks() -> None:
    mask = torch.tensor([True, False, False, False])
    tracker = ExplorationTracker([mask])
    tracker.update([mask])  # same tensor, same version: no pass over it
    assert (tracker.flips, tracker.explored) == ([0], [1])
    tracker.update([torch.tensor([False, False, True, True])])  # a new tensor: compared
    assert (tracker.flips, tracker.explored) == ([3], [3])
    tracker.update([None])  # the sparsifier was removed
    assert (tracker.flips, tracker.explored) == ([None], [None])
    assert tracker.totals() == (0, 0, 0)


def test_device_counts_give_the_same_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU path (counts as 0-d tensors, no sync) exercised on CPU."""
    from weightscope.record import exploration

    gen = torch.Generator().manual_seed(0)
    steps = [[torch.rand(50, generator=gen) < 0.3, None] for _ in range(4)]
    steps[2][0] = steps[1][0]  # an unchanged step
    rows = []
    for on_host in (True, False):
        monkeypatch.setattr(exploration, "_on_host", lambda t, on_host=on_host: on_host)
        tracker = ExplorationTracker(steps[0])
        out = torch.empty(2, 3, 2, dtype=torch.float64)
        for k, masks in enumerate(steps[1:]):
            tracker.update(masks)
            tracker.write(out[0, k], out[1, k])
        rows.append(out)
    torch.testing.assert_close(rows[0], rows[1], equal_nan=True, rtol=0, atol=0)
    assert torch.isnan(rows[0][:, :, 1]).all() and (rows[0][0, 1, 0] == 0)
