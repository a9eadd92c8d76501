"""CLI outputs: written atomically (never through a link), ``--out`` checked before any work
(writable, outside every run store), a run given twice refused, every error one line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner
from weightscope_cli.app import app
from weightscope_cli.outputs import check_out, write_atomically

from weightscope.errors import ConfigError, WriterError
from weightscope.testing import random_walks, write_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("outputs") / "run.zarr", random_walks(13, 64),
                     params={"fc.weight": 48, "fc.bias": 16})


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def _one_error_line(args: list[str], code: int = 2) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == code, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    return res.stderr.strip()


def test_analyze_refuses_an_out_inside_a_run_store(run, tmp_path):
    before = _digest(run)
    (tmp_path / "link").symlink_to(run / "w")
    for out in (run, run / "figures", tmp_path / "link" / "x"):
        line = _one_error_line(["analyze", str(run), "--out", str(out), "--bins", "4"])
        assert "--out must lie outside every run store" in line and str(run) in line
    assert _digest(run) == before and not (run / "figures").exists()


def test_sweep_refuses_an_out_inside_a_run_store_before_any_work(run, monkeypatch):
    import weightscope.experiments.runner as runner_module

    def no_work(*args, **kwargs):
        raise AssertionError("sweep started")

    monkeypatch.setattr(runner_module, "run_sweep", no_work)
    before = _digest(run)
    line = _one_error_line(["sweep", "blocks", "--out", str(run), "--steps", "2"])
    assert "--out must lie outside every run store" in line
    assert _digest(run) == before


def test_analyze_refuses_an_unusable_out_before_any_work(run, tmp_path, monkeypatch):
    import weightscope_cli.analyze as cli_analyze

    def no_work(*args, **kwargs):
        raise AssertionError("analysis started")

    monkeypatch.setattr(cli_analyze, "analyze_runs", no_work)
    (tmp_path / "file").write_text("")
    line = _one_error_line(["analyze", str(run), "--out", str(tmp_path / "file")])
    assert "--out must be a directory; " in line
    line = _one_error_line(["analyze", str(run), "--out", str(tmp_path / "file" / "sub")])
    assert "--out must be a writable directory" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_analyze_refuses_a_read_only_out(run, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    line = _one_error_line(["analyze", str(run), "--out", str(tmp_path / "ro")])
    assert "--out must be a writable directory" in line


def test_the_same_run_twice_is_refused_before_any_work(run, tmp_path):
    line = _one_error_line(["analyze", str(run), f"{run}/", "--out", str(tmp_path / "o")])
    assert "each RUN must be given once" in line
    assert not (tmp_path / "o").exists()


def test_outputs_replace_links_and_leave_no_temporary_files(run, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "figure1.png").symlink_to(victim)
    (out / "summary.json").symlink_to(tmp_path / "dangling")
    res = runner.invoke(app, ["analyze", str(run), "--out", str(out), "--bins", "4"])
    assert res.exit_code == 0, res.output
    assert victim.read_text() == "keep me" and not (tmp_path / "dangling").exists()
    for name in ("figure1.png", "summary.json"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["figure1.png", "summary.json"]
    assert (out / "summary.json").stat().st_mode & 0o644 == 0o644


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half(f):
        f.write(b"new but ")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, half)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["summary.json"]
    (tmp_path / "figure1.png").mkdir()
    with pytest.raises(ConfigError, match="a directory has that name"):
        write_atomically(tmp_path / "figure1.png", lambda f: f.write(b"x"))
    assert sorted(os.listdir(tmp_path)) == ["figure1.png", "summary.json"]


def test_check_out_without_create_makes_nothing(tmp_path):
    assert check_out(tmp_path / "a" / "b", create=False) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    assert check_out(tmp_path / "a" / "b").is_dir()


def test_sweep_error_is_the_only_line_on_stderr(tmp_path, monkeypatch):
    import weightscope.experiments.runner as runner_module

    def failing_sweep(spec, out, seeds, workers, on_result):
        on_result(None, None, {}, 0.0, 10.0)
        raise WriterError("the results store failed: disk full. Free space and rerun.")

    monkeypatch.setattr(runner_module, "run_sweep", failing_sweep)
    line = _one_error_line(["sweep", "blocks", "--out", str(tmp_path / "s"), "--steps", "2"],
                           code=1)
    assert line == "error: the results store failed: disk full. Free space and rerun."


def test_a_multi_line_runtime_error_is_one_line(run, tmp_path, monkeypatch):
    import weightscope_cli.analyze as cli_analyze

    def broken(*args, **kwargs):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr(cli_analyze, "analyze_runs", broken)
    line = _one_error_line(["analyze", str(run), "--out", str(tmp_path)], code=1)
    assert line == "error: RuntimeError: first line second line"


@pytest.mark.parametrize(("args", "says"), [
    (["analyze", "x.zarr", "--bins", "abc"], "Invalid value for '--bins'"),
    (["analyze"], "Missing argument"),
    (["analyze", "x.zarr", "--nope"], "No such option: --nope"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_usage_errors_are_one_line_with_exit_2(args, says):
    line = _one_error_line(args)
    assert says in line and line.endswith("--help' for the usage.")
