"""What ``weightscope analyze`` (and ``demo``, ``--follow``) leave behind: ``figure1.<format>``,
``summary.json`` and the summary table printed at the end.

The numbers of :func:`weightscope.analyze.summary` are computed once per rendering: the same
dict is written to ``summary.json`` and given to :func:`print_summary`.

Every command that writes files (``analyze``, ``demo``, ``sweep``, ``plot-sweep``) checks its
output directory with :func:`check_out` before any work, and writes each file with
:func:`write_atomically`: into a temporary file of the same directory, renamed over the old one
once complete, so a kill leaves the previous file or the new one, never a truncated one. An
output that is a symbolic link is replaced by the new file, never written through.

Examples
--------
>>> run_labels(["runs/a.zarr", "other/a.zarr", "s3://bucket/b.zarr/"])
['a#0', 'a#1', 'b']
>>> import tempfile
>>> out = check_out(Path(tempfile.mkdtemp()) / "figures")
>>> write_atomically(out / "note.txt", lambda f: f.write(b"hello"))
>>> (out / "note.txt").read_text(), sorted(p.name for p in out.iterdir())
('hello', ['note.txt'])
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from weightscope.analyze import Figure1Data, summary
from weightscope.errors import ConfigError, arg
from weightscope.plot import figure1

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from .progress import phases

__all__ = ["check_out", "print_summary", "run_labels", "write_atomically", "write_outputs"]

#: The metadata file of a zarr (v3) group or array: a directory holding one is a store.
_STORE_MARK = "zarr.json"


def run_labels(runs: list[str]) -> list[str]:
    """Short unique names of runs (their directory names without ``.zarr``)."""
    names = [Path(r.rstrip("/")).name.removesuffix(".zarr") or r for r in runs]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def write_outputs(data: Figure1Data, out: Path, fmt: str,
                  extra: dict[str, Any] | None = None) -> tuple[list[Path], dict[str, Any]]:
    """Write ``figure1.<fmt>`` and ``summary.json`` (plus ``extra`` fields) into ``out``
    (checked with :func:`check_out` by the caller), each atomically.

    Returns the paths written and the numbers of ``summary.json`` (for :func:`print_summary`).
    """
    out.mkdir(parents=True, exist_ok=True)
    fig_path, json_path = out / f"figure1.{fmt}", out / "summary.json"
    with phases("rendering Figure 1"):
        fig = figure1(data)
        save_figure(fig, fig_path)
    numbers = {**summary(data), **(extra or {})}
    write_text(json_path, json.dumps(numbers, indent=1) + "\n")
    return [fig_path, json_path], numbers


def check_out(out: Path, *, create: bool = True) -> Path:
    """Check the output directory ``out`` before any work; return it.

    It must lie outside every zarr store (a run: writing there would alter it), be a directory
    or not exist yet, and be writable: created when ``create`` (a probe file is made and
    removed), else its nearest existing ancestor must allow creating it.

    Raises
    ------
    ConfigError
        ``out`` breaks one of these rules (the message names it and the fix).
    """
    here = Path(os.path.abspath(out))
    store = _enclosing_store(here)
    if store is not None:
        raise ConfigError(f"{arg('out')} must lie outside every run store; '{out}' is inside "
                          f"the zarr store '{store}', and writing there would alter it. Pass "
                          f"a directory outside it, e.g. {arg('out')} '{store.parent}'.")
    if here.exists() and not here.is_dir():
        raise ConfigError(f"{arg('out')} must be a directory; '{out}' is a file. Pass a new "
                          "or existing directory.")
    try:
        if create:
            here.mkdir(parents=True, exist_ok=True)
            _probe(here)
        else:
            _check_creatable(here)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(f"{arg('out')} must be a writable directory; '{out}' is not "
                          f"({reason}). Pass a directory you can write to.") from None
    return out


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Create or replace the file ``path`` with what ``write`` writes to a binary file.

    ``write`` fills a new temporary file of the same directory (created exclusively, so never
    an existing file or link), which is synced and renamed to ``path``: readers and a kill see
    the old file or the new one. A link at ``path`` is replaced, not followed; on failure the
    temporary file is removed and ``path`` is untouched.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        if path.is_dir() and not path.is_symlink():
            raise ConfigError(f"cannot write '{path}': a directory has that name. Remove it or "
                              f"pass another {arg('out')}.")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_figure(fig: Figure, path: Path) -> Path:
    """``fig`` saved to ``path`` atomically, in the format of its suffix; returns ``path``."""
    write_atomically(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".")))
    return path


def write_text(path: Path, text: str) -> Path:
    """``text`` written to ``path`` atomically; returns ``path``."""
    write_atomically(path, lambda f: f.write(text.encode()))
    return path


def name_metric(fig: Figure, metric: str) -> Figure:
    """Relabel the y axes of a sweep figure (drawn as "test error") with the task's metric."""
    for ax in fig.axes:
        ax.set_ylabel(ax.get_ylabel().replace("test error", metric))
    return fig


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _enclosing_store(path: Path) -> Path | None:
    """The outermost directory at or above ``path`` (symbolic links resolved, else as given)
    that is a zarr store, or None."""
    for chain in (path.resolve(), path):
        stores = [c for c in (chain, *chain.parents) if (c / _STORE_MARK).is_file()]
        if stores:
            return stores[-1]
    return None


