"""CLI messages speak the command line: fixes name the options a user typed (``--keep 0.25``),
stderr holds exactly the error line, and countable work shows a bar with a total."""

from __future__ import annotations

from contextlib import contextmanager

import dask.array as da
import pytest
from typer.testing import CliRunner
from weightscope_cli import analyze as cli_analyze
from weightscope_cli.app import app
from weightscope_cli.base import command_options
from weightscope_cli.progress import phases

from weightscope.analyze import figure1_data
from weightscope.errors import ConfigError, hint, option_names
from weightscope.store import open_run
from weightscope.testing import random_walks, write_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("msg") / "run.zarr", random_walks(13, 64),
                     params={"fc.weight": 48, "fc.bias": 16})


def _error_line(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.split("\n")
    assert lines[1:] == [""] and lines[0].startswith("error: "), res.stderr  # one line, no blank
    return lines[0]


@pytest.mark.parametrize(("opts", "says"), [
    (["--keep", "1.5"], ["--keep is the fraction", "got 1.5. Pass e.g. --keep 0.25."]),
    (["--bins", "0"], ["--bins must be an integer >= 1; got 0. Pass e.g. --bins 20."]),
    (["--bins", "100"], ["--bins 100 needs at least 100 weights", "Pass at most --bins 48."]),
    (["--param", "nope"], ["--param must be one of the recorded parameters",
                           "e.g. --param fc.weight (or omit --param for the largest)."]),
    (["--scope", "x"], ["--scope must be one of ('param', 'global'); got 'x'. "
                        "Pass --scope param."]),
])
def test_analyze_fixes_name_the_options(run, tmp_path, opts, says):
    line = _error_line(["analyze", str(run), "--out", str(tmp_path), *opts])
    assert all(s in line for s in says), line
    assert not any(f"{name}=" in line for name in ("keep", "bins", "param", "scope")), line


def test_demo_fixes_name_its_options_before_training(tmp_path):
    line = _error_line(["demo", "--out", str(tmp_path / "d"), "--bins", "0"])
    assert line.endswith("Pass e.g. --bins 20.") and not (tmp_path / "d").exists()
    line = _error_line(["demo", "--out", str(tmp_path / "d"), "--steps", "10"])
    # demo has no --every: that name keeps its Python spelling
    assert "got --steps 10, every=40. Pass more steps (e.g. --steps 120)" in line, line


def test_sweep_fix_names_its_option(tmp_path):
    line = _error_line(["sweep", "rewire", "--out", str(tmp_path), "--steps", "0"])
    assert line.endswith("Pass e.g. --steps 20."), line


def test_python_messages_keep_python_words(run):
    ds = open_run(run)
    with pytest.raises(ConfigError, match=r"got 1\.5\. Pass e\.g\. keep=0\.25\.$"):
        figure1_data([ds], keep=1.5)
    with pytest.raises(ConfigError, match=r"e\.g\. param='fc.weight' \(or param=None for the"):
        figure1_data([ds], param="nope")


def test_option_names_context():
    assert hint("keep", 0.25) == "keep=0.25" and hint("param", None) == "param=None"
    with option_names({"keep": "--keep", "param": "--param"}):
        assert hint("keep", 0.25) == "--keep 0.25"
        assert hint("param", "a b") == "--param 'a b'" and hint("param", None) == "omit --param"
        assert hint("every", 10) == "every=10"  # no such option: the Python spelling
    assert hint("keep", 0.25) == "keep=0.25"  # the context ends with the block


def test_command_options_follow_typer_declarations():
    options = command_options(cli_analyze.analyze.__wrapped__)
    assert options["keep"] == "--keep" and options["fmt"] == "--format"
    assert options["storage_option"] == "--storage-option"


def test_countable_work_shows_a_bar_with_a_total():
    with phases("opening") as phase:
        phase("decay times")
        da.ones(40, chunks=4).sum().compute(scheduler="sync")
    tasks = phase.progress.tasks
    assert tasks[0].total is None  # the spinner of a phase of unknown size
    counted = [t for t in tasks if t.total is not None]
    assert len(counted) == 1 and counted[0].description == "decay times"
    assert counted[0].total == counted[0].completed > 10


def test_analyze_shows_its_computations_as_bars(run, tmp_path, monkeypatch):
    shown = []

    @contextmanager
    def spy(first):
        with phases(first) as display:
            shown.append(display)
            yield display

    monkeypatch.setattr(cli_analyze, "phases", spy)
    res = runner.invoke(app, ["analyze", str(run), "--out", str(tmp_path), "--bins", "4"])
    assert res.exit_code == 0, res.output
    counted = {t.description: t for t in shown[0].progress.tasks if t.total}
    assert {"search distance", "decay times"} <= set(counted)
    assert all(t.completed == t.total for t in counted.values())
