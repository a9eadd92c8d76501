"""A run caught (or killed) while its arrays grow still opens, at its committed length."""

from __future__ import annotations

import itertools
import pickle
import shutil

import pytest
import xarray as xr
import zarr
from runs import record_tiny

import weightscope as ws
from weightscope import schema
from weightscope.store.view import CommittedView

GROWING = {schema.STEP: [schema.W, schema.STEP], schema.ITERATION: [
    schema.ITERATION, schema.DISTANCE, schema.LOSS]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("view") / "run.zarr", steps=30, every=3)


def _subsets(names):
    return [c for r in range(1, len(names)) for c in itertools.combinations(names, r)]


@pytest.mark.parametrize("dim", list(GROWING))
def test_every_partial_resize_opens_as_the_committed_run(run, tmp_path, dim):
    expected = ws.open_run(run).compute()
    for grown in _subsets(GROWING[dim]):  # the writer died after resizing only these
        copy = tmp_path / f"{dim}-{'-'.join(grown)}.zarr"
        shutil.copytree(run, copy)
        group = zarr.open_group(copy, mode="r+")
        for name in grown:
            arr = group[name]
            arr.resize((arr.shape[0] * 2 + 7, *arr.shape[1:]))
        with pytest.raises(ValueError, match="conflicting sizes"):
            xr.open_zarr(copy, consolidated=False)  # what a plain reader sees
        xr.testing.assert_identical(ws.open_run(copy).compute(), expected)


def test_view_pickles_with_its_store_for_dask_workers(run):
    ds = ws.open_run(run)
    clone = pickle.loads(pickle.dumps(ds))
    xr.testing.assert_identical(clone.compute(), ds.compute())
    store = CommittedView(zarr.storage.LocalStore(run, read_only=True), {schema.STEP: 3})
    again = pickle.loads(pickle.dumps(store))
    assert again == store and again.lengths == {schema.STEP: 3}
    assert zarr.open_group(again, mode="r")[schema.W].shape[0] == 3
