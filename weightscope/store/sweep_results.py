"""Results store of a sweep: one zarr group of finished runs, appended as they end.

A sweep directory ``DIR`` holds ``DIR/results.zarr``, a zarr v3 group with one 1-D array per
column of :data:`COLUMNS` (and of :data:`OPTIONAL_COLUMNS` once a row had one) along the ``run``
dimension, and group attrs ``weightscope_sweep``
(format version), ``name``, ``spec`` (what must match to resume: base steps and overrides) and
``n_runs`` (the valid length). :meth:`SweepStore.append` grows the arrays, writes the row, then
raises ``n_runs``; zarr's local store writes every file atomically, so a sweep killed at any
moment leaves a store whose first ``n_runs`` rows are exactly the runs that finished. Only one
process writes (the parent of the sweep's workers); a lock file ``DIR/.sweep.lock`` refuses a
second live writer.

:meth:`SweepStore.to_dataset` gives the runs as an ``xarray.Dataset`` over ``run``;
:func:`weightscope.analyze.sweeps.summarize` turns them into the table behind a figure.

Examples
--------
>>> import tempfile
>>> from weightscope.analyze.sweeps import summarize
>>> from weightscope.store.sweep_results import SweepStore
>>> out = tempfile.mkdtemp()
>>> store = SweepStore.create_or_open(out, "rewire", {"steps": 10})
>>> for seed, err in enumerate([0.2, 0.4]):
...     store.append({"key": f"k{seed}", "point": 0, "series": "d=0.1", "x": 4.0, "seed": seed,
...                   "test_error": err, "train_loss": 0.1, "n_weights": 10, "steps": 10,
...                   "wall_s": 1.0, "cpu_s": 1.0, "config": "{}"})
>>> table = summarize(SweepStore.open(out).to_dataset())
>>> round(float(table["mean"][0]), 4), round(float(table["std"][0]), 4), int(table["n"][0])
(0.3, 0.1414, 2)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from weightscope.errors import ConfigError, NotARunError, RunNotFoundError

__all__ = ["COLUMNS", "FORMAT_VERSION", "OPTIONAL_COLUMNS", "SweepStore", "writer_lock"]

FORMAT_VERSION = 1
#: Columns of the results table and their dtypes.
COLUMNS: dict[str, Any] = {
    "key": str, "point": "int64", "series": str, "x": "float64", "seed": "int64",
    "test_error": "float64", "train_loss": "float64", "n_weights": "int64", "steps": "int64",
    "wall_s": "float64", "cpu_s": "float64", "config": str,
}
#: Float columns added later (issue 16: the exploration summary of sparse runs). A store gets
#: the array with the first row that has the column; rows without it, and every row of a
#: store written before, read NaN.
OPTIONAL_COLUMNS: dict[str, Any] = {"explored_fraction": "float64", "flip_rate": "float64"}
_CHUNK = 1024


class SweepStore:
    """The results of one sweep in ``DIR/results.zarr`` (see the module docstring)."""

    def __init__(self, out: Path, group: zarr.Group) -> None:
        self.out = out
        self.group = group

    @classmethod
    def create_or_open(cls, out: str | os.PathLike[str], name: str,
                       spec: Mapping[str, Any]) -> SweepStore:
        """Open the sweep in ``out`` for appending, or create it; ``name`` and ``spec`` must
        match those it was created with (so a resumed sweep never mixes settings).

        Raises
        ------
        ConfigError
            ``out`` holds another sweep, or the same sweep with other settings.
        NotARunError
            ``out/results.zarr`` exists but is not a sweep store.
        """
        out = Path(out)
        if (out / "results.zarr").exists():
            store = cls.open(out, mode="r+")
            store._check_same(name, dict(spec))
            return store
        out.mkdir(parents=True, exist_ok=True)
        group = zarr.open_group(out / "results.zarr", mode="w-", zarr_format=3)
        for col, dtype in COLUMNS.items():
            group.create_array(col, shape=(0,), chunks=(_CHUNK,), dtype=dtype)
        group.attrs.update({"weightscope_sweep": FORMAT_VERSION, "name": name,
                            "spec": json.loads(json.dumps(dict(spec))), "n_runs": 0})
        return cls(out, group)

    @classmethod
    def open(cls, out: str | os.PathLike[str], mode: str = "r") -> SweepStore:
        """Open the sweep in directory ``out`` (read-only by default).

        Raises
        ------
        RunNotFoundError
            ``out`` does not exist.
        NotARunError
            ``out`` is not a sweep directory.
        """
        out = Path(out)
        if not out.exists():
            raise RunNotFoundError(f"no sweep at '{out}': the path does not exist. Give the "
                                   "--out directory of `weightscope sweep`.")
        try:
            group = zarr.open_group(out / "results.zarr", mode=mode, zarr_format=3)
            ok = group.attrs.get("weightscope_sweep") == FORMAT_VERSION
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError, ValueError):
            ok = False
        if not ok or any(col not in group for col in COLUMNS):
            raise NotARunError(f"'{out}' is not a weightscope sweep: it has no results.zarr "
                               "written by `weightscope sweep`. Give the --out directory of "
                               "`weightscope sweep`.")
        return cls(out, group)

    @property
    def name(self) -> str:
        """Name of the sweep (``"rewire"``...)."""
        return str(self.group.attrs["name"])

    @property
    def spec(self) -> dict[str, Any]:
        """Settings the sweep was created with (base steps, overrides)."""
        return dict(self.group.attrs["spec"])

    def __len__(self) -> int:
        return int(self.group.attrs["n_runs"])

    def keys(self) -> set[str]:
        """Config keys of the finished runs."""
        return set(self.group["key"][: len(self)].tolist())

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one finished run (a value for every column of :data:`COLUMNS`)."""
        missing = sorted(set(COLUMNS) - set(row))
        if missing:
            raise ConfigError(f"a results row needs every column; missing {missing}.")
        n = len(self)
        for col in [*COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in row or c in self.group)]:
            if col not in self.group:
                self.group.create_array(col, shape=(0,), chunks=(_CHUNK,),
                                        dtype=OPTIONAL_COLUMNS[col], fill_value=np.nan)
            array = self.group[col]
            if array.shape[0] < n + 1:
                array.resize((n + 1,))
            array[n] = row.get(col, np.nan)
        self.group.attrs["n_runs"] = n + 1

    def to_dataset(self) -> xr.Dataset:
        """The finished runs as an ``xarray.Dataset`` over ``run`` (configs as JSON text)."""
        n = len(self)
        data = {col: ("run", np.asarray(self.group[col][:n])) for col in COLUMNS}
        for col, dtype in OPTIONAL_COLUMNS.items():
            data[col] = ("run", _optional(self.group, col, n, dtype))
        for col in ("key", "series", "config"):
            data[col] = ("run", data[col][1].astype(object))
        return xr.Dataset(data, attrs={"sweep": self.name, "spec": json.dumps(self.spec)})

    def _check_same(self, name: str, spec: dict[str, Any]) -> None:
        spec = json.loads(json.dumps(spec))
        if self.name != name:
            raise ConfigError(f"'{self.out}' holds the sweep {self.name!r}; got {name!r}. Pass "
                              "another --out directory for a different sweep.")
        if self.spec != spec:
            raise ConfigError(f"'{self.out}' holds sweep {name!r} run with {self.spec}; got "
                              f"{spec}. Resume with the same settings or pass another --out.")


def _optional(group: zarr.Group, col: str, n: int, dtype: Any) -> np.ndarray:
    """Column ``col`` of the first ``n`` rows: NaN where it was never written."""
    out = np.full(n, np.nan, dtype=dtype)
    if col in group:
        stored = np.asarray(group[col][: min(n, group[col].shape[0])])
        out[: len(stored)] = stored
    return out


@contextmanager
def writer_lock(out: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``out/.sweep.lock`` (holding our pid) while writing; refuse a second live writer.

    A lock left by a process that no longer exists (a killed sweep) is taken over.

    Raises
    ------
    ConfigError
        Another live process holds the lock.
    """
    path = Path(out) / ".sweep.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            pid = _lock_owner(path)
            if attempt or (pid is not None and _alive(pid)):
                raise ConfigError(f"'{out}' is being written by another sweep (pid {pid}). Wait "
                                  "for it to finish or pass another --out.") from None
            path.unlink(missing_ok=True)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
