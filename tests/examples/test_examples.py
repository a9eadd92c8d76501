"""Every script in examples/ runs (each in a subprocess, as a user would run it).

Each runs with its shortest setting that still shows what it is about (:data:`SHORT`) and
one torch thread (these models are too small to gain from more, and on a busy machine
several OpenMP threads run them several times slower).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))
#: arguments of each example for a short run (the examples default to longer ones)
SHORT = {"record_plain_loop.py": ["--steps", "40"],
         "sparse_training.py": ["--steps", "60", "--samples", "1000"]}


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    warn = "error::weightscope.errors.WeightscopeWarning"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-W", warn, str(script), str(tmp_path),
                          *SHORT.get(script.name, [])],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "an example should say what it did"
