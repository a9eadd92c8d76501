"""A ResNet-18 with BatchNorm trained sparse with 2:4-2d SEARCH, recorded and analyzed.

The model is :func:`weightscope.experiments.models.resnet18` (torchvision's ResNet-18 layout,
CIFAR stem: a 3x3 first convolution on 32x32 images) on synthetic images: each of 10 classes
is a fixed random 3x32x32 pattern, and an image is its class's pattern plus noise, so the
classes are learnable in a few hundred steps. Then:

* ``ws.sparse.sparsify(model, structure="2:4-2d")`` with SEARCH (the default method): every
  3x3 and 1x1 convolution of the four stages keeps exactly 2 of every 4 weights along both its
  input and output channels (transposable 2:4), rewired every step; the first convolution (3
  input channels, the shape rule ``ws.sparse.default_exclude``) and the classifier ``fc`` (a
  classification head) stay dense, as this script asks explicitly;
* a :class:`~weightscope.Recorder` records the 21 conv and fc weights and their masks at 21
  uniformly spaced snapshots;
* ``weightscope analyze RUN`` draws its Figure 1 and writes summary.json.

Usage::

    python examples/resnet.py [OUT] [--steps N | --full]

By default width 16 (0.7M weights) for 200 steps of batch 32 (about a minute on 2 CPU cores);
``--full`` trains the real ResNet-18 (width 64, 11.2M weights) for 2000 steps (about an hour on
2 CPU cores; minutes on a GPU with ``--device cuda``). The test suite runs ``--steps 6``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

import weightscope as ws
from weightscope.experiments.models import resnet18

CLASSES, BATCH = 10, 32


def dense_here(name: str, module: nn.Module) -> bool:
    """The layers left dense: the shape rule (``conv1``: 3 input channels) and the head."""
    return ws.sparse.default_exclude(name, module) or name == "fc"


def batches(steps: int, device: str, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` batches of noisy class patterns."""
    gen = torch.Generator().manual_seed(seed)
    patterns = torch.randn(CLASSES, 3, 32, 32, generator=gen)
    out = []
    for _ in range(steps):
        y = torch.randint(CLASSES, (BATCH,), generator=gen)
        x = patterns[y] + 2.0 * torch.randn(BATCH, 3, 32, 32, generator=gen)
        out.append((x.to(device), y.to(device)))
    return out


def train(path: Path, steps: int, width: int, device: str) -> tuple[float, float]:
    """Sparsify, train and record; returns the first and last training loss."""
    model = resnet18(width=width, classes=CLASSES, seed=0).to(device)
    sp = ws.sparse.sparsify(model, structure="2:4-2d", exclude=dense_here)  # SEARCH, d = 0.5
    print(f"2:4-2d SEARCH on {len(sp.layers)} convolutions; dense: "
          + ", ".join(row.name for row in sp.plan if not row.chosen))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    sp.attach(opt)  # first the sparsifier, then the Recorder (it records the new masks)
    losses = []
    with ws.Recorder(path, model, every=max(1, steps // 20), overwrite=True) as rec:
        rec.attach(opt)
        for x, y in batches(steps, device):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            sched.step()
            losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=None, type=Path)
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 200)")
    parser.add_argument("--full", action="store_true", help="ResNet-18 at width 64, 2000 steps")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp())
    steps = args.steps or (2000 if args.full else 200)
    path = out / "resnet.zarr"
    first, last = train(path, steps, 64 if args.full else 16, args.device)

    ds = ws.open_run(path)
    mask = ds.mask.isel(step=-1).values
    print(f"recorded {ds.sizes['step']} snapshots of {ds.sizes['weight']:,} weights in "
          f"{ds.sizes['param']} parameters; {mask.mean():.3f} of them participate at the end; "
          f"loss {first:.3g} -> {last:.3g}")
    subprocess.run([sys.executable, "-m", "weightscope_cli.app", "analyze", str(path),
                    "--out", str(out / "analysis")], check=True)


if __name__ == "__main__":
    main()
