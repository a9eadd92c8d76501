"""Metadata checked when a run is opened: each broken rule is one CorruptRunError naming the
rule and the value, raised before anything large is allocated; value rules when read."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from weightscope.errors import CorruptRunError
from weightscope.store import Layout, RunWriter, open_run, verify_run
from weightscope.testing import random_walks, write_run

W = random_walks(6, 30, seed=2)


def _edit(path: Path, fn: Any, array: str = "") -> None:
    meta = path / array / "zarr.json"
    doc = json.loads(meta.read_text())
    fn(doc)
    meta.write_text(json.dumps(doc))


def _attrs(**attrs: Any) -> Any:
    return lambda doc: doc["attributes"].update(attrs)


@pytest.mark.parametrize(("key", "value"), [
    ("valid_steps", 30.7), ("valid_steps", True), ("valid_steps", "6"), ("valid_steps", 10**6),
    ("valid_steps", -1), ("valid_iterations", 2.5), ("valid_iterations", 10**9)])
def test_valid_lengths_must_be_integers_within_the_stored_rows(
        tmp_path: Path, key: str, value: Any) -> None:
    path = write_run(tmp_path / "run.zarr", W)
    _edit(path, _attrs(**{key: value}))
    with pytest.raises(CorruptRunError, match=rf"'{key}' must be an integer.*got {value!r}"):
        open_run(path)


def test_impossible_sizes_are_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.zarr", W)
    for array in ("w", "param_id", "index"):
        _edit(path, lambda d: d.update(shape=[*d["shape"][:-1], 10**12]), array)
    t0 = time.perf_counter()
    with pytest.raises(CorruptRunError, match=r"at most 68719476736 weights.*got 10{12}"):
        open_run(path)
    report = verify_run(path)  # sizes checked before any chunk is read: no 1e12-weight loop
    assert report.chunks == 0 and "at most 68719476736 weights" in report.damaged[0].reason
    assert time.perf_counter() - t0 < 10
    _edit(path, lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[1, 10**12]), "w")
    with pytest.raises(CorruptRunError, match=r"a chunk of 'w' must hold at most"):
        open_run(path)


def test_arrays_must_agree_on_their_shared_dimensions(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.zarr", W)
    _edit(path, lambda d: d.update(shape=[31]), "param_id")
    with pytest.raises(CorruptRunError, match=r"'param_id' and 'index' must agree on the size of "
                                              r"'weight' \(30 in 'index'\); got 31"):
        open_run(path)


def test_parameter_names_must_be_unique_and_match_their_shapes(tmp_path: Path) -> None:
    path = tmp_path / "dup.zarr"
    wr = RunWriter.create(path, Layout.build(["a", "a"], [(10,), (20,)], [None, None]),
                          attrs={"every": 1})
    wr.write_snapshots(0, np.arange(6), W)
    wr.commit(6, 0)
    with pytest.raises(CorruptRunError, match=r"parameter names must be unique; got \['a'\]"):
        open_run(path)
    path = write_run(tmp_path / "run.zarr", W, params={"a": 10, "b": 20})
    _edit(path, _attrs(param_shapes={"a": [10], "b": [21]}))
    with pytest.raises(CorruptRunError, match=r"shape of 'b' .* must have 'numel' \(20\)"):
        open_run(path)


def test_parameter_ids_out_of_range_are_refused_when_read(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.zarr", W, params={"a": 10, "b": 20})
    zarr.open_array(path / "param_id", mode="r+")[3] = 7  # checksum rewritten: not damage
    ds = open_run(path)
    with pytest.raises(CorruptRunError, match=r"'param_id' must be a parameter index from 0 to "
                                              r"1; got 7"):
        _ = ds.param_id.values
    assert "'param_id' must be" in verify_run(path).damaged[0].reason


def test_negative_distance_is_refused_and_nan_kept(tmp_path: Path) -> None:
    dist = np.ones((5, 1))
    dist[2, 0] = np.nan  # an unknown step: stays NaN
    np.testing.assert_array_equal(
        open_run(write_run(tmp_path / "nan.zarr", W, distance=dist)).distance.values, dist)
    dist[3, 0] = -0.5
    path = write_run(tmp_path / "neg.zarr", W, distance=dist)
    with pytest.raises(CorruptRunError, match=r"'distance' must be finite and not negative "
                                              r".*; got -0.5"):
        _ = open_run(path).distance.values
    assert [d.array for d in verify_run(path).damaged] == ["distance"]
    dist[3, 0] = np.inf  # the writer stores an unknown distance as NaN, never Inf
    path = write_run(tmp_path / "inf.zarr", W, distance=dist)
    with pytest.raises(CorruptRunError, match=r"must be finite.*; got inf"):
        _ = open_run(path).distance.values


def test_steps_must_increase_strictly(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.zarr", W)
    zarr.open_array(Path(path) / "step", mode="r+")[:3] = [0, 2, 1]
    with pytest.raises(CorruptRunError, match=r"'step' must increase strictly.*row 2.*got 1"):
        open_run(path)
    assert "'step' must increase" in verify_run(path).damaged[0].reason


def test_weight_indices_beyond_their_parameter_are_refused_when_read(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run.zarr", W, params={"a": 10, "b": 20})
    np.testing.assert_array_equal(open_run(path).index.values, [*range(10), *range(20)])
    zarr.open_array(path / "index", mode="r+")[12] = 20  # weight 12: index 2 of 'b' (numel 20)
    ds = open_run(path)
    with pytest.raises(CorruptRunError, match=r"'index' must be a weight's flat index within "
                                              r"its parameter.*\(19 for weight 12.*; got 20"):
        _ = ds.index.values
    assert "'index' must be" in verify_run(path).damaged[0].reason
    zarr.open_array(path / "index", mode="r+")[12] = -1
    with pytest.raises(CorruptRunError, match=r"'index' must be.*; got -1"):
        _ = open_run(path).index.values
