"""Subprocess of the crash test: record a deterministic run until killed.

Usage: python crash_worker.py RUN STEPS EVERY
Prints the optimizer step after each step (so the test can kill it at a chosen moment), then
closes the run.
"""

from __future__ import annotations

import sys
import time

from testutil import tiny_model, train

import weightscope as ws


def main() -> None:
    path, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model = tiny_model()
    rec = ws.Recorder(path, model, every=every, flush_seconds=0.01, buffer_mb=0.002)

    def after(s, loss, opt):
        rec.step(loss=loss)
        print(s, flush=True)
        time.sleep(0.001)

    train(model, steps, after_step=after)
    rec.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
