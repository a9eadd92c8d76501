"""One writer per run: a second writer is refused before it deletes or writes anything; a
dead writer's lock is taken over; creation is atomic (no half-made run is ever visible)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from weightscope.errors import RunLockedError
from weightscope.store import Layout, RunWriter, open_run
from weightscope.store.lock import RunLock, lock_path

LAYOUT = Layout.build(["a"], [(5,)], [None])
HOLD = """
import sys
import numpy as np
from weightscope.store import Layout, RunWriter
wr = RunWriter.create(sys.argv[1], Layout.build(["a"], [(5,)], [None]), attrs={"every": 1})
wr.write_snapshots(0, np.arange(2), np.ones((2, 5), np.float32))
wr.commit(2, 0)
print("ready", flush=True)
sys.stdin.readline()
"""


def _holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_writer_is_refused_before_touching_the_run(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    proc = _holder(path)
    try:
        files = sorted(p.relative_to(path) for p in path.rglob("*"))
        for attempt in (lambda: RunWriter.create(path, LAYOUT, attrs={}, overwrite=True),
                        lambda: RunWriter.reopen(path)):
            with pytest.raises(RunLockedError, match=rf"being written by another writer \(pid "
                                                     rf"{proc.pid} on {socket.gethostname()}"):
                attempt()
        assert sorted(p.relative_to(path) for p in path.rglob("*")) == files
        assert open_run(path).sizes["step"] == 2
    finally:
        proc.communicate("\n", timeout=60)
    with RunWriter.reopen(path) as wr:  # released at the holder's exit
        wr.commit(2, 0)
    assert not lock_path(path).exists()


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    proc = _holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert lock_path(path).exists()  # the file stays; its flock died with the process
    wr = RunWriter.reopen(path)
    assert wr._lock is not None and wr._lock.previous["pid"] == proc.pid
    wr.write_snapshots(2, np.arange(2, 4), np.zeros((2, 5), np.float32))
    wr.commit(4, 0)
    wr.close()
    assert open_run(path).sizes["step"] == 4


def test_the_lock_is_held_until_close_or_a_complete_commit(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    wr = RunWriter.create(path, LAYOUT, attrs={})
    assert lock_path(path).exists()
    wr.write_snapshots(0, np.arange(1), np.ones((1, 5), np.float32))
    wr.finish(total_steps=0)
    assert not lock_path(path).exists()
    with pytest.raises(RunLockedError, match="released the run's lock; reopen the run"):
        wr.commit(1, 0)
    RunWriter.reopen(path).close()
    assert not lock_path(path).exists()


def test_a_newer_writer_of_the_same_process_takes_over(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    old = RunWriter.create(path, LAYOUT, attrs={})
    new = RunWriter.reopen(path)  # e.g. an aborted Recorder whose writer is still referenced
    with pytest.raises(RunLockedError, match="a newer writer of this process took over"):
        old.write_snapshots(0, np.arange(1), np.ones((1, 5), np.float32))
    new.write_snapshots(0, np.arange(1), np.ones((1, 5), np.float32))
    new.commit(1, 0)
    new.close()
    old.close()  # nothing left to release


def test_object_stores_have_no_lock() -> None:
    assert RunLock.acquire("memory://lock-test/run.zarr") is None


KILL = """
import os, sys
from weightscope.store import Layout, RunWriter, writer
def die(*a, **k):
    os.kill(os.getpid(), 9)
writer.{target} = die
RunWriter.create(sys.argv[1], Layout.build(["a"], [(5,)], [None]), attrs={{"every": 1}},
                 overwrite=True)
"""


@pytest.mark.parametrize("target", ["_create_iteration_arrays", "_initial_attrs", "publish"])
def test_a_creation_killed_at_any_moment_leaves_no_run(tmp_path: Path, target: str) -> None:
    path = tmp_path / "run.zarr"
    out = subprocess.run([sys.executable, "-c", KILL.format(target=target), str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == -9, out.stderr
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".creating")]
    RunWriter.create(path, LAYOUT, attrs={}).close()  # the leftover build is removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zarr"]
    assert open_run(path).sizes["step"] == 0


def test_a_replacing_creation_killed_leaves_the_old_run_or_none(tmp_path: Path) -> None:
    path = tmp_path / "run.zarr"
    wr = RunWriter.create(path, LAYOUT, attrs={})
    wr.write_snapshots(0, np.arange(3), np.ones((3, 5), np.float32))
    wr.commit(3, 0)
    wr.close()
    out = subprocess.run([sys.executable, "-c", KILL.format(target="_initial_attrs"),
                          str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == -9, out.stderr
    assert open_run(path).sizes["step"] == 3  # killed while building: the old run is intact
    assert os.path.isdir(path)


def test_an_interrupted_creation_in_an_object_store_is_named_as_such():
    from weightscope.errors import RunExistsError
    from weightscope.store import paths

    url = "memory://interrupted-creation.zarr"
    paths.open_group(url, "w", None)  # a creation killed after the group's metadata
    layout = Layout.build(["a"], [(3,)], [None])
    with pytest.raises(RunExistsError, match=r"creation of a run there was interrupted.*"
                                             r"overwrite=True"):
        RunWriter.create(url, layout, attrs={})
    RunWriter.create(url, layout, attrs={}, overwrite=True).close()
    assert open_run(url).attrs["complete"] is False
