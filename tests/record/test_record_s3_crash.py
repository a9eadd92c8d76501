"""Crash safety in an object store: SIGKILL a process recording to S3, then open and resume.

The recording subprocess reaches the loopback S3 server (moto) through the environment
(``AWS_ENDPOINT_URL`` and fake credentials), as a training job would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from s3_server import s3, s3_endpoint  # noqa: F401  (fixtures)
from testutil import sgd, tiny_model, train, weight_history, worker_env

import weightscope as ws
from weightscope.record import resume_step

STEPS, EVERY, KILL_AT = 45, 3, 20
WORKER = Path(__file__).parents[1] / "_support" / "crash_worker.py"


def _record_until_killed(url: str, env: dict[str, str]) -> int:
    """Record in a subprocess; SIGKILL it once it reports step ``KILL_AT``; the last step."""
    env = worker_env(**env)
    proc = subprocess.Popen([sys.executable, str(WORKER), url, str(STEPS), str(EVERY)],
                            stdout=subprocess.PIPE, text=True, env=env)
    last = 0
    for line in proc.stdout:
        if not line.split()[0].isdigit():  # start / closing / done
            continue
        last = int(line.split()[0])
        if last >= KILL_AT:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return last


def _assert_prefix_of_replay(ds, hist) -> None:
    steps = ds.step.values
    grid = [*range(0, STEPS + 1, EVERY), STEPS]
    assert steps.tolist() == grid[: len(steps)], "snapshots must be a contiguous prefix"
    for pid, name in enumerate(ds.param.values):
        stored = ds.w.values[:, ds.param_id.values == pid]
        assert np.array_equal(stored, hist[name][steps]), name
    n = ds.sizes["iteration"]
    assert ds.iteration.values.tolist() == list(range(1, n + 1))
    for name in ds.param.values:
        oracle = np.abs(np.diff(hist[name].astype(np.float64), axis=0)).sum(axis=1)[:n]
        np.testing.assert_allclose(ds.distance.sel(param=name).values, oracle, rtol=1e-6)


@pytest.mark.slow  # a recording subprocess (torch import) and a resumed run: ~15 s
def test_sigkill_during_s3_recording_leaves_a_readable_resumable_prefix(s3):  # noqa: F811
    url = s3.url("run.zarr")
    killed_at = _record_until_killed(url, s3.env())
    ds = ws.open_run(url, storage_options=s3.options)
    hist = weight_history(STEPS)
    assert ds.attrs["complete"] is False
    assert 1 <= ds.sizes["step"] <= killed_at // EVERY + 1  # flushed every step, < 1 lost
    _assert_prefix_of_replay(ds, hist)

    start = resume_step(url, s3.options)
    model = tiny_model()
    opt = train(model, start, optimizer=sgd(model))  # deterministic replay = the checkpoint
    with ws.Recorder(url, model, every=EVERY, resume=True, storage_options=s3.options) as rec:
        train(model, STEPS, start=start, optimizer=opt,
              after_step=lambda s, loss, o: rec.step(loss=loss))
    done = ws.open_run(url, storage_options=s3.options)
    assert done.attrs["complete"] is True and done.sizes["iteration"] == STEPS
    _assert_prefix_of_replay(done, hist)
