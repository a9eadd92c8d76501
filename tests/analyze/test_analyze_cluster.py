"""Every analyzer runs unchanged on a dask.distributed cluster, with bit-identical results.

A ``LocalCluster`` of two worker *processes* (one thread each) runs the analyzers' graphs:
everything they ship (module-level kernels, ``block_info`` offsets, the run's store behind a
``CommittedView``) must pickle, and each block must land on the same numbers. Results are
compared with ``xarray.testing.assert_identical`` and ``==`` on floats: bit for bit.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from runs import record_tiny

import weightscope as ws
from weightscope.analyze import (
    active_sets,
    decay_by_magnitude,
    decay_time,
    figure1_data,
    search_distance,
    summary,
)

distributed = pytest.importorskip("distributed")

SMALL_CHUNKS = {"step": 7, "weight": 100}  # many blocks: block offsets and reductions matter
KILL_CHUNKS = {"step": 26, "weight": 288}  # a few blocks, slowed: the kill lands mid-way
pytestmark = pytest.mark.filterwarnings("ignore:The specified chunks separate:UserWarning")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("cluster") / "run.zarr", steps=150, every=3)


def _analyses(ds: xr.Dataset) -> dict[str, object]:
    return {"active_sets": active_sets(ds), "global_sets": active_sets(ds, 0.1, "global"),
            "decay_time": decay_time(ds).compute(),
            "decay_param": decay_time(ds, param="1.weight", max_lag=20).compute(),
            "search_distance": search_distance(ds, per_param=True).compute(),
            "decay_by_magnitude": decay_by_magnitude(ds, bins=6),
            "summary": summary(figure1_data([ds], bins=6))}


@pytest.fixture(scope="module")
def local(run):
    with dask.config.set(scheduler="threads"):
        return {chunks: _analyses(ws.open_run(run, chunks=chunks and SMALL_CHUNKS))
                for chunks in (False, True)}


@pytest.fixture(scope="module")
def cluster():
    environ = dict(os.environ)  # the nanny leaves OMP_NUM_THREADS=1 & co. in ours: restore it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster
    os.environ.clear()
    os.environ.update(environ)


def _assert_same(got: dict[str, object], want: dict[str, object]) -> None:
    for name, value in want.items():
        if isinstance(value, (xr.Dataset, xr.DataArray)):
            xr.testing.assert_identical(got[name], value)
        else:
            assert got[name] == value, name


@pytest.mark.parametrize("small_chunks", [False, True], ids=["stored-chunks", "small-chunks"])
def test_cluster_results_are_bit_identical_to_local(run, local, cluster, small_chunks):
    with distributed.Client(cluster) as client:
        ds = ws.open_run(run, chunks=small_chunks and SMALL_CHUNKS)
        got = _analyses(ds)
        ran = client.run(lambda dask_worker: len(dask_worker.state.log))
    _assert_same(got, local[small_chunks])
    assert np.isfinite(got["decay_time"].values).all()
    assert all(n > 0 for n in ran.values()), f"both workers must take part: {ran}"


def test_a_worker_killed_mid_analysis_is_survived_exactly(run, cluster, tmp_path):
    marks = str(tmp_path)

    def pause(block):  # a closure, shipped by value: marks which process runs a block, slowly
        Path(marks, f"{os.getpid()}.{time.monotonic_ns()}").touch()
        time.sleep(0.2)
        return block

    ds = ws.open_run(run, chunks=KILL_CHUNKS)
    with dask.config.set(scheduler="threads"):
        want = summary(figure1_data([ds], bins=6))
    slow = ds.assign(w=ds.w.copy(data=ds.w.data.map_blocks(pause, dtype=ds.w.dtype)))
    with distributed.Client(cluster) as client, ThreadPoolExecutor(1) as pool:
        pids = set(client.run(os.getpid).values())
        job = pool.submit(lambda: summary(figure1_data([slow], bins=6)))
        victim = _busy_worker(Path(marks), deadline=time.monotonic() + 60)
        assert victim in pids and not job.done(), "the kill must land mid-analysis"
        os.kill(victim, signal.SIGKILL)  # mid-block, after it computed another block
        got = job.result(timeout=180)
        client.wait_for_workers(2, timeout=60)  # the nanny starts a new worker process
        now = set(client.run(os.getpid).values())
    assert got == want
    assert victim not in now and len(now) == 2


def _busy_worker(marks: Path, deadline: float) -> int:
    """Pid of a worker process that has started its second slowed block."""
    while time.monotonic() < deadline:
        pids = [int(p.name.split(".")[0]) for p in marks.iterdir()]
        for pid in set(pids):
            if pids.count(pid) >= 2:
                return pid
        time.sleep(0.01)
    raise AssertionError("no worker started two blocks of the analysis within 60 s")
