"""Pinned cells: one short run per sweep at its documented settings, its numbers pinned.

Each cell is a point of ``get_sweep(name, steps=...)`` at the cell's steps (the sweep's
builder, so its rules such as RESET's ``z = steps / 20`` or SET's ``f`` apply; every other
setting is the documented one: CNN of width 32, 10,000 MNIST-1D samples, batch 128, cosine
decay), seed 0, trained in this process by
:func:`weightscope.experiments.sparse_train.run_config` for a few seconds. Its test error,
final train loss and participating weights are pinned in ``data/pinned_cells.json``, and so are
the summary numbers of ``weightscope demo --steps 120`` (the README's Figure 1 at reduced
steps: active/inactive fractions, the family's distances, test errors, the preset's settings).
A change of the code that changes a documented result fails here until the docs are regenerated
(``scripts/regenerate_sweeps.py``, the README's demo text) and the pins with them::

    .venv/bin/python tests/experiments/test_experiments_pinned.py --regenerate

The train loss is the sensitive number: a different mask, reset or schedule anywhere in the run
changes it. Runs are deterministic on one machine and one torch build (one thread, torch's
deterministic mode); another torch version skips the test, naming the command above.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from weightscope.experiments.sparse_train import run_config
from weightscope.experiments.sweeps import SWEEPS, get_sweep

DATA = Path(__file__).parent / "data" / "pinned_cells.json"
REGENERATE = ".venv/bin/python tests/experiments/test_experiments_pinned.py --regenerate"
#: (sweep, series, x, steps): the cell of each sweep that exercises what is distinctive in it.
CELLS = (
    ("rewire", "d=0.1", 4.0, 100),  # rewiring interval r
    ("grad-scale", "d=0.1", 0.5, 100),  # gradient scale s
    ("reset", "d=0.1", 16.0, 100),  # reset interval z
    ("exploit", "FIX", 0.1, 100),  # FIX at v = 0.5
    ("exploit", "REGULARIZE", 0.1, 100),  # beta = 0.2 / z, z = steps / 20
    ("methods", "SEARCH", 0.1, 100),  # SEARCH + RESET, z = steps / 20
    ("methods", "SET", 0.1, 100),  # SET: f, every steps / 20
    ("methods", "RIGL", 0.1, 100),  # RigL: f, every steps / 20
    ("methods", "LOTTERY", 0.1, 100),  # rewind to steps / 20, trains twice
    ("capacity", "REDUCE", 0.05, 100),  # REDUCE's width at the lowest density
    ("longer", "d=0.25", 2.0, 50),  # t x base steps, z from the base
    ("blocks", "2:4-2d", 0.5, 100),  # hidden layers only, transposable 2:4
)
#: The demo (README's Figure 1) at reduced steps, and the settings its summary names.
DEMO_ARGS = ("demo", "--steps", "120")
DEMO_SETTINGS = ("preset", "task", "recipe", "lr", "weight_decay", "schedule", "arch", "every")
#: Config fields compared (named in the failure) before the results.
FIELDS = ("method", "density", "structure", "layers", "rewire_every", "grad_scale", "fix_at",
          "reset_every", "decay", "drop_fraction", "rewind", "arch", "width", "recipe", "lr",
          "schedule", "steps", "batch_size", "num_samples", "seed")


def cell_id(cell: tuple[str, str, float, int]) -> str:
    """``sweep/series@x`` (the key of a cell in the pinned data)."""
    name, series, x, _ = cell
    return f"{name}/{series}@{x:g}"


def measure(cell: tuple[str, str, float, int]) -> dict[str, Any]:
    """Run the cell (seed 0) and return its config fields and results."""
    name, series, x, steps = cell
    points = [p for p in get_sweep(name, steps=steps).points if (p.series, p.x) == (series, x)]
    assert len(points) == 1, f"sweep {name} has no single point {series} at x={x:g}"
    config = points[0].config
    result = run_config(config)
    data = config.to_dict()
    return {"config": {k: data.get(k) for k in FIELDS},
            "test_error": result.test_error, "train_loss": result.train_loss,
            "n_weights": result.n_weights, "steps": result.steps}


def measure_demo(out: Path) -> dict[str, Any]:
    """Run ``weightscope demo`` at :data:`DEMO_ARGS` into ``out``; its summary numbers, flat."""
    from typer.testing import CliRunner
    from weightscope_cli.app import app

    res = CliRunner().invoke(app, [*DEMO_ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    sets, demo = summary["active_sets"], summary["demo"]
    flat: dict[str, Any] = {f"demo.{k}": demo[k] for k in DEMO_SETTINGS}
    for kind in ("active", "inactive"):
        flat.update({f"{kind}@{p}": v for p, v in sets[f"{kind}_at_progress"].items()})
    family = summary["distance"]["family"]
    flat.update({f"distance.{r}": t for r, t in zip(family["run"], family["total"], strict=True)})
    flat.update({f"test_error.{r['name']}": r["test_error"] for r in demo["runs"]})
    return flat


def _pinned(same_torch: bool = False) -> dict[str, Any]:
    pinned = json.loads(DATA.read_text())
    if same_torch and pinned["torch"] != torch.__version__:
        pytest.skip(f"pins made with torch {pinned['torch']}, this is {torch.__version__}: "
                    f"regenerate them with `{REGENERATE}`")
    return pinned


def test_every_sweep_has_a_pinned_cell() -> None:
    assert {cell[0] for cell in CELLS} == set(SWEEPS)
    assert set(_pinned()["cells"]) == {cell_id(c) for c in CELLS}, f"run `{REGENERATE}`"


@pytest.mark.slow
@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_pinned_cell(cell: tuple[str, str, float, int]) -> None:
    want = _pinned(same_torch=True)["cells"][cell_id(cell)]
    got = measure(cell)
    changed = {k: (want["config"].get(k), v) for k, v in got["config"].items()
               if want["config"].get(k) != v}
    assert not changed, f"{cell_id(cell)}: sweep settings changed (pinned, now): {changed}"
    numbers = ("test_error", "n_weights", "steps")
    assert [got[k] for k in numbers] == [want[k] for k in numbers], (
        f"{cell_id(cell)}: measured {[got[k] for k in numbers]}, pinned "
        f"{[want[k] for k in numbers]} ({', '.join(numbers)}); if the change is meant, "
        f"regenerate the docs and run `{REGENERATE}`")
    assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6, abs=0.0), (
        f"{cell_id(cell)}: train loss {got['train_loss']!r}, pinned {want['train_loss']!r}; if "
        f"the change is meant, regenerate the docs and run `{REGENERATE}`")


@pytest.mark.slow
def test_pinned_demo(tmp_path: Path) -> None:
    want, got = _pinned(same_torch=True)["demo"], measure_demo(tmp_path / "demo")
    assert got.keys() == want.keys(), f"demo summary fields changed; run `{REGENERATE}`"
    changed = {k: (want[k], v) for k, v in got.items()
               if (v != pytest.approx(want[k], rel=1e-6, abs=0.0) if isinstance(v, float)
                   else v != want[k])}
    assert not changed, (f"demo (weightscope {' '.join(DEMO_ARGS)}) changed (pinned, now): "
                         f"{changed}; if meant, update the README and run `{REGENERATE}`")


def regenerate() -> None:
    """Measure every cell and the demo, and write the pinned data."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        demo = measure_demo(Path(tmp) / "demo")
    print("demo", demo, flush=True)
    cells = {}
    for cell in CELLS:
        cells[cell_id(cell)] = measure(cell)
        print(cell_id(cell), cells[cell_id(cell)]["test_error"],
              cells[cell_id(cell)]["train_loss"], flush=True)
    DATA.parent.mkdir(exist_ok=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=DATA.parent).stdout.strip()
    DATA.write_text(json.dumps({"commit": head, "torch": torch.__version__,
                                "machine": platform.machine(), "cells": cells, "demo": demo},
                               indent=1) + "\n")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: python {sys.argv[0]} --regenerate")
    regenerate()
