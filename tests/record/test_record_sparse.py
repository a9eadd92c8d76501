"""Sparse runs: masks are recorded, distance is of the effective weights, config in attrs."""

from __future__ import annotations

import numpy as np
import torch
from testutil import batch, tiny_model

import weightscope as ws


def _sparse_run(path, steps=12, every=3):
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sp = ws.sparse.sparsify(model, density=0.5, method=ws.sparse.Search(reset_every=5),
                            exclude=lambda name, module: False)  # mask every layer
    sp.attach(opt)  # first: the recorder must see the weights after the sparsifier's step
    history = {"w": [], "m": []}

    def grab():
        history["w"].append({n: p.detach().clone() for n, p in model.named_parameters()})
        history["m"].append({n: b.clone() for n, b in model.named_buffers()
                             if n.endswith("weight_mask")})

    grab()
    with ws.Recorder(path, model, every=every) as rec:
        rec.attach(opt)
        for s in range(1, steps + 1):
            x, y = batch(s)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            grab()
    return ws.open_run(path), sp, history


def test_masks_weights_distance_and_config(tmp_path):
    ds, sp, hist = _sparse_run(tmp_path / "run.zarr")
    assert "mask" in ds and ds.mask.dtype == bool
    assert ds.attrs["sparse"] == sp.config
    steps = ds.step.values.tolist()
    assert steps == [0, 3, 6, 9, 12]
    for pid, name in enumerate(ds.param.values):
        cols = ds.param_id.values == pid
        mask_name = name.replace("weight", "weight_mask")
        for row, s in enumerate(steps):
            np.testing.assert_array_equal(ds.w.values[row, cols],
                                          hist["w"][s][name].numpy().reshape(-1))
            np.testing.assert_array_equal(ds.mask.values[row, cols],
                                          hist["m"][s][mask_name].numpy().reshape(-1))
        eff = np.stack([(h[name] * m[mask_name]).double().numpy().reshape(-1)
                        for h, m in zip(hist["w"], hist["m"])])
        oracle = np.abs(np.diff(eff, axis=0)).sum(axis=1)
        np.testing.assert_allclose(ds.distance.sel(param=name).values, oracle, rtol=1e-6)
    assert ds.mask.values[-1].mean() == 0.5  # density 0.5 in every layer


def test_participating_weights_of_a_sparse_run(tmp_path):
    ds, _, _ = _sparse_run(tmp_path / "run.zarr")
    assert ws.analyze.participating_weights(ds) == int(ds.numel.sum()) // 2
