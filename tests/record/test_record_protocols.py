"""One contract test per recording protocol, run on both of its implementations.

The whole-model implementations (Capture, DistanceTracker, Pipeline) and the sharded ones
(ShardedCapture, ShardedDistance, PeerPipeline) must behave alike where the Recorder uses them.
The sharded ones run on a model sharded with FSDP2 over a one-process gloo group, so their
collectives (``full_tensor``, ``all_reduce``) run for real without spawning ranks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from testutil import tiny_model, train
from torch import nn

from weightscope.errors import ShapeChangedError
from weightscope.record.capture import Capture, DistanceTracker
from weightscope.record.distributed import (
    PeerPipeline,
    ShardedCapture,
    ShardedDistance,
    is_sharded,
)
from weightscope.record.iterations import IterationBuffer
from weightscope.record.pipeline import Pipeline
from weightscope.record.protocols import DistanceMeter, SnapshotSink, SnapshotSource
from weightscope.record.selection import layout_of, select_params
from weightscope.store import RunWriter


@pytest.fixture(scope="module")
def gloo(tmp_path_factory):
    """A one-process gloo group for the sharded implementations."""
    pytest.importorskip("torch.distributed.fsdp")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed and no process group of its own")
    init = tmp_path_factory.mktemp("gloo") / "pg"
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _model(sharded: bool) -> nn.Module:
    model = tiny_model()
    if sharded:
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, (nn.Linear, nn.Conv1d)):
                fully_shard(layer)
        fully_shard(model)
    return model


def _full_weights(selected) -> list[np.ndarray]:
    """Oracle: every selected parameter, whole and flat, in float64."""
    out = []
    for s in selected:
        t = s.tensor.detach()
        t = t.full_tensor() if hasattr(t, "full_tensor") else t
        out.append(t.reshape(-1).double().numpy().copy())
    return out


@pytest.fixture(params=["whole", "sharded"])
def model(request):
    """``(model, its selected parameters, the Capture and DistanceTracker classes to test)``."""
    sharded = request.param == "sharded"
    if sharded:
        request.getfixturevalue("gloo")
    model = _model(sharded)
    selected = select_params(model)
    assert is_sharded(selected) == sharded
    classes = (ShardedCapture, ShardedDistance) if sharded else (Capture, DistanceTracker)
    return model, selected, classes


@pytest.mark.parametrize("sample", [None, 5])
def test_snapshot_source_contract(model, sample):
    module, selected, (capture_cls, _) = model
    layout = layout_of(selected, sample)
    capture = capture_cls(selected, layout)
    assert isinstance(capture, SnapshotSource)
    assert capture.sizes == layout.counts.tolist() and not capture.has_mask
    assert capture.device == torch.device("cpu")
    for step in range(2):
        sources = capture.sources()
        assert len(sources) == len(selected)
        rows = torch.full((2, layout.n_weights), np.nan, dtype=torch.float32)
        capture.copy_into(capture.split(rows[0]))
        capture.copy_into(capture.split(rows[1]), None, sources)
        want = np.concatenate([w if ix is None else w[ix]
                               for w, ix in zip(_full_weights(selected), layout.indices)])
        np.testing.assert_array_equal(rows[0].numpy(), want.astype(np.float32))
        np.testing.assert_array_equal(rows[1].numpy(), rows[0].numpy())
        train(module, step + 1, start=step)
    selected[-1].module.weight = nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(ShapeChangedError, match="changed shape"):
        capture.sources()


def test_distance_meter_contract(model):
    module, selected, (_, distance_cls) = model
    meter = distance_cls(selected)
    assert isinstance(meter, DistanceMeter)
    capture = (ShardedCapture if distance_cls is ShardedDistance else Capture)(
        selected, layout_of(selected, None))
    before = _full_weights(selected)
    for step, with_sources in enumerate([True, False, True]):
        train(module, step + 1, start=step)
        after = _full_weights(selected)
        out = torch.full((len(selected),), np.nan, dtype=torch.float64)
        meter.update(out, capture.sources() if with_sources else None)
        want = [np.abs(a - b).sum() for a, b in zip(after, before)]
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-6)
        before = after


@pytest.fixture(params=["pipeline", "peer"])
def sink(request, tmp_path):
    """``make(parts, has_mask) -> SnapshotSink``, and ``stored() -> (steps, w) or None``."""
    writers = []

    def make(parts, has_mask):
        if request.param == "peer":
            return PeerPipeline(parts, has_mask)
        from weightscope.store import Layout

        layout = Layout.build([f"p{i}" for i in range(len(parts))], [(n,) for n in parts],
                              [None] * len(parts))
        writer = RunWriter.create(tmp_path / "run.zarr", layout, attrs={"every": 1},
                                  has_mask=has_mask, buffer_bytes=4 * 3 * sum(parts) * 2)
        writers.append(writer)
        return Pipeline(writer, parts, has_mask=has_mask, pin=False, flush_seconds=60.0)

    def stored():
        if not writers:
            return None
        import weightscope as ws

        ds = ws.open_run(tmp_path / "run.zarr")
        return ds.step.values, ds.w.values, ds.iteration.values

    return make, stored


@pytest.mark.parametrize("has_mask", [False, True])
def test_snapshot_sink_contract(sink, has_mask):
    make, stored = sink
    parts = [3, 5, 2]
    pipe = make(parts, has_mask)
    assert isinstance(pipe, SnapshotSink)
    iters = IterationBuffer(torch.device("cpu"), len(parts), track_distance=True)
    written = []
    for step in range(7):
        pipe.check()
        w_parts, m_parts = pipe.next_row()
        assert [len(p) for p in w_parts] == parts
        assert (m_parts is not None) == has_mask
        if m_parts is not None:
            assert [len(m) for m in m_parts] == parts
            for m in m_parts:
                m.fill_(True)
        for i, part in enumerate(w_parts):
            part.copy_(torch.arange(len(part), dtype=torch.float32) + 10 * step + 100 * i)
        written.append(torch.cat(w_parts).numpy().copy())
        assert isinstance(pipe.row_done(step), bool)
        if step:
            iters.distance[iters.add()].fill_(step)
        if step == 3:
            first, values, event = iters.take(step)
            pipe.push_iterations(first - 1, values, event)
            pipe.flush()
    first, values, event = iters.take(6)
    pipe.push_iterations(first - 1, values, event)
    pipe.close(total_steps=6)
    pipe.check()
    got = stored()
    if got is not None:  # the Pipeline stores what it was given; the peer drops it
        steps, w, iterations = got
        assert steps.tolist() == list(range(7)) and iterations.tolist() == list(range(1, 7))
        np.testing.assert_array_equal(w, np.stack(written))
