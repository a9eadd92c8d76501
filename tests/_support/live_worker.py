"""Subprocess of the live-analysis tests: record a deterministic run at a human pace.

Usage: python live_worker.py RUN STEPS EVERY PAUSE
Flushes every snapshot at once (so readers see the run grow), sleeps PAUSE seconds after each
optimizer step, prints the step, and closes the run at the end.
"""

from __future__ import annotations

import sys
import time

from testutil import tiny_model, train

import weightscope as ws


def main() -> None:
    path, steps, every, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(
        sys.argv[4])
    model = tiny_model()
    rec = ws.Recorder(path, model, every=every, flush_seconds=0.01, buffer_mb=0.002)
    print("ready", flush=True)

    def after(s, loss, opt):
        rec.step(loss=loss)
        print(s, flush=True)
        time.sleep(pause)

    train(model, steps, after_step=after)
    rec.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
