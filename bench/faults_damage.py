"""Damaged and hostile stores for ``bench/faults.py``: each case damages a copy of a good run.

A case is ``(name, harmless, damage)``: ``damage(run_dir)`` edits the copy; ``harmless``
cases (a symlinked run, NaN distance...) must give the good run's result, every other case
an exit-2 one-liner from ``weightscope analyze`` (and from ``verify`` / ``info`` an exit-2
one-liner or a correct result). Values are rewritten through zarr (valid checksums) where the
damage is meant to be seen by the metadata / value checks, not by the checksums.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

Damage = Callable[[Path], None]


def _first_chunk(run: Path, array: str) -> Path:
    chunks = sorted(p for p in (run / array / "c").rglob("*") if p.is_file())
    return chunks[0]


def _delete(array: str) -> Damage:
    return lambda run: _first_chunk(run, array).unlink()


def _flip(array: str, n: int = 64) -> Damage:
    def damage(run: Path) -> None:
        path = _first_chunk(run, array)
        data = bytearray(path.read_bytes())
        mid = len(data) // 3
        for i in range(mid, min(mid + n, len(data) - 4)):
            data[i] ^= 0xA5
        path.write_bytes(bytes(data))
    return damage


def _truncate(array: str, keep: float = 0.5) -> Damage:
    def damage(run: Path) -> None:
        path = _first_chunk(run, array)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return damage


def _replace_with(kind: str, array: str) -> Damage:
    def damage(run: Path) -> None:
        path = _first_chunk(run, array)
        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "devzero":
            path.symlink_to("/dev/zero")
        elif kind == "dangling":
            path.symlink_to(path.parent / "nowhere")
        elif kind == "loop":
            path.symlink_to(path)
    return damage


def _meta(target: str, edit: Callable[[dict], None]) -> Damage:
    def damage(run: Path) -> None:
        path = run / target / "zarr.json"
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))
    return damage


def _attr(key: str, value: object) -> Damage:
    return _meta(".", lambda m: m["attributes"].__setitem__(key, value))


def _values(array: str, edit: Callable[[np.ndarray], np.ndarray]) -> Damage:
    def damage(run: Path) -> None:
        arr = zarr.open_array(run / array, mode="r+")
        arr[...] = edit(arr[...])
    return damage


def _write(target: str, text: str) -> Damage:
    return lambda run: (run / target).write_text(text)


def _first_distance(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def edit(d: np.ndarray) -> np.ndarray:
        d = d.copy()
        d[1, 0] = value
        return d
    return edit


def _dup_names(p: np.ndarray) -> np.ndarray:
    p = p.copy()
    p[1] = p[0]
    return p


def _shift(v: np.ndarray, by: int = 5) -> np.ndarray:
    return v + by


def _fifo_meta(run: Path) -> None:
    (run / "zarr.json").unlink()
    os.mkfifo(run / "zarr.json")


def _run_is_file(run: Path) -> None:
    shutil.rmtree(run)
    run.write_text("not a run")


def _empty(run: Path) -> None:
    shutil.rmtree(run)
    run.mkdir()


def _symlinked(run: Path) -> None:
    real = run.with_name(run.name + ".real")
    run.rename(real)
    run.symlink_to(real.name)  # relative to the link's directory, whatever the root


def _noop(run: Path) -> None:
    pass


def _shape(array: str, shape: list[int]) -> Damage:
    return _meta(array, lambda m: m.__setitem__("shape", shape))


def _nan_flagged(good: object, got: object) -> bool:
    """A NaN distance (unknown step) is analyzed as the good run but for ``distance``, where
    the unknown step is counted and its normalized distance left out (None)."""
    if not (isinstance(good, dict) and isinstance(got, dict)):
        return False
    rest = {k: v for k, v in good.items() if k != "distance"}
    if rest != {k: v for k, v in got.items() if k != "distance"}:
        return False
    d0, d1 = good["distance"], got["distance"]
    return (d1.get("unknown_steps") == d0.get("unknown_steps", 0) + 1
            and sum(v is None for v in d1.get("normalized", [])) == 1 + sum(
                v is None for v in d0.get("normalized", [])))


Expect = bool | Callable[[object, object], bool]  # harmless: equal result, or this check


def cases() -> list[tuple[str, Expect, Damage]]:
    """Every damaged / hostile case (name, harmless, damage) on a plain (uncompressed) run;
    the ``zstd:`` cases are applied to a zstd-compressed run. ``harmless`` is True (the good
    run's result), False (refused), or a check ``(good summary, summary) -> bool`` of the
    result a harmless damage must give."""
    out: list[tuple[str, Expect, Damage]] = [("untouched", True, _noop),
                                           ("run dir is a symlink", True, _symlinked)]
    for a in ("w", "step", "distance", "param_id", "index", "numel", "param", "iteration"):
        out.append((f"deleted {a} chunk", False, _delete(a)))
    for a in ("w", "step", "distance", "param_id", "iteration"):
        out.append((f"64 flipped bytes in {a} chunk", False, _flip(a)))
    for a in ("w", "step", "distance", "index"):
        out.append((f"truncated {a} chunk", False, _truncate(a)))
    out += [("w chunk cut to 0 bytes", False, _truncate("w", 0.0)),
            ("w chunk cut by its checksum", False, _truncate("w", 0.99)),
            ("FIFO in place of a w chunk", False, _replace_with("fifo", "w")),
            ("directory in place of a w chunk", False, _replace_with("dir", "w")),
            ("w chunk -> /dev/zero", False, _replace_with("devzero", "w")),
            ("dangling symlink for a w chunk", False, _replace_with("dangling", "w")),
            ("symlink loop for a step chunk", False, _replace_with("loop", "step")),
            ("FIFO in place of the group's zarr.json", False, _fifo_meta),
            ("valid_steps 30.7", False, _attr("valid_steps", 30.7)),
            ("valid_steps -1", False, _attr("valid_steps", -1)),
            ("valid_steps beyond the arrays", False, _attr("valid_steps", 10**6)),
            ("valid_steps '6'", False, _attr("valid_steps", "6")),
            ("valid_iterations true", False, _attr("valid_iterations", True)),
            ("valid_iterations NaN", False, _attr("valid_iterations", float("nan"))),
            ("param_shapes missing", False, _attr("param_shapes", {})),
            ("format version 99", False, _attr("weightscope_format", 99)),
            ("w shape 1e12 weights", False, _shape("w", [64, 10**12])),
            ("w chunk shape 1e9 x 1e9", False, _meta("w", lambda m: m["chunk_grid"][
                "configuration"].__setitem__("chunk_shape", [10**9, 10**9]))),
            ("step shorter than w", False, _shape("step", [1])),
            ("w dtype float64 in metadata", False, _meta("w", lambda m: m.__setitem__(
                "data_type", "float64"))),
            ("unknown codec in w", False, _meta("w", lambda m: m["codecs"].insert(
                0, {"name": "nosuchcodec"}))),
            ("invalid JSON in w/zarr.json", False, _write("w/zarr.json", "{not json")),
            ("invalid JSON in the group's zarr.json", False, _write("zarr.json", "[1, 2")),
            ("group zarr.json deleted", False, lambda run: (run / "zarr.json").unlink()),
            ("run is a file", False, _run_is_file),
            ("run is an empty directory", False, _empty),
            ("negative distance", False, _values("distance", _first_distance(-1.0))),
            ("NaN distance (unknown step)", _nan_flagged,
             _values("distance", _first_distance(np.nan))),
            ("infinite distance", False, _values("distance", _first_distance(np.inf))),
            ("duplicate parameter names", False, _values("param", _dup_names)),
            ("param_id out of range", False, _values("param_id", lambda v: v + 100)),
            ("negative numel", False, _values("numel", lambda v: -v)),
            ("steps not increasing", False, _values("step", lambda v: v[::-1].copy())),
            ("index beyond numel", False, _values("index", lambda v: v + 10**6)),
            ("zstd: 64 flipped bytes in w chunk", False, _flip("w")),
            ("zstd: truncated w chunk", False, _truncate("w")),
            ("zstd: deleted w chunk", False, _delete("w")),
            ("zstd: 1 flipped byte in w chunk", False, _flip("w", 1))]
    return out


COMMANDS = ("verify", "info", "analyze")
TIMEOUT = 180  # seconds: a command still running then is a hang


def good_runs(root: Path) -> dict[str, Path]:
    """A plain and a zstd-compressed run of the tests' tiny model (30 steps, every=1)."""
    import torch  # noqa: F401  (training side only)
    from testutil import tiny_model, train

    import weightscope as ws
    runs = {}
    for compression in ("none", "zstd"):
        path = root / f"good-{compression}.zarr"
        model = tiny_model()
        with ws.Recorder(path, model, every=1, compression=compression) as rec:
            train(model, 30, after_step=lambda s, loss, o: rec.step(loss=loss))
        runs[compression] = path
    return runs


def cli(command: str, run: Path, out: Path) -> tuple[str, str]:
    """Run one CLI command on ``run``: (outcome class, first stderr line)."""
    import subprocess
    import sys
    args = [sys.executable, "-m", "weightscope_cli.app", command, str(run)]
    if command == "analyze":
        args += ["--out", str(out)]
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "hang", ""
    err = [line for line in res.stderr.splitlines() if line.strip()]
    first = err[0][:160] if err else ""
    if len(err) > 1:  # what the extra lines are, for the report
        first += f" || {err[1][:100]}"
    if res.returncode < 0 or "Traceback" in res.stderr:
        return f"crash (rc {res.returncode})", first
    if res.returncode == 0:
        return "exit 0", first
    return (f"exit {res.returncode} one line" if len(err) == 1
            else f"exit {res.returncode} {len(err)} lines"), first


def _summary(out: Path) -> object:
    """``summary.json`` of an ``analyze --out out``, its run names replaced by ``RUN`` (the
    good run and a case's copy differ in name only), None if there is none."""
    path = out / "summary.json"
    if not path.exists():
        return None
    text = path.read_text()
    data = json.loads(text)
    names = data.get("runs", []) if isinstance(data, dict) else []
    for name in sorted({str(n) for n in names}, key=len, reverse=True):
        text = text.replace(json.dumps(name), '"RUN"')
    return json.loads(text)


def one_case(root: Path, good: dict[str, Path], expected: dict[str, object], i: int,
             case: tuple[str, Expect, Damage]) -> tuple[str, str, dict[str, tuple[str, str]]]:
    """Damage a copy of a good run and classify each command: (verdict, name, outcomes)."""
    name, harmless, damage = case
    base = "zstd" if name.startswith("zstd:") else "none"
    run = root / f"case{i}" / "run.zarr"
    shutil.copytree(good[base], run.parent / "orig.zarr", symlinks=True)
    (run.parent / "orig.zarr").rename(run)
    damage(run)
    outcomes = {c: cli(c, run, run.parent / f"out-{c}") for c in COMMANDS}
    bad = [c for c, (o, _) in outcomes.items()
           if o.startswith(("crash", "hang")) or (o.startswith("exit") and "lines" in o)]
    not2 = [c for c, (o, _) in outcomes.items() if o.startswith("exit") and not o.startswith(
        ("exit 0", "exit 2"))]
    got = _summary(run.parent / "out-analyze")
    right = harmless(expected[base], got) if callable(harmless) else got == expected[base]
    if bad:
        verdict = "CRASH / HANG / TRACEBACK / SEVERAL LINES"
    elif not2:
        verdict = f"NOT EXIT 2 on damage ({', '.join(not2)})"
    elif outcomes["analyze"][0] == "exit 0" and not right:
        verdict = "SILENT WRONG NUMBER (analyze exit 0, result differs)"
    elif outcomes["analyze"][0] == "exit 0":
        verdict = ("correct result" if harmless
                   else "correct result although damaged (damage not used by analyze)")
    elif harmless:
        verdict = "refused although harmless (exit 2 one line)"
    else:
        verdict = "exit-2 one-liner"
    shutil.rmtree(run.parent, ignore_errors=True)
    return verdict, name, outcomes


def run_cases(root: Path, count: Callable[[str, str], None], workers: int = 3) -> None:
    """Every case of :func:`cases`, ``workers`` at a time; counts verdicts; prints each."""
    from concurrent.futures import ThreadPoolExecutor
    good = good_runs(root)
    expected = {}
    for k, path in good.items():
        outcome = cli("analyze", path, root / f"good-out-{k}")
        assert outcome[0] == "exit 0", outcome
        expected[k] = _summary(root / f"good-out-{k}")
    all_cases = cases()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda ic: one_case(root, good, expected, *ic),
                                enumerate(all_cases)))
    print(f"damaged / hostile stores ({len(all_cases)} cases; verify | info | analyze):")
    for verdict, name, outcomes in results:
        count("damaged store", verdict)
        shown = " | ".join(o for o, _ in outcomes.values())
        line = next((f for _, f in outcomes.values() if f), "")
        print(f"  {name:42s} {verdict:28s} [{shown}] {line[:110]}")
