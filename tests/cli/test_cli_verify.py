"""`weightscope verify`: a healthy run passes; a damaged chunk is listed and exits 2."""

from __future__ import annotations

import os

import numpy as np
from typer.testing import CliRunner
from weightscope_cli.app import app

from weightscope.testing import write_run

runner = CliRunner()


def _run(tmp_path):
    w = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    return write_run(tmp_path / "run.zarr", w, params={"fc.weight": 10})


def test_verify_healthy_run(tmp_path):
    path = _run(tmp_path)
    result = runner.invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert ": 0 damaged of " in result.stdout


def test_verify_lists_a_damaged_chunk_and_exits_2(tmp_path):
    path = _run(tmp_path)
    chunk = path / "w" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[0] ^= 0xFF  # one flipped byte: the checksum no longer matches
    chunk.write_bytes(bytes(data))
    result = runner.invoke(app, ["verify", str(path)])
    assert result.exit_code == 2
    assert "w c/0/0" in result.stdout and ": 1 damaged of " in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: run ") and "1 damaged" in lines[0]


def test_verify_missing_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["verify", os.fspath(tmp_path / "nope.zarr")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
