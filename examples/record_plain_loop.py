"""Record a plain PyTorch training loop with weightscope.

Trains a small MLP on synthetic data, records every 5th step (plus exact search distance and
the loss at every step), then opens the run and prints what it holds.

Run:  python examples/record_plain_loop.py [OUT_DIR] [--steps N]   (default 200 steps)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch import nn

import weightscope as ws


def main(out_dir: str | None = None, steps: int = 200) -> Path:
    out = Path(out_dir or tempfile.mkdtemp())
    path = out / "plain_loop.zarr"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(512, 20), torch.randint(0, 4, (512,))

    with ws.Recorder(path, model, every=5, overwrite=True) as rec:
        rec.attach(opt)  # snapshot after optimizer.step(); the lr is read from opt
        for _ in range(steps):
            idx = torch.randint(0, 512, (32,))
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)  # attach the loss to the step that just happened

    ds = ws.open_run(path)
    total = float(ds.distance.sum())
    print(f"{ds.sizes['step']} snapshots of {ds.sizes['weight']} weights; "
          f"search distance {total:.2f}; final loss {float(ds.loss[-1]):.3f}")
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=None)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps to train")
    args = parser.parse_args()
    main(args.out_dir, args.steps)
