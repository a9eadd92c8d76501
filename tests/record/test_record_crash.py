"""Crash safety: SIGKILL a recording process at random moments, then open and resume."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from testutil import sgd, tiny_model, train, weight_history, worker_env

import weightscope as ws
from weightscope.record import resume_step

STEPS, EVERY = 400, 3
WORKER = Path(__file__).parents[1] / "_support" / "crash_worker.py"


def _kill_at(path: Path, step: int, delay: float) -> None:
    """Start a recording worker; SIGKILL it ``delay`` seconds after it reports ``step``."""
    env = worker_env()
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(STEPS), str(EVERY)],
                            stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        word = line.split()[0]
        if word.isdigit() and int(word) >= step:
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assert_prefix_of_replay(ds, hist) -> None:
    steps = ds.step.values
    grid = [*range(0, STEPS + 1, EVERY), STEPS]  # close() adds the off-grid final step
    assert steps.tolist() == grid[: len(steps)], "snapshots must be a contiguous prefix"
    for pid, name in enumerate(ds.param.values):
        cols = ds.param_id.values == pid
        stored = ds.w.values[:, cols]
        assert np.array_equal(stored, hist[name][steps]), name
    n = ds.sizes["iteration"]
    assert ds.iteration.values.tolist() == list(range(1, n + 1))
    for name in ds.param.values:
        oracle = np.abs(np.diff(hist[name].astype(np.float64), axis=0)).sum(axis=1)[:n]
        np.testing.assert_allclose(ds.distance.sel(param=name).values, oracle, rtol=1e-6)


def _resume(path: Path) -> None:
    start = resume_step(path)
    model = tiny_model()
    opt = train(model, start, optimizer=sgd(model))  # deterministic replay = the checkpoint
    with ws.Recorder(path, model, every=EVERY, resume=True) as rec:
        train(model, STEPS, start=start, optimizer=opt,
              after_step=lambda s, loss, o: rec.step(loss=loss))


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_resumable_prefix(tmp_path):
    hist = weight_history(STEPS)
    rng = random.Random(1234)
    moments = [(1, 0.0)] + [(rng.randrange(2, STEPS - 20), rng.uniform(0, 0.01))
                            for _ in range(5)]
    seen = set()
    for i, (step, delay) in enumerate(moments):
        path = tmp_path / f"run{i}.zarr"
        _kill_at(path, step, delay)
        ds = ws.open_run(path)
        assert ds.attrs["complete"] is False
        _assert_prefix_of_replay(ds, hist)
        seen.add(ds.sizes["step"])
        _resume(path)
        done = ws.open_run(path)
        assert done.attrs["complete"] is True and done.attrs["total_steps"] == STEPS
        _assert_prefix_of_replay(done, hist)
        assert done.step.values[-1] == STEPS and done.sizes["iteration"] == STEPS
    assert len(seen) >= 3, f"kills should land at different moments; prefixes {seen}"
