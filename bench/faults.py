"""Fault injection against the run store: kills, two writers, full disks, damaged stores.

Long cases of issue 14's fault suite (fast ones are in ``tests/store`` and
``tests/record/test_record_crash.py``); prints a summary table of counts:

- **kill -9** of a recording process (``tests/_support/crash_worker.py``: the tests' tiny model,
  every=3, ``flush_seconds`` 0.2) at a moment drawn uniformly from the start of the Recorder's
  construction to the end of its ``close()`` (as timed on an unkilled run). Every store must
  open (or not exist, killed before creation completed), hold a contiguous prefix bit-exact
  against a deterministic replay of the same training, and resume to a complete run, itself
  bit-exact. Flush lateness: how much older than ``flush_seconds`` the first uncommitted
  snapshot was when the process died.
- **two writers** (processes): overwrite and resume of a live run (its writer stopped with
  SIGSTOP at step 30, so it is live whatever the load) are refused with
  ``RunLockedError`` and the live run completes bit-exact; two processes creating one run at
  once: one wins, the other is refused, the run is the winner's.
- **full disk**: a Recorder of 0.8 MB snapshots on a 5 MB tmpfs and on a 16 MB loop-mounted
  ext4 (skipped with a line where mounting is not permitted): the process fails loudly
  (``WriterError``, non-zero exit), the run holds every committed snapshot bit-exact and
  verifies clean.
- **damaged stores** (``bench/faults_damage.py``): ``weightscope verify / info / analyze`` in a
  subprocess with a timeout: each an exit-2 one-liner or the good run's result.
- **first-flush disk use**: bytes on disk / bytes of data after a run's first flush.
- **flush deadline** (``deadline``): the kill workers' 2 KB buffer commits every snapshot at
  once, so this case times the deadline itself: a Recorder with a 256 MB buffer (never full:
  only ``flush_seconds`` commits) and a thread polling the run's ``valid_steps`` every 5 ms;
  lateness = when a snapshot became visible on disk - when ``step()`` took it -
  ``flush_seconds``.

Run:  python bench/faults.py [--kills 50] [--steps 120] [--dir DIR]
      [--only kills,writers,disk,damage,flush,deadline]
(``--steps``: optimizer steps of each recording; fewer make a kill cycle shorter. SIGTERM and
SIGINT, even for a background run, stop it with the summary of what ran printed.)
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "_support"), str(ROOT / "bench")]

import faults_damage  # noqa: E402
import faults_disk  # noqa: E402
from testutil import sgd, tiny_model, train, weight_history, worker_env  # noqa: E402

import weightscope as ws  # noqa: E402
from weightscope.record import resume_step  # noqa: E402

STEPS, EVERY, FLUSH = 120, 3, 0.2
WORKER = ROOT / "tests" / "_support" / "crash_worker.py"
COUNTS: dict[str, dict[str, int]] = {}


def count(section: str, outcome: str) -> None:
    """Count one outcome and print it at once (a stopped run keeps its counts in its log)."""
    COUNTS.setdefault(section, {}).setdefault(outcome, 0)
    COUNTS[section][outcome] += 1
    print(f"  [{section}] {outcome} (now {COUNTS[section][outcome]})", flush=True)


def check_prefix(path: Path, hist: dict[str, np.ndarray]) -> int:
    """Assert the run at ``path`` is a contiguous, bit-exact prefix of the replay; its rows."""
    ds = ws.open_run(path)
    steps = ds.step.values
    grid = [*range(0, STEPS + 1, EVERY), STEPS]
    assert steps.tolist() == grid[: len(steps)], f"not a prefix: {steps.tolist()}"
    for pid, name in enumerate(ds.param.values):
        assert np.array_equal(ds.w.values[:, ds.param_id.values == pid], hist[name][steps]), name
    n = ds.sizes["iteration"]
    assert ds.iteration.values.tolist() == list(range(1, n + 1))
    return len(steps)


def resume(path: Path) -> None:
    start = resume_step(path) if path.exists() else 0
    model = tiny_model()
    opt = train(model, start, optimizer=sgd(model))  # the replay stands for the checkpoint
    with ws.Recorder(path, model, every=EVERY, resume=path.exists()) as rec:
        train(model, STEPS, start=start, optimizer=opt,
              after_step=lambda s, loss, o: rec.step(loss=loss))


def run_worker(path: Path, kill_after: float | None) -> tuple[list[tuple[str, float]], float]:
    """Start the worker; SIGKILL it ``kill_after`` s after it reports ``start``. Returns its
    lines (word, time) and the kill time (monotonic; inf if it was not killed)."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(STEPS), str(EVERY),
                             str(FLUSH)], stdout=subprocess.PIPE, text=True, env=worker_env())
    lines: list[tuple[str, float]] = []
    killed = float("inf")
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    lines.append((first[0], float(first[1])))
    if kill_after is not None:
        time.sleep(kill_after)
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    for line in proc.stdout:
        word, t = line.split()
        lines.append((word, float(t)))
    proc.wait()
    return lines, killed


