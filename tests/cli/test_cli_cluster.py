"""`weightscope analyze --scheduler`: compute on an existing dask cluster, or fail fast."""

from __future__ import annotations

import json
import socket
import time

import dask
import pytest
from runs import record_tiny
from typer.testing import CliRunner
from weightscope_cli.app import app

distributed = pytest.importorskip("distributed")
runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("sched") / "run.zarr", steps=60, every=3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary(out) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("how", ["option", "env"])
def test_scheduler_runs_the_analysis_and_is_closed_after(run, tmp_path, how):
    local = runner.invoke(app, ["analyze", str(run), "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        opt = ["--scheduler", cluster.scheduler_address] if how == "option" else []
        env = {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address} if how == "env" else {}
        res = runner.invoke(app, ["analyze", str(run), "--out", str(tmp_path / "c"), *opt],
                            env=env)
        assert res.exit_code == 0, res.output
        ran = sum(len(worker.state.log) for worker in cluster.workers.values())
    assert _summary(tmp_path / "c") == _summary(tmp_path / "local")  # bit for bit
    assert ran > 0  # the cluster's worker computed the tasks
    assert dask.config.get("scheduler", None) != "dask.distributed"  # client closed
    with pytest.raises(ValueError):
        distributed.default_client()


def test_unreachable_scheduler_exits_2_with_one_line_within_seconds(run, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    res = runner.invoke(app, ["analyze", str(run), "--out", str(tmp_path), "--scheduler",
                              address])
    elapsed = time.monotonic() - start
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no dask scheduler answers at "
                                                   f"'{address}' within 5 s")
    assert "--scheduler tcp://HOST:8786" in lines[0] and "Traceback" not in res.output
    assert elapsed < 15 and not (tmp_path / "summary.json").exists()


def test_memory_runs_cannot_go_to_a_cluster(tmp_path):
    res = runner.invoke(app, ["analyze", "memory://x/run.zarr", "--scheduler",
                              "tcp://127.0.0.1:1", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "workers of a dask cluster cannot read" in res.stderr
