"""The wheel ships every package of the source tree."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts)
             for p in (REPO / "weightscope").rglob("__init__.py")}
    listed = set(config["packages"])
    assert found <= listed
    assert listed - found == {"weightscope_cli"}
    assert config["package-dir"] == {"weightscope_cli": "cli"}
