"""``weightscope analyze RUN --follow``: re-render Figure 1 while runs are being recorded.

A run being written is always a valid store (its committed prefix), so following it is a loop:
reopen the runs every ``interval`` seconds and, when a run committed new snapshots or
iterations, recompute Figure 1 and replace ``figure1.<format>`` and ``summary.json``
atomically (written aside, then renamed: a viewer never sees half a file). Nothing is
rendered while nothing changed, nor while a run being recorded has fewer snapshots than
Figure 1 needs (the loop waits for them; a complete run that short is drawn without its decay
panel, as without ``--follow``). It stops after rendering runs that are all complete, or at Ctrl-C
after a final render of what is stored then. A path where no run exists yet is an error, as
without ``--follow``: start following once the Recorder has been created.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from weightscope.testing import random_walks, write_run
>>> root = Path(tempfile.mkdtemp())
>>> _ = write_run(root / "run.zarr", random_walks(13, 64))   # a complete run: one render
>>> data = follow([str(root / "run.zarr")], root / "out", "svg", interval=0.1,
...               echo=lambda line: None, bins=4)
>>> sorted(p.name for p in (root / "out").iterdir()), data.primary
(['figure1.svg', 'summary.json'], 'run')
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xarray as xr

from weightscope import schema
from weightscope.analyze import Figure1Data, figure1_data
from weightscope.errors import ConfigError, IncompleteRunWarning
from weightscope.schema import MIN_SNAPSHOTS
from weightscope.store import open_run

from .outputs import run_labels, write_outputs

__all__ = ["follow"]

State = tuple[tuple[int, int, bool], ...]


def follow(runs: list[str], out: Path, fmt: str, *, interval: float = 2.0,
           storage_options: dict[str, Any] | None = None,
           echo: Callable[[str], None] = print, sleep: Callable[[float], None] = time.sleep,
           **analysis: Any) -> Figure1Data | None:
    """Render Figure 1 of ``runs`` into ``out`` each time they grow, until all are complete.

    Parameters
    ----------
    runs : list of str
        Run paths or URLs (one architecture, as for ``analyze``).
    out : pathlib.Path
        Directory of ``figure1.<fmt>`` and ``summary.json``.
    fmt : str
        Figure format (png, pdf, svg).
    interval : float
        Seconds between two looks at the runs (> 0).
    storage_options : dict, optional
        fsspec options for URL runs.
    echo : callable
        Receives one status line per render (or wait), and at Ctrl-C.
    sleep : callable
        Waits between looks (replaceable in tests).
    **analysis
        ``keep``, ``param``, ``bins``, ``scope`` of :func:`weightscope.analyze.figure1_data`.

    Returns
    -------
    Figure1Data or None
        The last rendering (None if Ctrl-C came before any run had enough snapshots).
    """
    if not interval > 0:
        raise ConfigError(f"--interval must be > 0 seconds; got {interval!r}. Pass e.g. 2.")
    labels = run_labels(runs)
    last: State | None = None
    data: Figure1Data | None = None
    try:
        while True:
            datasets = [open_run(r, storage_options=storage_options) for r in runs]
            state = _state(datasets)
            if state != last:
                data = _render(datasets, labels, out, fmt, echo, analysis) or data
                last = state
            if all(complete for *_, complete in state):
                return data
            sleep(interval)
    except KeyboardInterrupt:
        echo("interrupted: final render of what is stored now")
        datasets = [open_run(r, storage_options=storage_options) for r in runs]
        if _state(datasets) != last or data is None:
            data = _render(datasets, labels, out, fmt, echo, analysis) or data
        return data


def _state(datasets: list[xr.Dataset]) -> State:
    """What a render depends on: committed snapshots and iterations, and completeness."""
    return tuple((ds.sizes[schema.STEP], ds.sizes.get(schema.ITERATION, 0),
                  bool(ds.attrs.get(schema.COMPLETE))) for ds in datasets)


def _render(datasets: list[xr.Dataset], labels: list[str], out: Path, fmt: str,
            echo: Callable[[str], None], analysis: dict[str, Any]) -> Figure1Data | None:
    """Figure 1 of ``datasets`` into ``out`` (None, after a notice, if a run is too short)."""
    complete = all(bool(ds.attrs.get(schema.COMPLETE)) for ds in datasets)
    short = [(lab, ds.sizes[schema.STEP]) for lab, ds in zip(labels, datasets)
             if ds.sizes[schema.STEP] < MIN_SNAPSHOTS]
    if short and not complete:  # a complete short run is drawn without its decay panel
        lab, n = short[0]
        echo(f"waiting: run {lab!r} has {n} snapshot(s), Figure 1 needs {MIN_SNAPSHOTS}")
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)  # following: expected
        data = figure1_data(datasets, labels=labels, require_decay=False, **analysis)
    fig_path = _write_atomically(data, out, fmt)
    ds = datasets[labels.index(data.primary)]
    status = "complete" if complete else "recording"
    echo(f"{time.strftime('%H:%M:%S')} rendered {data.primary} at step "
         f"{int(ds[schema.STEP].values[-1])} ({ds.sizes[schema.STEP]} snapshots, {status}) "
         f"-> {fig_path}")
    return data


def _write_atomically(data: Figure1Data, out: Path, fmt: str) -> Path:
    """Write the outputs aside in ``out``, then rename them over the previous ones."""
    out.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=".follow-", dir=out))
    try:
        written, _ = write_outputs(data, aside, fmt)
        for path in written:
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return out / written[0].name
