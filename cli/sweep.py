"""``weightscope sweep NAME --out DIR`` and ``weightscope plot-sweep DIR``: the paper's sweeps."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from weightscope.errors import ConfigError

from .base import app, handle_errors
from .outputs import check_out, name_metric, save_figure, write_text
from .progress import bar
from .storage import parse_value


@app.command()
@handle_errors
def sweep(
    name: Annotated[str, typer.Argument(help="rewire, grad-scale, reset, exploit, methods, "
                                             "capacity, longer or blocks.")],
    out: Annotated[Path, typer.Option(help="Sweep directory (results.zarr; resumed if it "
                                           "exists).")],
    seeds: Annotated[int, typer.Option(help="Seeds per grid point.")] = 3,
    workers: Annotated[int, typer.Option(help="Worker processes (1: run in this process).")]
    = 2,
    steps: Annotated[int | None, typer.Option(help="Training steps per run (default: the "
                                                   "sweep's; 'longer': the base).")] = None,
    schedule: Annotated[str | None, typer.Option(help="Learning-rate schedule of every run: "
                                                      "step (the paper's: warm-up, x0.1 at 1/3, "
                                                      "2/3, 8/9), cosine or constant (default: "
                                                      "cosine). Use one --out per schedule.")]
    = None,
    override: Annotated[list[str] | None, typer.Option(
        "--set", hidden=True, help="FIELD=VALUE for every run (tiny test sizes).")] = None,
    task: Annotated[str, typer.Option(help="mnist1d (the paper's figures on MNIST-1D) or lm "
                                           "(the bundled transformer language model).")]
    = "mnist1d",
) -> None:
    """Run one of the paper's sweeps on MNIST-1D (resumable; plot it with plot-sweep)."""
    from weightscope.experiments.runner import done_keys, pending, run_cost, run_sweep
    from weightscope.experiments.sweeps import get_sweep

    settings = _overrides(override or [])
    if task != "mnist1d":
        settings["task"] = task
    if schedule is not None:
        settings["schedule"] = schedule
    spec = get_sweep(name, steps=steps, **settings)
    check_out(out, create=False)  # before any run: writable, outside every run store
    todo = pending(spec, max(seeds, 1), done_keys(out))
    left = int(sum(run_cost(c) for _, c in todo))
    with bar(f"sweep {name} ({len(todo)} runs, in optimizer steps)", total=left) as advance:
        state: dict[str, float] = {}

        def on_result(point: Any, config: Any, row: dict[str, Any], done: float,
                      _total: float) -> None:
            if not row:  # the cost already done when (re)starting
                state["done"] = done
                return
            advance(int(done - state["done"]),
                    description=f"{name}: {point.series} x={point.x:g} seed {config.seed}")
            state["done"] = done

        report = run_sweep(spec, out, seeds=seeds, workers=workers, on_result=on_result)
    console = Console()
    console.print(f"sweep {name}: {report.executed} runs executed, {report.skipped} already "
                  f"done, {report.total} in all; results in {out / 'results.zarr'}")
    console.print(f"plot it with: weightscope plot-sweep {out}")


@app.command("plot-sweep")
@handle_errors
def plot_sweep_command(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The --out directory of a "
                                                                  "sweep.")],
) -> None:
    """Write the sweep's figure (PNG and PDF) and the table behind it (CSV and JSON) into DIR
    (and NAME-explored.png/.pdf/.json, error against explored fraction, when the runs carry
    their exploration)."""
    from weightscope.analyze.sweeps import sweep_table, table_columns
    from weightscope.plot.sweeps import sweep_figure
    from weightscope.store.sweep_results import SweepStore

    from .exploration import write_sweep_exploration

    store = SweepStore.open(directory)
    check_out(directory)  # writable, before any work
    runs = store.to_dataset()
    if runs.sizes["run"] == 0:
        raise ConfigError(f"'{directory}' holds no finished run yet. Run `weightscope sweep "
                          f"{store.name} --out {directory}` first.")
    table = sweep_table(runs)
    metric = _metric(store.spec)
    fig = name_metric(sweep_figure(table), metric)
    frame = table.to_dataframe().reset_index(drop=True)[table_columns(table)]
    written = [save_figure(fig, directory / f"{store.name}.{ext}") for ext in ("png", "pdf")]
    for ext, text in (("csv", frame.to_csv(index=False)),
                      ("json", json.dumps(_summary(store, runs, frame), indent=1) + "\n")):
        written.append(write_text(directory / f"{store.name}.{ext}", text))
    written += write_sweep_exploration(directory, store.name, table, metric)
    _print_table(store.name, frame, written, metric)


def _metric(spec: dict[str, Any]) -> str:
    """What the sweep's ``test_error`` measures (its task's metric; MNIST-1D: test error)."""
    return str(spec.get("metric", "test error"))


def _overrides(items: list[str]) -> dict[str, Any]:
    result = {}
    for item in items:
        field, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set takes FIELD=VALUE; got {item!r}. Pass e.g. "
                              "--set num_samples=500.")
        result[field] = parse_value(text)
    return result


def _summary(store: Any, runs: Any, frame: Any) -> dict[str, Any]:
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) and k != "x" else v)
             for k, v in row.items()} for row in frame.to_dict("records")]
    for row in rows:
        row["x"] = "inf" if math.isinf(row["x"]) else row["x"]
    return {"sweep": store.name, "spec": store.spec, "runs": int(runs.sizes["run"]),
            "wall_s": float(runs["wall_s"].sum()), "cpu_s": float(runs["cpu_s"].sum()),
            "rows": rows}


def _print_table(name: str, frame: Any, written: list[Path], metric: str) -> None:
    table = Table(title=f"sweep {name}: {metric} (mean ± std over seeds)",
                  title_justify="left")
    for col in ("series", "x", "mean ± std", "n"):
        table.add_column(col, justify="left" if col == "series" else "right")
    for row in frame.itertuples():
        table.add_row(str(row.series), f"{row.x:g}", f"{row.mean:.4f} ± {row.std:.4f}",
                      str(row.n))
    console = Console()
    console.print(table)
    for path in written:
        console.print(f"wrote {path}")
