"""docs/sweeps: every table names its commit and command, and the README lists them.

The tables are written by ``scripts/regenerate_sweeps.py``; docs/sweeps/README.md is rendered
from the CSVs' provenance lines, so it must equal what the script renders now.
"""

from __future__ import annotations

import importlib.util
import io
import shlex
from pathlib import Path
from types import ModuleType

import pytest

from weightscope.experiments.sweeps import SWEEPS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("regenerate_sweeps",
                                                  ROOT / "scripts" / "regenerate_sweeps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SWEEPS)
def test_table_has_provenance_and_reads(script: ModuleType, name: str) -> None:
    path = DOCS / "sweeps" / f"{name}.csv"
    fields = script.provenance(path)
    assert set(fields) == set(script.FIELDS), f"{path} lacks its '# commit ...' first line"
    assert fields["command"].startswith(f"weightscope sweep {name} ")
    table = script.read_table(path)
    assert list(table.columns[:5]) == ["series", "x", "mean", "std", "n"]
    assert (DOCS / "figures" / f"sweep-{name}.png").exists()


def test_readme_is_rendered_from_the_tables(script: ModuleType) -> None:
    assert (DOCS / "sweeps" / "README.md").read_text() == script.render_readme(DOCS), (
        "docs/sweeps/README.md is generated: run scripts/regenerate_sweeps.py")


def test_provenance_round_trip(script: ModuleType, tmp_path: Path) -> None:
    out, docs = tmp_path / "blocks", tmp_path / "docs"
    out.mkdir()
    (out / "blocks.csv").write_text("series,x,mean,std,n\nREDUCE,0.5,0.1,0.0,1\n")
    (out / "blocks.png").write_bytes(b"png")
    fields = {"commit": "abc1234+dirty", "date": "2026-12-06T01:00Z", "runs": "8",
              "wall_s": "60", "cpu_s": "90", "resumed": "2",
              "command": "weightscope sweep blocks --out out/blocks --seeds 1 --steps 20"}
    script.publish("blocks", "blocks", out, docs, fields)
    assert script.provenance(docs / "sweeps" / "blocks.csv") == fields
    assert script.read_table(io.StringIO((docs / "sweeps" / "blocks.csv").read_text())).shape == (
        1, 5)
    row = [line for line in script.render_readme(docs).splitlines() if "| blocks |" in line]
    assert row == ["| blocks | abc1234+dirty | 2026-12-06T01:00Z | 8 | 1.0 min (resumed; 2 runs "
                   "before) | 1.5 min | `weightscope sweep blocks --out out/blocks --seeds 1 "
                   "--steps 20` |"]


def test_variant_command_and_publish(script: ModuleType, tmp_path: Path) -> None:
    cmd = script.sweep_command("exploit-step", Path("/tmp/sw"), 3, 2, None)
    assert cmd[:5] == ["weightscope", "sweep", "exploit", "--schedule", "step"]
    assert "/tmp/sw/exploit-step" in cmd
    out, docs = tmp_path / "exploit-step", tmp_path / "docs"
    out.mkdir()
    (out / "exploit.csv").write_text("series,x,mean,std,n\nFIX,0.5,0.1,0.0,1\n")
    for png in ("exploit.png", "exploit-explored.png"):
        (out / png).write_bytes(b"png")
    fields = dict.fromkeys(script.FIELDS, "1") | {"command": shlex.join(cmd)}
    script.publish("exploit-step", "exploit", out, docs, fields)
    assert script.provenance(docs / "sweeps" / "exploit-step.csv") == fields
    assert (docs / "figures" / "sweep-exploit-step-explored.png").exists()
    assert "| exploit-step |" in script.render_readme(docs)
    assert "| methods-lm |" not in script.render_readme(docs)  # variants only once made
