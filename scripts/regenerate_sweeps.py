"""Regenerate the sweep tables and figures of docs/ from the current code, with provenance.

For each sweep (all of ``weightscope.experiments.sweeps.SWEEPS`` or ``--only`` some) this runs
the one command that makes its numbers, then the one that draws them::

    weightscope sweep NAME --out OUT/NAME --seeds 3 --workers 2 [--steps N]
    weightscope plot-sweep OUT/NAME

and copies ``OUT/NAME/NAME.csv`` to ``DOCS/sweeps/NAME.csv`` (first line: a ``#`` comment with
the commit, date, timings and the command; read it with ``pandas.read_csv(path,
comment="#")`` or :func:`read_table`) and ``OUT/NAME/NAME.png`` to
``DOCS/figures/sweep-NAME.png`` (and ``NAME-explored.png``, error vs explored fraction, where
plot-sweep drew it). Besides the sweeps, :data:`VARIANTS` names documented variants
(``exploit-step``, ``exploit-constant``: the exploit sweep under another learning-rate
schedule; ``methods-lm``: the methods sweep on the language-model task).
``DOCS/sweeps/README.md`` is then rendered from the header lines
of every CSV there (one owner: the CSV says where its numbers come from). Sweeps resume: an
interrupted regeneration run again with the same arguments repeats no finished run (the sweep
store keeps them), and the timings then count only the runs of the last invocation (the README
marks them "resumed"); a sweep directory whose runs were made at another commit is not
resumed (remove it, or pass ``--mixed``). The commit is ``git rev-parse --short HEAD``, with
``+dirty`` when ``weightscope/`` or ``cli/`` differ from it (numbers of a dirty tree are not a
commit's numbers: commit first). The commands import ``weightscope`` and its CLI from the
checkout the script lies in, so a clean ``git worktree`` regenerates its own commit's numbers
with another checkout's virtual environment.

Usage (the documented numbers: 3 seeds, the sweeps' default steps, about 30 min of 2-core CPU)::

    .venv/bin/python scripts/regenerate_sweeps.py                       # every sweep
    .venv/bin/python scripts/regenerate_sweeps.py --only methods exploit
    .venv/bin/python scripts/regenerate_sweeps.py --only blocks --steps 20 --seeds 1 \\
        --out /tmp/sweeps --docs /tmp/docs                               # a smoke test

After a regeneration, re-check docs/reproducing.md's tables and verdicts against the new CSVs.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import io
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from weightscope.experiments.sweeps import SWEEPS

ROOT = Path(__file__).resolve().parent.parent
#: Fields of a CSV's provenance line, in order; ``command`` is last (it holds spaces).
FIELDS = ("commit", "date", "runs", "wall_s", "cpu_s", "resumed", "command")
#: Documented variants of a sweep: name in docs -> (sweep, extra ``weightscope sweep`` options).
VARIANTS = {
    "exploit-step": ("exploit", ("--schedule", "step")),
    "exploit-constant": ("exploit", ("--schedule", "constant")),
    "methods-lm": ("methods", ("--task", "lm")),
}
NAMES = (*SWEEPS, *VARIANTS)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A docs/sweeps CSV (its ``#`` provenance line skipped) as a DataFrame.

    Examples
    --------
    >>> text = "# commit abc command weightscope sweep x\\nseries,x,mean,std,n\\nA,1.0,0.1,0.0,3\\n"
    >>> read_table(io.StringIO(text)).columns.tolist()
    ['series', 'x', 'mean', 'std', 'n']
    """
    return pd.read_csv(path, comment="#")


def provenance(path: str | os.PathLike[str]) -> dict[str, str]:
    """The provenance fields of a CSV's first line (empty when it has none).

    Examples
    --------
    >>> line = "# commit abc date 2026-12-06 command weightscope sweep x --seeds 3\\n"
    >>> provenance(io.StringIO(line))["command"]
    'weightscope sweep x --seeds 3'
    """
    handle = open(path) if isinstance(path, (str, os.PathLike)) else path
    with handle:
        first = handle.readline()
    if not first.startswith("# "):
        return {}
    head, _, command = first[2:].rstrip("\n").partition(" command ")
    words = head.split(" ")
    fields = dict(zip(words[::2], words[1::2], strict=False))
    return {**fields, "command": command}


def commit() -> str:
    """Short hash of HEAD, ``+dirty`` when the package or the CLI differ from it."""
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "weightscope", "cli")
    return head + ("+dirty" if dirty else "")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def sweep_command(name: str, out: Path, seeds: int, workers: int, steps: int | None) -> list[str]:
    """The command that runs sweep ``name`` (a sweep or one of its :data:`VARIANTS`) into
    ``out / name``."""
    sweep, extra = VARIANTS.get(name, (name, ()))
    cmd = ["weightscope", "sweep", sweep, *extra, "--out", _shown(out / name), "--seeds",
           str(seeds), "--workers", str(workers)]
    return cmd + (["--steps", str(steps)] if steps is not None else [])


def run_one(name: str, args: argparse.Namespace) -> dict[str, str]:
    """Run, plot and publish sweep ``name``; return its provenance fields."""
    cmd = sweep_command(name, args.out, args.seeds, args.workers, args.steps)
    before = _stored_runs(args.out / name)
    _check_commit(args.out / name, args.commit, before, args.mixed)
    wall, cpu = time.perf_counter(), _children_cpu()
    _run([_exe(cmd[0]), *cmd[1:]])
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    _run([_exe("weightscope"), "plot-sweep", _shown(args.out / name)])
    fields = {"commit": args.commit, "date": _now(), "runs": str(_stored_runs(args.out / name)),
              "wall_s": f"{wall:.0f}", "cpu_s": f"{cpu:.0f}", "resumed": str(before),
              "command": shlex.join(cmd)}
    publish(name, VARIANTS.get(name, (name,))[0], args.out / name, args.docs, fields)
    return fields


