"""`weightscope sweep --schedule`: the runs are stored with their schedule, one per directory."""

from __future__ import annotations

from typer.testing import CliRunner
from weightscope_cli.app import app

from weightscope.experiments.sparse_config import RunConfig
from weightscope.store.sweep_results import SweepStore

runner = CliRunner()
TINY_ARGS = ["--steps", "2", "--seeds", "1", "--workers", "1", "--set", "num_samples=200",
             "--set", "batch_size=16", "--set", "width=16"]


def test_schedule_option_is_stored_and_not_mixed(tmp_path) -> None:
    out = tmp_path / "step"
    res = runner.invoke(app, ["sweep", "blocks", "--out", str(out), "--schedule", "step",
                              *TINY_ARGS])
    assert res.exit_code == 0, res.output
    store = SweepStore.open(out)
    assert store.spec["overrides"]["schedule"] == "step"
    configs = [RunConfig.from_json(c) for c in store.to_dataset()["config"].values]
    assert configs and {c.schedule for c in configs} == {"step"}
    mixed = runner.invoke(app, ["sweep", "blocks", "--out", str(out), "--schedule", "constant",
                                *TINY_ARGS])
    assert mixed.exit_code == 2 and "pass another --out" in mixed.output
    bad = runner.invoke(app, ["sweep", "blocks", "--out", str(tmp_path / "x"), "--schedule",
                              "linear", *TINY_ARGS])
    assert bad.exit_code == 2
    assert "schedule must be one of ('constant', 'cosine', 'step'); got 'linear'" in bad.output
    assert "--schedule cosine" in bad.output
