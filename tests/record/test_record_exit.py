"""A script that ends without ``close()`` while its writer holds an error exits loudly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path

import pytest

from weightscope.record.exit import forget_in_children

SCRIPT = textwrap.dedent("""
    import errno, sys, time
    sys.path.insert(0, {support!r})
    from testutil import tiny_model, train
    import weightscope as ws
    from weightscope.store import RunWriter

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if {fail}:
        RunWriter.write_snapshots = disk_full
    model = tiny_model()
    rec = ws.Recorder({path!r}, model, every=1, flush_seconds=60)
    train(model, 5, after_step=lambda s, loss, opt: rec.step())
    print("trained")  # and no close(): the exit handler stores what the Recorder holds
""")


def _run(tmp_path: Path, fail: bool) -> subprocess.CompletedProcess[str]:
    support = str(Path(__file__).parents[1] / "_support")
    script = SCRIPT.format(support=support, fail=fail, path=str(tmp_path / "run.zarr"))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)


def test_unclosed_recorder_with_a_writer_error_exits_1_with_one_line(tmp_path):
    proc = _run(tmp_path, fail=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "trained\n"  # the script's output is flushed before the exit
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("weightscope: error: the Recorder of ")
    assert "not closed" in lines[0] and "No space left on device" in lines[0], lines[0]


def test_unclosed_recorder_without_error_exits_0_and_stores_its_snapshots(tmp_path):
    import weightscope as ws

    proc = _run(tmp_path, fail=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    ds = ws.open_run(tmp_path / "run.zarr")
    assert ds.sizes["step"] == 6 and ds.attrs["complete"] is False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_forgets_its_parents_recorders():
    class Held:
        pass

    live, held = weakref.WeakSet(), Held()
    live.add(held)
    forget_in_children(live)
    pid = os.fork()
    if pid == 0:  # the child: exits at once with what it would abort at exit
        os._exit(len(live))
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 and len(live) == 1


def test_the_early_abort_waits_while_a_thread_of_the_program_runs():
    from weightscope.record import exit as record_exit

    class Fake:
        path, aborted = "run.zarr", 0

        def abort(self):
            self.aborted += 1

    fake, release = Fake(), threading.Event()
    busy = threading.Thread(target=release.wait)  # non-daemon: it may still be recording
    busy.start()
    record_exit._abort_early([fake])
    assert fake.aborted == 0  # left to the atexit-time abort, after threads are joined
    release.set()
    busy.join()
    record_exit._abort_early([fake])
    assert fake.aborted == 1
