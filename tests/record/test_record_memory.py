"""Bounded memory: extra RSS stays within the buffer plus two snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testutil import worker_env

import weightscope as ws

WORKER = Path(__file__).parents[1] / "_support" / "memory_worker.py"


@pytest.mark.slow
def test_extra_rss_within_buffer_plus_two_snapshots(tmp_path):
    env = worker_env()
    out = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "run.zarr"), "512", "6"],
                         capture_output=True, text=True, env=env, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    extra = m["peak"] - m["baseline"]
    bound = m["buffer"] + 2 * m["snapshot"]
    print(f"snapshot {m['snapshot'] / 2**20:.0f} MiB, buffer {m['buffer'] / 2**20:.0f} MiB: "
          f"extra RSS {extra / 2**20:.0f} MiB <= bound {bound / 2**20:.0f} MiB")
    assert m["snapshot"] >= 200e6
    assert extra <= bound
    ds = ws.open_run(tmp_path / "run.zarr")
    assert ds.sizes["step"] == 7 and ds.attrs["complete"] is True
