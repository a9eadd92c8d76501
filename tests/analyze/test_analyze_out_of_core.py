"""Out-of-core: a run several times larger than the memory budget is analyzed under it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testutil import worker_env

from weightscope.store import Layout, RunWriter

WORKER = Path(__file__).parents[1] / "_support" / "ooc_worker.py"
STEPS, WEIGHTS = 1008, 500_000  # 2.0 GB of float32 snapshots
BUDGET = 560 * 2**20  # peak RSS of the whole analysis process, interpreter included


def _write_big_run(path: Path) -> int:
    layout = Layout.build(["a.weight", "b.weight"], [(1000, 400), (100_000,)], [None, None])
    wr = RunWriter.create(path, layout, attrs={"every": 10}, buffer_bytes=64 * 2**20)
    rng = np.random.default_rng(0)
    level = rng.normal(0, 0.05, WEIGHTS).astype(np.float32)
    rows = wr.chunk_steps
    for r in range(0, STEPS, rows):  # random walks with drift, written a chunk row at a time
        steps = rng.normal(1e-4, 2e-3, (rows, WEIGHTS)).astype(np.float32)
        block = level + np.cumsum(steps, axis=0, dtype=np.float32)
        level = block[-1]
        wr.write_snapshots(r, np.arange(r, r + rows) * 10, block)
    wr.write_iterations(0, np.arange(1, STEPS * 10 - 9), distance=np.ones((STEPS * 10 - 10, 2)))
    wr.commit(STEPS, STEPS * 10 - 10)
    wr.finish(STEPS * 10 - 10)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.slow
def test_analysis_of_a_run_larger_than_memory(tmp_path):
    size = _write_big_run(tmp_path / "big.zarr")
    assert size > 3 * BUDGET
    env = worker_env()
    out = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "big.zarr"), "64"],
                         capture_output=True, text=True, env=env, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"run {size / 2**20:.0f} MiB on disk, budget {BUDGET / 2**20:.0f} MiB: peak RSS "
          f"{m['peak'] / 2**20:.0f} MiB, analyzed in {m['seconds']:.1f} s")
    assert m["peak"] < BUDGET
    assert m["n_delta"] == WEIGHTS and m["nan_delta"] == 0 and m["bins"] == 10
    assert m["final_active"] == pytest.approx(0.25, abs=1e-3)
