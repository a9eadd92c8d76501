"""Store: writer/reader round trip, trimming, errors for things that are not runs, URLs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from hypothesis import given
from hypothesis import strategies as st

from weightscope import schema
from weightscope.errors import NotARunError, RunExistsError, RunNotFoundError, SchemaError
from weightscope.store import Layout, RunWriter, open_run, plan_chunks
from weightscope.store.layout import MAX_CHUNK_STEPS, NARROW_CHUNK_WEIGHTS


def _layout() -> Layout:
    return Layout.build(["a.weight", "b.weight"], [(3, 4), (5,)], [np.arange(12), [1, 3]])


def _write(path, rows=5, commit_rows=None, iterations=4):
    wr = RunWriter.create(path, _layout(), attrs={"every": 2})
    w = np.arange(rows * 14, dtype=np.float32).reshape(rows, 14)
    wr.write_snapshots(0, np.arange(rows) * 2, w)
    wr.write_iterations(0, np.arange(1, iterations + 1),
                        distance=np.ones((iterations, 2)), loss=np.linspace(1, 0, iterations))
    wr.commit(rows if commit_rows is None else commit_rows, iterations)
    return wr, w


def test_round_trip_coordinates_and_lazy(tmp_path):
    wr, w = _write(tmp_path / "run.zarr")
    wr.finish(total_steps=8)
    ds = open_run(tmp_path / "run.zarr")
    assert ds.w.chunks is not None  # dask-backed
    np.testing.assert_array_equal(ds.w.values, w)
    assert ds.step.values.tolist() == [0, 2, 4, 6, 8]
    assert ds.param.values.tolist() == ["a.weight", "b.weight"]
    assert ds.param_id.values.tolist() == [0] * 12 + [1, 1]
    assert ds["index"].values.tolist() == [*range(12), 1, 3]
    assert ds.numel.values.tolist() == [12, 5]
    assert ds.iteration.values.tolist() == [1, 2, 3, 4]
    assert "lr" not in ds and ds.loss.shape == (4,)
    assert ds.attrs["complete"] is True and ds.attrs["total_steps"] == 8
    assert {"param_id", "index", "step", "param"} <= set(ds.coords)


def test_uncommitted_rows_are_invisible(tmp_path):
    _write(tmp_path / "run.zarr", rows=5, commit_rows=3)
    ds = open_run(tmp_path / "run.zarr")
    assert ds.sizes["step"] == 3 and ds.attrs["complete"] is False


def test_growth_keeps_step_arrays_aligned(tmp_path):
    wr = RunWriter.create(tmp_path / "run.zarr", _layout(), attrs={"every": 1},
                          buffer_bytes=200)
    n = 3000
    for row in range(0, n, 10):
        rows = np.arange(row, row + 10)
        wr.write_snapshots(row, rows, np.repeat(rows[:, None], 14, 1).astype(np.float32))
    wr.commit(n, 0)
    ds = open_run(tmp_path / "run.zarr")
    assert ds.step.values.tolist() == list(range(n))
    assert np.array_equal(ds.w.values[:, 0], np.arange(n, dtype=np.float32))
    shape = zarr.open_group(tmp_path / "run.zarr")["w"].shape[0]
    assert n <= shape < 4 * n  # grown geometrically, not per step


def test_missing_path(tmp_path):
    with pytest.raises(RunNotFoundError, match=r"no run at .*does not exist"):
        open_run(tmp_path / "nope.zarr")


def test_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARunError, match="is not a weightscope run"):
        open_run(tmp_path / "plain")
    zarr.open_group(tmp_path / "other.zarr", mode="w")
    with pytest.raises(NotARunError, match="zarr group but not a weightscope run"):
        open_run(tmp_path / "other.zarr")


def test_newer_format_version(tmp_path):
    _write(tmp_path / "run.zarr")
    meta = tmp_path / "run.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"][schema.FORMAT_ATTR] = schema.FORMAT_VERSION + 1
    meta.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"newer than this library reads.*upgrade weightscope"):
        open_run(tmp_path / "run.zarr")


def test_malformed_run(tmp_path):
    _write(tmp_path / "run.zarr")
    zarr.open_group(tmp_path / "run.zarr", mode="r+").__delitem__("numel")
    with pytest.raises(SchemaError, match="must hold 'numel'"):
        open_run(tmp_path / "run.zarr")


def test_existing_target(tmp_path):
    _write(tmp_path / "run.zarr")
    with pytest.raises(RunExistsError, match="already exists"):
        RunWriter.create(tmp_path / "run.zarr", _layout(), attrs={})
    RunWriter.create(tmp_path / "run.zarr", _layout(), attrs={}, overwrite=True)
    assert open_run(tmp_path / "run.zarr").sizes["step"] == 0


def test_memory_url_round_trip():
    url = "memory://weightscope-test/run.zarr"
    wr, w = _write(url)
    wr.finish(total_steps=8)
    np.testing.assert_array_equal(open_run(url).w.values, w)
    with pytest.raises(RunNotFoundError):
        open_run("memory://weightscope-test/other.zarr")


@given(n=st.integers(1, 10**9), budget=st.integers(1, 2**34))
def test_plan_chunks_properties(n, budget):
    steps, weights = plan_chunks(n, budget)
    assert 1 <= steps <= MAX_CHUNK_STEPS and steps & (steps - 1) == 0
    assert 1 <= weights <= n
    assert steps == 1 or 2 * steps * n * 4 <= budget  # two chunk rows fit the buffer
    n_chunks = -(-n // weights)
    assert n_chunks * weights - n < n_chunks  # chunks split the snapshot evenly: no padding
    assert weights * steps * 4 <= 2 * 8 * 2**20 or weights <= 4096
    assert weights <= NARROW_CHUNK_WEIGHTS * max(1, 4 // steps) * 1.01 + 1


@given(
    sizes=st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=6),
    data=st.data(),
)
def test_layout_coordinates_of_any_weight_range_match_a_loop(sizes, data):
    names, shapes, indices = [], [], []
    for i, (numel, sampled) in enumerate(sizes):
        names.append(f"p{i}.weight")
        shapes.append((numel,))
        indices.append(sorted(data.draw(st.sets(st.integers(0, max(numel - 1, 0)),
                                                max_size=numel))) if sampled and numel else None)
    lay = Layout.build(names, shapes, indices)
    pid, idx = [], []  # oracle: one weight at a time
    for i, (numel, _) in enumerate(sizes):
        recorded = range(numel) if lay.indices[i] is None else lay.indices[i]
        pid += [i] * len(recorded)
        idx += list(recorded)
    lo = data.draw(st.integers(0, lay.n_weights))
    hi = data.draw(st.integers(lo, lay.n_weights))
    assert lay.param_id(lo, hi).dtype == np.int32 and lay.index(lo, hi).dtype == np.int64
    assert lay.param_id(lo, hi).tolist() == pid[lo:hi]
    assert lay.index(lo, hi).tolist() == idx[lo:hi]
    assert lay.param_id().tolist() == pid and lay.index().tolist() == idx


def test_long_runs_open_in_columns_that_split_stored_chunks(tmp_path, monkeypatch):
    from weightscope.store import reader

    wr = RunWriter.create(tmp_path / "run.zarr", _layout(), attrs={"every": 1})
    w = np.arange(40 * 14, dtype=np.float32).reshape(40, 14)
    wr.write_snapshots(0, np.arange(40), w)
    wr.commit(40, 0)
    assert open_run(tmp_path / "run.zarr").w.data.chunks[1] == (14,)  # stored chunks
    monkeypatch.setattr(reader, "READ_BLOCK_BYTES", 40 * 4 * 5)  # a column of 5 weights
    ds = open_run(tmp_path / "run.zarr")
    assert ds.w.data.chunks[1] == (5, 5, 4)  # 14 split evenly: at most 5 wide
    np.testing.assert_array_equal(ds.w.values, w)
    assert ds.param_id.values.tolist() == [0] * 12 + [1, 1]
    names = {k[0] if isinstance(k, tuple) else k for k in dict(ds.w.data.__dask_graph__())}
    assert not any("rechunk" in str(n) for n in names)  # each column read from the store