def kills(root: Path, n: int, rng: random.Random, late: list[float]) -> None:
    """``n`` kills at uniform moments of construction..close; appends each flush's lateness
    to ``late`` as it goes (a stopped run keeps the ones measured)."""
    hist = weight_history(STEPS)
    lines, _ = run_worker(root / "ref.zarr", None)  # how long construction..close takes
    span = lines[-1][1] - lines[0][1]
    for i in range(n):
        path = root / f"kill{i}.zarr"
        lines, killed = run_worker(path, rng.uniform(0, span))
        words = [w for w, _ in lines]
        phase = ("finished" if "done" in words else "close" if "closing" in words
                 else "training" if len(words) > 1 else "construction")
        count("kill -9", f"landed in {phase}")
        try:
            rows = check_prefix(path, hist) if path.exists() else 0
            count("kill -9", "store opens, bit-exact prefix" if path.exists()
                  else "no run (killed before it was created)")
            late.append(_lateness(lines, rows, killed))
            print(f"  kill {i}: {phase}, {rows} rows kept, lateness {late[-1]:.3f} s",
                  flush=True)
            resume(path)
            assert check_prefix(path, hist) == STEPS // EVERY + 1, "resumed run incomplete"
            assert ws.open_run(path).attrs["complete"] is True
            count("kill -9", "resumed to a complete bit-exact run")
        except Exception as err:
            count("kill -9", "FAILED")
            print(f"  kill {i} ({phase}): {type(err).__name__}: {err}")
        shutil.rmtree(path, ignore_errors=True)


def _lateness(lines: list[tuple[str, float]], rows: int, killed: float) -> float:
    """Seconds past ``FLUSH`` that the first uncommitted snapshot waited before the kill."""
    steps = [t for w, t in lines if w.isdigit()]
    snaps = [t for w, t in lines if w.isdigit() and (int(w) % EVERY == 0)]
    # row 0 (the initial weights) is taken at the end of construction, for which the worker
    # prints no line: it is timed at step 1's line (a step later; a kill in construction
    # has no lateness)
    times = steps[:1] + snaps
    if rows >= len(times) or killed == float("inf"):
        return 0.0
    return max(0.0, killed - times[rows] - FLUSH)


