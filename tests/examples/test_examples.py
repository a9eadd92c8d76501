"""Every script in examples/ runs (each in a subprocess, as a user would run it).

Each runs with its shortest setting that still shows what it is about (:data:`SHORT`) and
one torch thread (these models are too small to gain from more, and on a busy machine
several OpenMP threads run them several times slower). weightscope's warnings are errors in
the example's process (:data:`RUNNER`: ``python -W error::weightscope.errors...`` would be
ignored, the interpreter reads ``-W`` before it can import weightscope); the examples that
need transformers skip without it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))
#: arguments of each example for a short run (the examples default to longer ones)
SHORT = {"record_plain_loop.py": ["--steps", "40"],
         "sparse_training.py": ["--steps", "60", "--samples", "1000"],
         "hf_gpt2.py": ["--steps", "8"],
         "resnet.py": ["--steps", "6"]}
#: optional packages an example imports
NEEDS = {"hf_gpt2.py": "transformers"}
#: runs ``sys.argv[1]`` as ``__main__`` with WeightscopeWarning as an error
RUNNER = ("import runpy, sys, warnings\n"
          "from weightscope.errors import WeightscopeWarning\n"
          "warnings.simplefilter('error', WeightscopeWarning)\n"
          "sys.argv = sys.argv[1:]\n"
          "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    needed = NEEDS.get(script.name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{script.name} needs {needed}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", RUNNER, str(script), str(tmp_path),
                          *SHORT.get(script.name, [])],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "an example should say what it did"


def test_warnings_are_errors_in_the_examples(tmp_path):
    script = tmp_path / "warns.py"
    script.write_text("import warnings\nfrom weightscope.errors import WeightscopeWarning\n"
                      "warnings.warn('x', WeightscopeWarning)\n")
    out = subprocess.run([sys.executable, "-c", RUNNER, str(script)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "WeightscopeWarning" in out.stderr
