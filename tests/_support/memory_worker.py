"""Subprocess of the memory test: record a >= 200 MB model and report RSS as JSON.

Usage: python memory_worker.py RUN BUFFER_MB STEPS
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil
import torch

import weightscope as ws


def main() -> None:
    path, buffer_mb, steps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    model = torch.nn.Linear(8192, 6400, bias=False)  # 52.4 M weights = 210 MB
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(4, 8192)

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        model(x).square().mean().backward()
        opt.step()

    proc = psutil.Process()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for _ in range(3):  # the baseline: peak RSS of training alone (gradients, temporaries)
        step()
    baseline, peak[0] = peak[0], 0
    with ws.Recorder(path, model, every=1, buffer_mb=buffer_mb) as rec:
        for _ in range(steps):
            step()
            rec.step()
    stop.set()
    sampler.join()
    snapshot = model.weight.numel() * 4
    print(json.dumps({"baseline": baseline, "peak": peak[0], "snapshot": snapshot,
                      "buffer": buffer_mb * 2**20, "steps": steps}))


if __name__ == "__main__":
    main()
