"""Subprocess of the out-of-core test: analyze a run and report its memory as JSON.

Usage: python ooc_worker.py RUN BLOCK_MB THREADS

``base`` is the RSS once everything is imported, the run opened and a slice of it analyzed
(what any process pays whatever the run's size: modules, thread pools, caches), ``peak`` the
highest RSS while the whole run is analyzed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import dask
import psutil

import weightscope as ws
from weightscope.store import reader


def main() -> None:
    path, block_mb, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    reader.READ_BLOCK_BYTES = int(block_mb * 2**20)  # before open_run: the columns it reads
    proc = psutil.Process()
    ds = ws.open_run(path)
    with dask.config.set(scheduler="threads", num_workers=threads):
        _analyze(ds.isel(weight=slice(0, 1000)))  # imports, thread pools, caches: warm
    base = proc.memory_info().rss
    peak, stop = [base], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=threads):
        sets, delta, binned, dist = _analyze(ds)
    elapsed = time.perf_counter() - t0
    stop.set()
    print(json.dumps({"base": base, "peak": peak[0], "seconds": elapsed,
                      "final_active": float(sets.active[-1]),
                      "n_delta": int(delta.size), "nan_delta": int(delta.isnull().sum()),
                      "bins": int(binned.size), "distance": float(dist[-1])}))


def _analyze(ds: Any) -> tuple[Any, Any, Any, Any]:
    return (ws.analyze.active_sets(ds), ws.analyze.decay_time(ds).compute(),
            ws.analyze.decay_by_magnitude(ds, bins=10), ws.analyze.search_distance(ds).compute())


if __name__ == "__main__":
    main()