def two_writers(root: Path) -> None:
    hist = weight_history(STEPS)
    for mode in ("overwrite=True", "resume=True"):
        path = root / f"two-{mode[:4]}.zarr"
        proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(STEPS), str(EVERY),
                                 str(FLUSH)], stdout=subprocess.PIPE, text=True,
                                env=worker_env())
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.split()[0] == "30":
                break
        # the live writer is stopped (its lock held) while the second one tries: a second
        # writer that starts slower than the live run's remaining steps still meets it live
        proc.send_signal(signal.SIGSTOP)
        try:
            second = _second_writer(path, mode)
        finally:
            proc.send_signal(signal.SIGCONT)
        proc.communicate()
        ok = check_prefix(path, hist) == len(range(0, STEPS + 1, EVERY)) and ws.open_run(
            path).attrs["complete"] is True
        count("two writers", f"{mode} on a live run: {second}; live run "
                             f"{'complete, bit-exact' if ok else 'DAMAGED'}")
    for i in range(5):
        path = root / f"race{i}.zarr"
        procs = [subprocess.Popen([sys.executable, str(WORKER), str(path), str(STEPS),
                                   str(EVERY), str(FLUSH)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=worker_env())
                 for _ in range(2)]
        outs = [p.communicate() for p in procs]
        won = [p.returncode == 0 and "done" in o for p, (o, _) in zip(procs, outs)]
        refused = [("RunLockedError" in e or "RunExistsError" in e) for _, e in outs]
        ok = sum(won) == 1 and sum(refused) == 1 and check_prefix(path, hist) == len(
            range(0, STEPS + 1, EVERY))
        count("two writers", "simultaneous create: one wins, one refused, run intact"
              if ok else f"simultaneous create FAILED (won {won}, refused {refused})")


def _second_writer(path: Path, mode: str) -> str:
    code = (f"import sys; sys.path.insert(0, {str(WORKER.parent)!r}); "
            "from testutil import tiny_model; import weightscope as ws; "
            f"ws.Recorder({str(path)!r}, tiny_model(), every={EVERY}, {mode})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=worker_env())
    return "refused (RunLockedError)" if "RunLockedError" in out.stderr else (
        f"NOT refused (exit {out.returncode})")


def deadline(root: Path, steps: int = 600, pause: float = 0.01) -> None:
    """Lateness past ``FLUSH`` of every snapshot of a Recorder whose buffer never fills."""
    import json
    import threading

    path, taken, seen = root / "deadline.zarr", {}, {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                n = json.loads((path / "zarr.json").read_text())["attributes"]["valid_steps"]
            except (OSError, ValueError, KeyError):
                n = 0
            now = time.monotonic()
            for row in range(n):
                seen.setdefault(row, now)
            time.sleep(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    model = tiny_model()
    with ws.Recorder(path, model, every=EVERY, flush_seconds=FLUSH, buffer_mb=256) as rec:
        taken[0] = time.monotonic()

        def after(s: int, loss: object, _opt: object) -> None:
            rec.step(loss=loss)
            if s % EVERY == 0:
                taken[s // EVERY] = time.monotonic()
            time.sleep(pause)
        train(model, steps, after_step=after)
        time.sleep(2 * FLUSH)  # the last snapshots are committed by the deadline, not close
    done.set()
    watcher.join()
    late = np.array([seen.get(r, np.inf) - t - FLUSH for r, t in sorted(taken.items())])
    for row_late in late:
        count("flush deadline", "snapshot on disk within flush_seconds of step()"
              if row_late <= 0 else "LATE by <= 0.1 s" if row_late <= 0.1 else "LATE by > 0.1 s")
    print(f"  flush deadline (flush_seconds={FLUSH}, buffer 256 MB, {steps} steps): "
          f"{len(late)} snapshots, {int((late > 0).sum())} late, max lateness "
          f"{max(late.max(), 0.0):.3f} s, 95th percentile {max(np.quantile(late, 0.95), 0):.3f}"
          " s", flush=True)


def print_table(late: list[float]) -> None:
    print("\nsummary (counts)")
    for section, outcomes in COUNTS.items():
        for outcome, k in outcomes.items():
            print(f"  {section:14s} {k:4d}  {outcome}")
    if late:
        arr = np.array(late)
        print(f"  flush lateness past flush_seconds={FLUSH} over {len(arr)} kills: max "
              f"{arr.max():.3f} s, 95th percentile {np.quantile(arr, 0.95):.3f} s, "
              f"{int((arr > 0.1).sum())} later than 0.1 s")


def _set_steps(steps: int) -> None:
    global STEPS
    if steps <= 30 or steps % EVERY:
        raise SystemExit(f"--steps must be a multiple of {EVERY} over 30 (the second writer "
                         f"starts at step 30), got {steps}")
    STEPS = steps


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT end the run through ``main``'s ``finally`` (table printed); a shell
    starts background jobs with SIGINT ignored, so both handlers are set explicitly."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--steps", type=int, default=STEPS,
                    help=f"optimizer steps of each recording (a multiple of {EVERY} over 30)")
    ap.add_argument("--dir", default=None, help="where the runs are written (default: /tmp)")
    ap.add_argument("--only", default="kills,writers,disk,damage,flush,deadline")
    args = ap.parse_args()
    _set_steps(args.steps)
    _stop_on_signals()
    only = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="ws-faults-", dir=args.dir))
    late: list[float] = []
    t0 = time.monotonic()
    try:
        if "flush" in only:
            faults_disk.first_flush(root, count)
        if "damage" in only:
            faults_damage.run_cases(root, count)
        if "writers" in only:
            two_writers(root)
        if "disk" in only:
            faults_disk.full_disks(root, count)
        if "deadline" in only:
            deadline(root)
        if "kills" in only:
            kills(root, args.kills, random.Random(args.seed), late)
    finally:
        print_table(late)
        print(f"(--steps {STEPS}, --kills {args.kills}, --seed {args.seed}, --only {args.only})")
        print(f"({time.monotonic() - t0:.0f} s)")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
