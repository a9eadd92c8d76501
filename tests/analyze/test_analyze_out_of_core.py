"""Out-of-core: a run several times larger than the memory budget is analyzed under it.

The budget is on what the analysis adds to a warmed-up process (modules imported, thread
pools and caches made by analyzing a slice of the run first): with blocks of ``BLOCK_MB``
and ``THREADS`` dask thread(s) it is a few blocks per thread whatever the run's size, while the
run's snapshots are more than three times that budget.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from testutil import worker_env

from weightscope.store import Layout, RunWriter

WORKER = Path(__file__).parents[1] / "_support" / "ooc_worker.py"
STEPS, WEIGHTS = 1008, 110_000  # 423 MiB of float32 snapshots
BLOCK_MB, THREADS = 8, 1  # store.reader.READ_BLOCK_BYTES of the analysis, dask threads
BUDGET = 96 * 2**20  # RSS the analysis may add to the warmed-up process


def _write_big_run(path: Path) -> int:
    layout = Layout.build(["a.weight", "b.weight"], [(300, 200), (50_000,)], [None, None])
    wr = RunWriter.create(path, layout, attrs={"every": 10}, buffer_bytes=64 * 2**20)
    rng = np.random.default_rng(0)
    level = rng.normal(0, 0.05, WEIGHTS).astype(np.float32)
    rows = wr.chunk_steps
    for r in range(0, STEPS, rows):  # random walks with drift, written a chunk row at a time
        n = min(rows, STEPS - r)
        steps = rng.normal(1e-4, 2e-3, (n, WEIGHTS)).astype(np.float32)
        block = level + np.cumsum(steps, axis=0, dtype=np.float32)
        level = block[-1]
        wr.write_snapshots(r, np.arange(r, r + n) * 10, block)
    wr.write_iterations(0, np.arange(1, STEPS * 10 - 9), distance=np.ones((STEPS * 10 - 10, 2)))
    wr.commit(STEPS, STEPS * 10 - 10)
    wr.finish(STEPS * 10 - 10)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.mark.slow
def test_analysis_of_a_run_larger_than_memory(tmp_path):
    assert STEPS * WEIGHTS * 4 > 3 * BUDGET  # holding the run whole would break the budget
    size = _write_big_run(tmp_path / "big.zarr")
    try:
        out = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "big.zarr"),
                              str(BLOCK_MB), str(THREADS)],
                             capture_output=True, text=True, env=worker_env(), check=True)
    finally:
        shutil.rmtree(tmp_path / "big.zarr")  # pytest keeps the last runs' tmp_path
    m = json.loads(out.stdout.strip().splitlines()[-1])
    extra = m["peak"] - m["base"]
    print(f"run {size / 2**20:.0f} MiB on disk, budget {BUDGET / 2**20:.0f} MiB: RSS "
          f"{m['base'] / 2**20:.0f} MiB warmed up, + {extra / 2**20:.0f} MiB at peak, "
          f"analyzed in {m['seconds']:.1f} s")
    assert extra < BUDGET
    assert m["n_delta"] == WEIGHTS and m["nan_delta"] == 0 and m["bins"] == 10
    assert m["final_active"] == pytest.approx(0.25, abs=1e-3)
