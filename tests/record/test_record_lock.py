"""The Recorder releases its run's lock when it stops, however it stops."""

from __future__ import annotations

import pytest
from testutil import tiny_model

import weightscope as ws
from weightscope.errors import ResumeError
from weightscope.store.lock import lock_path


def test_an_aborted_recorder_releases_the_lock(tmp_path):
    path = tmp_path / "run.zarr"
    rec = ws.Recorder(path, tiny_model(), every=1)
    rec.step(loss=1.0)
    assert lock_path(path).exists()
    rec.abort()
    assert not lock_path(path).exists()
    with ws.Recorder(path, tiny_model(), every=1, resume=True) as again:  # resumable at once
        assert again.step_count == 1


def test_a_refused_resume_releases_the_lock(tmp_path):
    path = tmp_path / "run.zarr"
    with ws.Recorder(path, tiny_model(), every=1) as rec:
        rec.step(loss=1.0)
    with pytest.raises(ResumeError):
        ws.Recorder(path, tiny_model(seed=1), every=1, resume=True)  # other weights at step 1
    assert not lock_path(path).exists()
