"""Subprocess of the crash tests and of ``bench/faults.py``: record a deterministic run until
killed.

Usage: python crash_worker.py RUN STEPS EVERY [FLUSH_SECONDS]
Prints ``start T`` before the Recorder is built, ``S T`` after each optimizer step ``S``,
``closing T`` before ``close()`` and ``done T`` after it (``T``: ``time.monotonic()``), so a
caller can kill it at a chosen moment (construction and close included) and tell how late
the committed prefix is.
"""

from __future__ import annotations

import sys
import time

from testutil import tiny_model, train

import weightscope as ws


def main() -> None:
    path, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    flush = float(sys.argv[4]) if len(sys.argv) > 4 else 0.01
    model = tiny_model()
    print("start", time.monotonic(), flush=True)
    rec = ws.Recorder(path, model, every=every, flush_seconds=flush, buffer_mb=0.002)

    def after(s, loss, opt):
        rec.step(loss=loss)
        print(s, time.monotonic(), flush=True)
        time.sleep(0.001)

    train(model, steps, after_step=after)
    print("closing", time.monotonic(), flush=True)
    rec.close()
    print("done", time.monotonic(), flush=True)


if __name__ == "__main__":
    main()
