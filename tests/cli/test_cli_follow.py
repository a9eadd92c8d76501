"""`weightscope analyze --follow` and `weightscope info` on runs that are being recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from testutil import tiny_model, train, worker_env
from typer.testing import CliRunner
from weightscope_cli.app import app
from weightscope_cli.follow import follow

import weightscope as ws

runner = CliRunner()
# the first renders of a 4-snapshot run have constant decay medians (Spearman undefined)
pytestmark = pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
WORKER = Path(__file__).parents[1] / "_support" / "live_worker.py"


class Grower:
    """A run recorded in this process, advanced between the follower's looks."""

    def __init__(self, path: Path, every: int = 2) -> None:
        self.model = tiny_model()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05)
        self.rec = ws.Recorder(path, self.model, every=every)
        self.step = 0

    def advance(self, steps: int) -> None:
        self.opt = train(self.model, self.step + steps, start=self.step, optimizer=self.opt,
                         after_step=lambda s, loss, o: self.rec.step(loss=loss))
        self.step += steps
        self.rec.checkpoint()  # flush: the follower sees the new snapshots


def test_follow_waits_renders_on_change_only_and_stops_when_complete(tmp_path):
    grower = Grower(tmp_path / "run.zarr")
    plan = iter([2, 0, 4, 0, 0, 6, "close"])  # steps recorded during each sleep
    lines: list[str] = []

    def sleep(seconds: float) -> None:
        todo = next(plan)
        if todo == "close":
            grower.rec.close()
        elif todo:
            grower.advance(todo)

    data = follow([str(tmp_path / "run.zarr")], tmp_path / "out", "svg", interval=0.5,
                  echo=lines.append, sleep=sleep, bins=4)
    waits = [line for line in lines if line.startswith("waiting")]
    renders = [line for line in lines if " rendered run at step " in line]
    # step 0 stays in the Recorder's buffer until the first flush (checkpoint after 2 steps)
    assert waits == ["waiting: run 'run' has 0 snapshot(s), Figure 1 needs 4",
                     "waiting: run 'run' has 2 snapshot(s), Figure 1 needs 4"]
    assert [r.split(" at step ")[1].split(" ->")[0] for r in renders] == [
        "6 (4 snapshots, recording)", "12 (7 snapshots, recording)",
        "12 (7 snapshots, complete)"]
    assert len(lines) == 5 and data is not None and data.incomplete == ()
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["incomplete"] == [] and s["active_sets"]["step"][-1] == 12
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figure1.svg", "summary.json"]


def test_ctrl_c_renders_what_is_stored_and_returns(tmp_path):
    grower = Grower(tmp_path / "run.zarr")
    grower.advance(8)
    lines: list[str] = []

    def sleep(seconds: float) -> None:
        grower.advance(4)  # new snapshots land, then the user presses Ctrl-C
        raise KeyboardInterrupt

    data = follow([str(tmp_path / "run.zarr")], tmp_path / "out", "png", interval=1.0,
                  echo=lines.append, sleep=sleep, bins=4)
    grower.rec.close()
    assert lines[1] == "interrupted: final render of what is stored now"
    assert "at step 8 (5 snapshots" in lines[0] and "at step 12 (7 snapshots" in lines[2]
    assert data.sets.step.values[-1] == 12 and data.incomplete == ("run",)


def test_follow_bad_interval_exits_2(tmp_path):
    Grower(tmp_path / "run.zarr").rec.close()
    res = runner.invoke(app, ["analyze", str(tmp_path / "run.zarr"), "--follow", "--interval",
                              "0", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--interval must be > 0 seconds; got 0.0" in res.stderr


def _start_recording(path: Path, steps: int, every: int, pause: float) -> subprocess.Popen:
    env = worker_env()
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(steps), str(every),
                             str(pause)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"  # the run exists from here on
    return proc


def _watch(path: Path, stop: threading.Event, seen: list[tuple[int, int]]) -> None:
    while not stop.is_set():
        try:
            st = path.stat()
        except FileNotFoundError:
            pass
        else:
            if not seen or seen[-1] != (st.st_mtime_ns, st.st_size):
                seen.append((st.st_mtime_ns, st.st_size))
        time.sleep(0.01)


def test_follow_updates_the_figure_while_a_subprocess_records(tmp_path):
    run, out = tmp_path / "run.zarr", tmp_path / "out"
    proc = _start_recording(run, steps=150, every=5, pause=0.03)
    stop, versions = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(out / "figure1.png", stop, versions))
    watcher.start()
    try:
        res = runner.invoke(app, ["analyze", str(run), "--follow", "--interval", "0.2",
                                  "--out", str(out), "--bins", "4"])
    finally:
        stop.set()
        watcher.join()
        proc.wait(timeout=60)
    assert res.exit_code == 0, res.output
    renders = [line for line in res.stderr.splitlines() if " rendered run at step " in line]
    live = [line for line in renders if line.endswith("figure1.png") and "recording)" in line]
    assert len(live) >= 2, res.stderr  # re-rendered as snapshots landed
    assert "(31 snapshots, complete)" in renders[-1] and proc.returncode == 0
    assert len(versions) >= 3, versions  # the file itself changed while recording, then final
    final = json.loads((out / "summary.json").read_text())
    plain = runner.invoke(app, ["analyze", str(run), "--out", str(tmp_path / "plain"),
                                "--bins", "4"])
    assert plain.exit_code == 0
    assert final == json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert "Figure 1 of run" in res.stdout  # the summary table, once, at the end


def test_info_shows_the_progress_of_a_live_run(tmp_path):
    grower = Grower(tmp_path / "run.zarr", every=3)
    grower.advance(7)
    res = runner.invoke(app, ["info", str(tmp_path / "run.zarr")])
    grower.rec.close()
    assert res.exit_code == 0, res.output
    assert "no (still recording, or crashed)" in res.stdout
    line = next(x for x in res.stdout.splitlines() if "recording" in x and "snapshots" in x)
    assert re.search(r"4 snapshots, last step 7, last write \d+ s ago", line), line
    done = runner.invoke(app, ["info", str(tmp_path / "run.zarr")])
    assert "last write" not in done.stdout


def test_follow_draws_a_complete_short_run_without_its_decay_panel(tmp_path):
    from weightscope.testing import random_walks, write_run

    path = write_run(tmp_path / "short.zarr", random_walks(3, 16))
    lines: list[str] = []
    data = follow([str(path)], tmp_path / "out", "svg", interval=0.5, echo=lines.append,
                  sleep=lambda s: None, bins=4)
    assert data is not None and data.decay is None and "needs at least 4" in data.decay_missing
    assert len(lines) == 1 and "(3 snapshots, complete)" in lines[0]
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["decay"]["missing"] == data.decay_missing
