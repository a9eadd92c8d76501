"""The sweep results store: round trip, crash consistency, settings checks, lock, summaries."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from weightscope.analyze.sweeps import capacity, summarize, sweep_table
from weightscope.errors import ConfigError, NotARunError, RunNotFoundError
from weightscope.store.sweep_results import COLUMNS, SweepStore, writer_lock


def _row(i: int, series: str = "d=0.1", x: float = 4.0, seed: int = 0,
         err: float = 0.1, point: int = 0) -> dict:
    return {"key": f"k{i}", "point": point, "series": series, "x": x, "seed": seed,
            "test_error": err, "train_loss": 0.5, "n_weights": 100 + i, "steps": 10,
            "wall_s": 1.5, "cpu_s": 1.25, "config": f'{{"seed": {seed}}}'}


def test_round_trip(tmp_path) -> None:
    store = SweepStore.create_or_open(tmp_path, "reset", {"steps": 10, "overrides": {}})
    rows = [_row(i, x=[1.0, np.inf][i % 2], seed=i, err=i / 10) for i in range(5)]
    for row in rows:
        store.append(row)
    ds = SweepStore.open(tmp_path).to_dataset()
    assert ds.sizes["run"] == 5 and ds.attrs["sweep"] == "reset"
    for col in COLUMNS:
        assert ds[col].values.tolist() == [r[col] for r in rows], col
    assert SweepStore.open(tmp_path).keys() == {f"k{i}" for i in range(5)}
    assert SweepStore.open(tmp_path).spec == {"steps": 10, "overrides": {}}


def test_a_row_beyond_the_valid_length_is_ignored_and_overwritten(tmp_path) -> None:
    store = SweepStore.create_or_open(tmp_path, "rewire", {})
    store.append(_row(0))
    for col in COLUMNS:  # a crash after writing row 1 but before raising n_runs
        store.group[col].resize((2,))
        store.group[col][1] = _row(9)[col]
    again = SweepStore.open(tmp_path)
    assert len(again) == 1 and again.keys() == {"k0"}
    SweepStore.create_or_open(tmp_path, "rewire", {}).append(_row(1))
    assert SweepStore.open(tmp_path).keys() == {"k0", "k1"}


def test_settings_must_match(tmp_path) -> None:
    SweepStore.create_or_open(tmp_path, "rewire", {"steps": 10})
    with pytest.raises(ConfigError, match=r"holds the sweep 'rewire'; got 'reset'"):
        SweepStore.create_or_open(tmp_path, "reset", {"steps": 10})
    with pytest.raises(ConfigError, match=r"run with \{'steps': 10\}; got \{'steps': 20\}"):
        SweepStore.create_or_open(tmp_path, "rewire", {"steps": 20})


def test_not_a_sweep(tmp_path) -> None:
    with pytest.raises(RunNotFoundError, match=r"no sweep at .*missing"):
        SweepStore.open(tmp_path / "missing")
    with pytest.raises(NotARunError, match=r"is not a weightscope sweep"):
        SweepStore.open(tmp_path)
    (tmp_path / "results.zarr").mkdir()
    with pytest.raises(NotARunError, match=r"is not a weightscope sweep"):
        SweepStore.create_or_open(tmp_path, "rewire", {})
    with pytest.raises(ConfigError, match=r"a results row needs every column; missing"):
        SweepStore.create_or_open(tmp_path / "b", "rewire", {}).append({"key": "k"})


def test_writer_lock(tmp_path) -> None:
    with writer_lock(tmp_path):
        assert (tmp_path / ".sweep.lock").read_text() == str(os.getpid())
        with pytest.raises(ConfigError, match=r"being written by another sweep"):
            with writer_lock(tmp_path):
                pass
    assert not (tmp_path / ".sweep.lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / ".sweep.lock").write_text(dead)  # left by a killed sweep: taken over
    with writer_lock(tmp_path):
        assert (tmp_path / ".sweep.lock").read_text() == str(os.getpid())


def _runs(rows: list[tuple[str, float, int, float]], sweep: str = "capacity") -> xr.Dataset:
    return xr.Dataset(
        {"series": ("run", [r[0] for r in rows]), "x": ("run", [r[1] for r in rows]),
         "seed": ("run", [r[2] for r in rows]), "test_error": ("run", [r[3] for r in rows]),
         "point": ("run", list(range(len(rows))))}, attrs={"sweep": sweep})


def test_summarize_against_a_loop() -> None:
    rng = np.random.default_rng(0)
    rows = [(f"s{rng.integers(3)}", float(rng.integers(2)), 0, float(rng.random()))
            for _ in range(40)]
    table = summarize(_runs(rows, "rewire"))
    for series, x, mean, std, n in zip(table["series"].values, table["x"].values,
                                       table["mean"].values, table["std"].values,
                                       table["n"].values):
        errs = [r[3] for r in rows if (r[0], r[1]) == (series, x)]
        assert n == len(errs) and mean == pytest.approx(sum(errs) / len(errs))
        assert std == pytest.approx(np.std(errs, ddof=1) if len(errs) > 1 else 0.0)
    assert len(table["row"]) == len({(r[0], r[1]) for r in rows})


def test_capacity_per_seed() -> None:
    rows = [("REGULAR", 1.0, s, 0.05 + 0.01 * s) for s in range(2)]
    rows += [("REDUCE", 0.1, s, 0.25 + 0.01 * s) for s in range(2)]
    rows += [("SEARCH", 0.1, 0, 0.10), ("SEARCH", 0.1, 1, 0.21)]
    table = sweep_table(_runs(rows))
    f = table.where(table["series"] == "f", drop=True)
    gap = table.where(table["series"] == "gap", drop=True)
    per_seed = [(0.25 - 0.10) / (0.25 - 0.05), (0.26 - 0.21) / (0.26 - 0.06)]  # 0.75, 0.25
    assert float(f["mean"][0]) == pytest.approx(np.mean(per_seed))
    assert float(f["std"][0]) == pytest.approx(np.std(per_seed, ddof=1))
    assert float(gap["mean"][0]) == pytest.approx(0.2)
    assert capacity(_runs(rows))["x"].values.tolist() == [0.1, 0.1]
    assert set(table["series"].values) == {"REGULAR", "REDUCE", "SEARCH", "f", "gap"}


def test_results_and_plot_sweep_do_not_import_torch() -> None:
    code = ("import sys, weightscope.store.sweep_results, weightscope.analyze.sweeps, "
            "weightscope.plot.sweeps; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
