"""Subprocess of the out-of-core test: analyze a run and report peak RSS as JSON.

Usage: python ooc_worker.py RUN BLOCK_MB
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil

import weightscope as ws
from weightscope.store import reader


def main() -> None:
    path, block_mb = sys.argv[1], float(sys.argv[2])
    reader.READ_BLOCK_BYTES = int(block_mb * 2**20)  # before open_run: the columns it reads
    proc = psutil.Process()
    ds = ws.open_run(path)
    peak, stop = [proc.memory_info().rss], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    sets = ws.analyze.active_sets(ds)
    delta = ws.analyze.decay_time(ds).compute()
    binned = ws.analyze.decay_by_magnitude(ds, bins=10)
    dist = ws.analyze.search_distance(ds).compute()
    elapsed = time.perf_counter() - t0
    stop.set()
    print(json.dumps({"peak": peak[0], "seconds": elapsed,
                      "final_active": float(sets.active[-1]),
                      "n_delta": int(delta.size), "nan_delta": int(delta.isnull().sum()),
                      "bins": int(binned.size), "distance": float(dist[-1])}))


if __name__ == "__main__":
    main()