def publish(name: str, sweep: str, directory: Path, docs: Path, fields: dict[str, str]) -> None:
    """Copy the CSV (with its provenance line) and PNGs that ``plot-sweep`` wrote for
    ``sweep`` in ``directory`` into ``docs`` under ``name``."""
    (docs / "sweeps").mkdir(parents=True, exist_ok=True)
    (docs / "figures").mkdir(parents=True, exist_ok=True)
    line = "# " + " ".join(f"{k} {fields[k]}" for k in FIELDS) + "\n"
    body = (directory / f"{sweep}.csv").read_text()
    (docs / "sweeps" / f"{name}.csv").write_text(line + body)
    shutil.copyfile(directory / f"{sweep}.png", docs / "figures" / f"sweep-{name}.png")
    explored = directory / f"{sweep}-explored.png"  # error vs explored fraction, sparse sweeps
    if explored.exists():
        shutil.copyfile(explored, docs / "figures" / f"sweep-{name}-explored.png")


def render_readme(docs: Path) -> str:
    """docs/sweeps/README.md from the provenance lines of the CSVs in ``docs/sweeps``."""
    out = io.StringIO()
    out.write(_README_HEAD)
    out.write("| sweep | commit | date | runs | wall | CPU | command |\n")
    out.write("|---|---|---|---|---|---|---|\n")
    for name in NAMES:
        path = docs / "sweeps" / f"{name}.csv"
        if name in VARIANTS and not path.exists():
            continue
        p = provenance(path) if path.exists() else {}
        if not p:
            out.write(f"| {name} | (no provenance: made before the regeneration script) "
                      "| | | | | |\n")
            continue
        resumed = f" (resumed; {p['resumed']} runs before)" if p.get("resumed", "0") != "0" else ""
        out.write(f"| {name} | {p['commit']} | {p['date']} | {p['runs']} | "
                  f"{_minutes(p['wall_s'])}{resumed} | {_minutes(p['cpu_s'])} | "
                  f"`{p['command']}` |\n")
    return out.getvalue()


_README_HEAD = """\
# Sweep tables: where each number comes from

Every `NAME.csv` here (and `../figures/sweep-NAME.png`) is written by
`scripts/regenerate_sweeps.py` from the command below, at the commit below; its first line
is a `#` comment with the same fields (read the CSV with `pandas.read_csv(path,
comment="#")`). Regenerate all of them with `.venv/bin/python scripts/regenerate_sweeps.py`
(or `make sweeps`), some with `--only NAME ...`; an interrupted run resumes. Wall time is the
sweep command's on the machine that ran it; CPU is its user + sys time, workers included.
A commit ending in `+dirty` had uncommitted changes to `weightscope/` or `cli/`.
This file is generated: edit the script, not this file.

"""


def _minutes(seconds: str) -> str:
    return f"{float(seconds) / 60:.1f} min"


def _stored_runs(directory: Path) -> int:
    from weightscope.experiments.runner import done_keys

    return len(done_keys(directory))


def _check_commit(directory: Path, made_at: str, stored: int, mixed: bool) -> None:
    """Refuse to resume a sweep directory whose runs came from another commit (its table
    would mix two codes' numbers) unless ``mixed``; record the commit for the next resume."""
    mark = directory / "COMMIT"
    previous = mark.read_text().strip() if mark.exists() else None
    if stored and previous != made_at and not mixed:
        source = previous or "an unknown commit"
        raise SystemExit(f"{directory} holds {stored} runs made at {source}, this is {made_at}: "
                         "remove the directory to regenerate, or pass --mixed to resume anyway "
                         "(its table would mix the two).")
    directory.mkdir(parents=True, exist_ok=True)
    mark.write_text(made_at + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _exe(name: str) -> str:
    """``name`` beside this interpreter (the venv's console script), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (the commands run there)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@functools.cache
def _env() -> dict[str, str]:
    """The environment of the commands: ``weightscope`` and ``weightscope_cli`` imported from
    this checkout (a worktree's, not the one an editable install points to)."""
    shim = Path(tempfile.mkdtemp(prefix="regenerate-sweeps-"))
    (shim / "weightscope_cli").symlink_to(ROOT / "cli", target_is_directory=True)
    paths = [str(ROOT), str(shim), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _run(cmd: list[str]) -> None:
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env=_env())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), metavar="NAME",
                    help=f"sweeps to regenerate (default: all of {', '.join(NAMES)})")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "sweeps",
                    help="where the sweep directories go (default: out/sweeps, git-ignored; "
                         "resumed)")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs",
                    help="docs directory receiving sweeps/NAME.csv and figures/sweep-NAME.png")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None,
                    help="shorter runs (not the documented numbers; use another --docs)")
    ap.add_argument("--mixed", action="store_true",
                    help="resume sweep directories whose runs came from another commit")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the chosen sweeps, then docs/sweeps/README.md."""
    args = parse_args(argv)
    args.commit = commit()
    if args.commit.endswith("+dirty"):
        print(f"warning: weightscope/ or cli/ differ from HEAD; the numbers are marked "
              f"{args.commit}", file=sys.stderr)
    for name in args.only:
        fields = run_one(name, args)
        print(f"{name}: {fields['runs']} runs, wall {_minutes(fields['wall_s'])}, CPU "
              f"{_minutes(fields['cpu_s'])}; wrote {args.docs / 'sweeps' / (name + '.csv')}",
              flush=True)
    (args.docs / "sweeps" / "README.md").write_text(render_readme(args.docs))
    print(f"wrote {args.docs / 'sweeps' / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
