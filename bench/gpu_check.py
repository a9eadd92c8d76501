"""One table of weightscope's GPU paths: recorder, decay analysis and 2:4 semi-structured Linear.

Rows (each says the device it ran on; a CUDA row without CUDA says so and is skipped):

* the CUDA tests (``pytest -m cuda``), when ``bench/gpu_check.sh`` passes their summary in
  ``--tests``;
* the Recorder on CUDA (and on the CPU, for reference): a 1.86M-weight MLP (bench/recorder.py's
  784-1024-1024-10, batch 128, SGD with momentum), ``--steps`` steps, 3 rounds in alternating
  order; every=10 full snapshots and every=1 with sample=8192, each against bare training
  (median over rounds of the paired ratio);
* the decay kernel (``decay_kernel``) on ``--weights`` x 128 realistic trajectories
  (``bench/decay.py``'s): numpy (all CPU cores) against torch on the GPU, weight-snapshots per
  second and whether the two give the same lags;
* ``to_semi_structured_linear`` against the masked dense Linear at 4096x4096, input
  4096x4096, float16 and bfloat16: milliseconds per call (CUDA events, median of 50) and the
  largest difference of the outputs.

Run: ``bash bench/gpu_check.sh`` (or ``make gpu-check``); alone: ``python bench/gpu_check.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch
from torch import nn

import weightscope as ws
from weightscope.analyze._decay_kernel import decay_kernel
from weightscope.kernels import mask_24_1d, semi_structured_status, to_semi_structured_linear

sys.path.insert(0, str(Path(__file__).parent))
from decay import trajectories  # bench/ is not a package
from recorder import paired_ratio

CUDA = torch.cuda.is_available()
NO_CUDA = "skipped: torch sees no CUDA device"
Row = tuple[str, str, str]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _mlp_run(device: str, steps: int, root: Path, **rec: object) -> float:
    """Seconds of ``steps`` training steps, recorded with ``rec`` (none: bare)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs = torch.randn(16, 128, 784, device=device)
    ys = torch.randint(0, 10, (16, 128), device=device)
    _sync(device)
    t0 = time.perf_counter()
    recorder = ws.Recorder(root / f"r{time.monotonic_ns()}", model, **rec) if rec else None
    for s in range(steps):
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(xs[s % 16]), ys[s % 16]).backward()
        opt.step()
        if recorder is not None:
            recorder.step()
    if recorder is not None:
        recorder.close()
    _sync(device)
    return time.perf_counter() - t0


def recorder_rows(device: str, steps: int) -> list[Row]:
    """every=10 full and every=1 sample=8192 against bare training on ``device``."""
    configs: dict[str, dict[str, object]] = {
        "bare": {}, "every=10": {"every": 10, "track_distance": False},
        "every=1 s=8192": {"every": 1, "sample": 8192, "track_distance": False}}
    times: dict[str, list[float]] = {k: [] for k in configs}
    with TemporaryDirectory(dir=".") as tmp:
        for rec in configs.values():  # warm-up (CUDA context, kernels, imports)
            _mlp_run(device, 5, Path(tmp), **rec)
        for rep in range(3):
            for name in (list(configs) if rep % 2 == 0 else list(configs)[::-1]):
                times[name].append(_mlp_run(device, steps, Path(tmp), **configs[name]))
    bare = statistics.median(times["bare"])
    return [(f"recorder {name} / bare (MLP 1.86M, {steps} steps)", device,
             f"x{paired_ratio(times, name, 'bare'):.3f} (bare {bare:.2f} s)")
            for name in ("every=10", "every=1 s=8192")]


def decay_rows(weights: int) -> list[Row]:
    """The decay kernel with numpy (CPU) and with torch (GPU), on the same trajectories."""
    x = trajectories(128, weights)
    cells = x.size / 1e6
    t0 = time.perf_counter()
    want, want_c = decay_kernel(x, workers=-1, backend="numpy")
    numpy_s = time.perf_counter() - t0
    rows = [(f"decay kernel, numpy ({weights:,} x 128)", "cpu",
             f"{cells / numpy_s:.1f} M weight-snapshots/s")]
    if not CUDA:
        return [*rows, ("decay kernel, torch vs numpy", "cuda", NO_CUDA)]
    decay_kernel(x[:, :1000], backend="torch")  # warm-up
    t0 = time.perf_counter()
    got, got_c = decay_kernel(x, backend="torch")
    torch_s = time.perf_counter() - t0
    same = np.mean(((got == want) | (np.isnan(got) & np.isnan(want))) & (got_c == want_c))
    return [*rows, ("decay kernel, torch vs numpy", "cuda",
                    f"{cells / torch_s:.1f} M weight-snapshots/s (x{numpy_s / torch_s:.1f}); "
                    f"{same:.4%} of the lags equal numpy's")]


def _cuda_ms(layer: nn.Module, x: torch.Tensor, reps: int = 50) -> float:
    """Median milliseconds of ``layer(x)`` on the GPU (CUDA events), after 5 warm-up calls."""
    for _ in range(5):
        layer(x)
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        layer(x)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def semi_structured_rows(n: int = 4096) -> list[Row]:
    """2:4 semi-structured Linear against the masked dense one, float16 and bfloat16."""
    status = semi_structured_status()
    if not status.startswith("available"):
        return [(f"2:4 semi-structured Linear {n}x{n} {d}", "cuda", f"skipped ({status})")
                for d in ("float16", "bfloat16")]
    return [_semi_row(dtype, n) for dtype in (torch.float16, torch.bfloat16)]


def _semi_row(dtype: torch.dtype, n: int) -> Row:
    torch.manual_seed(0)
    layer = nn.Linear(n, n).to("cuda", dtype).requires_grad_(False)
    mask = mask_24_1d(layer.weight)
    layer.weight.mul_(mask)
    x = torch.randn(n, n, device="cuda", dtype=dtype)
    dense_ms = _cuda_ms(layer, x)
    want = layer(x)
    to_semi_structured_linear(layer, mask)
    sparse_ms = _cuda_ms(layer, x)
    err = float((layer(x) - want).abs().max())
    return (f"2:4 semi-structured Linear {n}x{n} {str(dtype)[6:]}", "cuda",
            f"{sparse_ms:.3f} ms vs dense {dense_ms:.3f} ms: x{dense_ms / sparse_ms:.2f}; "
            f"max |diff| {err:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", default=None, help="summary line of the CUDA tests")
    ap.add_argument("--steps", type=int, default=200, help="steps of each recorder run")
    ap.add_argument("--weights", type=int, default=1_000_000, help="weights of the decay rows")
    args = ap.parse_args()
    device = torch.cuda.get_device_name() if CUDA else "no CUDA device"
    rows: list[Row] = []
    if args.tests is not None:
        rows.append(("CUDA tests (pytest -m cuda)", "cuda", args.tests))
    rows += recorder_rows("cpu", args.steps)
    rows += recorder_rows("cuda", args.steps) if CUDA else [("recorder on CUDA", "cuda",
                                                             NO_CUDA)]
    rows += decay_rows(args.weights)
    rows += semi_structured_rows()
    width = max(len(r[0]) for r in rows)
    print(f"weightscope GPU check: torch {torch.__version__}, {device}")
    print(f"{'check':{width}s}  {'device':6s}  result")
    for name, dev, result in rows:
        print(f"{name:{width}s}  {dev:6s}  {result}")
    if not CUDA:
        print("CUDA parts SKIPPED: no CUDA device; only the CPU rows ran.")


if __name__ == "__main__":
    main()