def _probe(directory: Path) -> None:
    """Raise OSError unless a file can be created in ``directory``."""
    fd, probe = tempfile.mkstemp(prefix=".weightscope-probe-", dir=directory)
    os.close(fd)
    os.unlink(probe)


def _check_creatable(path: Path) -> None:
    """Raise OSError unless ``path`` exists as a writable directory or can be created."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise NotADirectoryError(20, "a parent is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(13, "not writable")


def print_summary(s: dict[str, Any], paths: list[Path]) -> None:
    """A short table of the trends behind each panel (and a warning line on stderr when the
    decay panel is missing: the run is too short)."""
    sets, dec, dist = s["active_sets"], s["decay"], s["distance"]
    table = Table(title=f"Figure 1 of {s['primary']}", title_justify="left")
    table.add_column("panel")
    table.add_column("measure")
    table.add_column("value", justify="right")
    at, off = sets["active_at_progress"], sets.get("inactive_at_progress")
    if off:  # when the sets settle (summaries before issue 16 lack it)
        table.add_row("left", "active / inactive at step 0, at 25%", f"{at['0%']:.3f} / "
                      f"{off['0%']:.3f}, {at['25%']:.3f} / {off['25%']:.3f}")
    table.add_row("left", f"active at 10% / 50% / 90% (keep={sets['keep']:g})",
                  f"{at['10%']:.3f} / {at['50%']:.3f} / {at['90%']:.3f}")
    table.add_row("left", "final active / inactive",
                  f"{sets['final_active']:.3f} / {sets['final_inactive']:.3f}")
    fam = dist.get("family")
    if fam:
        rho = fam["spearman_total_vs_added"]
        table.add_row("middle", "Spearman(total distance, weights added)",
                      "n/a" if rho is None else f"{rho:+.2f}")
    if dist.get("unknown_steps"):
        table.add_row("middle", "steps of unknown distance (NaN/Inf weights; a gap)",
                      str(dist["unknown_steps"]))
    _decay_rows(table, dec)
    excluded = sets["excluded_nan"]
    if excluded:
        table.add_row("all", "weights excluded (NaN/Inf)", str(excluded))
    for label in s.get("diverged", []):
        table.add_row("all", f"run {label} diverged: analyzed up to", "last finite snapshot")
    console = Console()
    console.print(table)
    if dec.get("note") and not dec.get("missing"):
        console.print(f"note: {dec['note']}")
    for p in paths:
        console.print(f"wrote {p}")


def _decay_rows(table: Table, dec: dict[str, Any]) -> None:
    """The right panel's rows; a run too short for it gets a warning line on stderr."""
    if dec.get("missing"):
        typer.echo(f"warning: no decay panel: {dec['missing']}", err=True)
        table.add_row("right", "decay time Δ", "missing (run too short)")
        return
    rho = dec["spearman_median_vs_magnitude"]
    table.add_row("right", f"Spearman(median Δ, final |w|) over {dec['bins']} bins of "
                  f"{dec['param']}", "n/a" if rho is None else f"{rho:+.2f}")
    if dec.get("censored_fraction"):
        frac = dec["censored_fraction"]
        table.add_row("right", f"censored (Δ ≥ cap {dec['cap']:.2g}): weights per bin, medians",
                      f"{min(frac):.0%}-{max(frac):.0%}, {sum(dec['censored_median'])} of "
                      f"{dec['bins']}")
