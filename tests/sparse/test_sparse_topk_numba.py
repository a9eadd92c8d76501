"""NumbaTopk gives exactly the kernel's mask (and m * w), step after step; the Sparsifier
rewires layers with it two at a time."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from weightscope.kernels import mask_topk
from weightscope.sparse import Search, sparsifier, sparsify
from weightscope.sparse.layers import float_mask
from weightscope.sparse.state import LayerState
from weightscope.sparse.topk import NumbaTopk, TorchTopk, make_topk, numba_available
from weightscope.sparse.topk import numba_topk as numba_module


@pytest.fixture(scope="module", autouse=True)
def _needs_numba() -> None:
    """Skip the module without numba; asked when a test runs, so collecting does not import
    numba."""
    if not numba_available():
        pytest.skip("needs numba")


def _check(tracker: NumbaTopk, w: torch.Tensor, mask: torch.Tensor, mask_f: torch.Tensor,
           density: float) -> torch.Tensor | None:
    """One update; assert mask, float mask and product equal the kernel's, bit for bit."""
    product = tracker.update(w, mask, mask_f)
    expected = mask_topk(w, density)
    assert torch.equal(mask, expected), f"{int((mask ^ expected).sum())} wrong"
    assert torch.equal(mask_f, expected.to(w.dtype))
    if product is not None:
        assert torch.equal(product, w * mask_f)
        assert torch.equal(torch.signbit(product), torch.signbit(w * mask_f))  # -0.0 kept
    return product


def _walk(shape: tuple[int, ...], density: float, steps: int, seed: int, ties: bool,
          scale: float, dtype: torch.dtype = torch.float32) -> NumbaTopk:
    g = torch.Generator().manual_seed(seed)
    w = (torch.randint(-4, 5, shape, generator=g).float() if ties
         else torch.randn(shape, generator=g)).to(dtype)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask_f = torch.zeros(shape, dtype=dtype)
    tracker = NumbaTopk(w.numel(), density)
    for step in range(steps):
        if ties:
            jump = torch.randint(-1, 2, shape, generator=g).float()
            w = w + (jump * (torch.rand(shape, generator=g) < 0.05)).to(dtype)
        else:
            w = w + (scale * (1 + step % 3) * torch.randn(shape, generator=g)).to(dtype)
        assert _check(tracker, w, mask, mask_f, density) is not None or ties
    return tracker


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 70),
    cols=st.sampled_from([1, 7, 16, 64, 100, 257]),
    density=st.sampled_from([1e-4, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
    scale=st.sampled_from([1e-4, 1e-2, 0.3, 3.0]),
)
def test_band_matches_kernel_on_random_walks(
    rows: int, cols: int, density: float, seed: int, ties: bool, scale: float
) -> None:
    _walk((rows, cols), density, steps=8, seed=seed, ties=ties, scale=scale)


def test_band_stays_on_its_fast_path_on_slow_drift() -> None:
    tracker = _walk((512, 512), 0.25, steps=30, seed=0, ties=False, scale=1e-4)
    assert tracker.rebuilds == 1 and tracker.fallbacks == 0  # one exact start, then the band


def test_band_recovers_when_the_threshold_jumps() -> None:
    g = torch.Generator().manual_seed(5)
    w = torch.randn(300, 200, generator=g)
    mask, mask_f = torch.zeros(300, 200, dtype=torch.bool), torch.zeros(300, 200)
    tracker = NumbaTopk(w.numel(), 0.3)
    for factor in (1.0, 3.0, 0.01, -2.0):
        _check(tracker, w * factor + 0.1 * torch.randn(300, 200, generator=g), mask, mask_f, 0.3)
    assert tracker.fallbacks == 0 and tracker.rebuilds > 1


def test_band_falls_back_when_ties_overflow_its_room() -> None:
    w = torch.ones(1000, 100)  # 100000 tied magnitudes for 25000 places
    mask, mask_f = torch.zeros(1000, 100, dtype=torch.bool), torch.zeros(1000, 100)
    tracker = NumbaTopk(w.numel(), 0.25)
    assert _check(tracker, w, mask, mask_f, 0.25) is None
    assert tracker.fallbacks == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_band_handles_non_finite_weights_like_the_kernel(bad: float) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(64, 128, generator=g)
    mask, mask_f = torch.zeros(64, 128, dtype=torch.bool), torch.zeros(64, 128)
    tracker = NumbaTopk(w.numel(), 0.25)
    for step in range(6):
        w = w + 0.01 * torch.randn(64, 128, generator=g)
        w[3, 7] = bad if step in (2, 3) else 0.5
        product = _check(tracker, w, mask, mask_f, 0.25)
        assert (product is None) == (step in (2, 3) and bad != bad)


def test_band_takes_float64_and_leaves_half_precision_to_the_factory() -> None:
    _walk((40, 256), 0.3, steps=5, seed=2, ties=False, scale=0.05, dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(256, 256, generator=g).to(torch.bfloat16)
    mask, mask_f = torch.zeros(256, 256, dtype=torch.bool), torch.zeros(256, 256,
                                                                          dtype=torch.bfloat16)
    assert isinstance(make_topk(w, mask, mask_f, 0.3), TorchTopk)
    assert make_topk(w[:32], mask[:32], mask_f[:32], 0.3) is None  # small: the kernel
    tracker = NumbaTopk(w.numel(), 0.3)  # misused: the kernel answers, never a wrong mask
    assert tracker.update(w, mask, mask_f) is None and tracker.fallbacks == 1
    assert torch.equal(mask, mask_topk(w, 0.3))


def test_band_rewrites_masks_after_invalidate() -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(64, 64, generator=g)
    mask, mask_f = torch.zeros(64, 64, dtype=torch.bool), torch.zeros(64, 64)
    tracker = NumbaTopk(w.numel(), 0.25)
    tracker.update(w, mask, mask_f)
    mask.fill_(True)  # an edit the caller reports: the count of ones is not trusted
    mask_f.fill_(1.0)
    tracker.invalidate()
    _check(tracker, w + 1e-3 * torch.randn(64, 64, generator=g), mask, mask_f, 0.25)


def test_band_kernels_agree_with_numpy_on_one_pass() -> None:
    from weightscope.sparse.topk import _band_kernels as kern

    rng = np.random.default_rng(0)
    w = rng.standard_normal(1000).astype(np.float32)
    m = (rng.random(1000) < 0.5).astype(np.uint8)
    mf, flags, product = m.astype(np.float32), np.empty(1000, np.uint8), np.empty(1000, np.float32)
    lo, hi = 0.5, 0.6
    m_old = m.copy()
    a = np.abs(w)
    cand = (a >= lo) & (a <= hi)
    new = np.where(a > hi, 1, np.where(a < lo, 0, m)).astype(np.uint8)
    kern.classify(w, m, flags, product, lo, hi)
    np.testing.assert_array_equal(product, w * new)
    np.testing.assert_array_equal(flags, (cand | (new != m)).astype(np.uint8))
    out = np.empty(1000, np.int64)
    count, ones, delta, nan = kern.collect(w, m, mf, flags, lo, hi, out)
    np.testing.assert_array_equal(out[:count], np.flatnonzero(cand))
    assert (ones, nan) == (int(new[cand].sum()), False)
    assert delta == int(new.sum()) - int(m_old.sum())
    np.testing.assert_array_equal(m, new)
    np.testing.assert_array_equal(mf, new.astype(np.float32))
    assert kern.count_ones(m) == int(new.sum())


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 16))


def test_search_forward_uses_the_product_and_matches_the_dense_math() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    sp = sparsify(model, 0.1, method=Search()).attach(opt)
    trackers = [sp.topk_tracker(layer) for layer in (model[0], model[2])]
    assert all(isinstance(t, NumbaTopk) for t in trackers)
    x = torch.randn(64, 256)
    for _ in range(6):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        for layer, tracker in zip((model[0], model[2]), trackers, strict=True):
            assert torch.equal(layer.weight_mask, mask_topk(layer.weight, 0.1))
            assert torch.equal(float_mask(layer), layer.weight_mask.float())
            used = layer.masked_weight()
            assert used.data_ptr() == tracker._product.data_ptr()  # the kernel's product
            expected = F.linear(x, layer.weight * layer.weight_mask, layer.bias)
            assert torch.equal(layer(x), expected)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # the cached product is stale now
    assert model[0].masked_weight().data_ptr() != trackers[0]._product.data_ptr()
    expected = F.linear(x, model[0].weight * model[0].weight_mask, model[0].bias)
    assert torch.equal(model[0](x), expected)


def test_search_gradients_through_the_product_are_the_straight_through_ones() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsify(model, 0.25, method=Search()).attach(opt)
    model(torch.randn(8, 256)).sum().backward()
    opt.step()  # rewires: the product is cached now
    opt.zero_grad()
    x = torch.randn(8, 256)
    model(x).sum().backward()  # two forwards share the cached product
    model(x).sum().backward()
    eff = [(layer.weight * layer.weight_mask).detach().requires_grad_()
           for layer in (model[0], model[2])]
    hidden = F.linear(x, eff[0], model[0].bias).relu()
    F.linear(hidden, eff[1], model[2].bias).sum().mul(2).backward()
    torch.testing.assert_close(model[0].weight.grad, eff[0].grad)
    torch.testing.assert_close(model[2].weight.grad, eff[1].grad)


def test_a_graph_kept_across_a_rewire_is_refused_not_silently_wrong() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsify(model, 0.25, method=Search()).attach(opt)
    x = torch.randn(8, 256)
    model(x).sum().backward()
    opt.step()
    kept = model(x).sum()  # uses the cached product ...
    kept.backward(retain_graph=True)
    opt.step()  # ... which this rewire overwrites
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        kept.backward()


def test_unloadable_kernels_mean_the_torch_tracker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numba_module, "_band_kernels", lambda: None)  # e.g. no writable cache
    assert not numba_available()
    model = nn.Sequential(nn.Linear(256, 256))
    sp = sparsify(model, 0.1, method=Search())
    assert isinstance(sp.topk_tracker(model[0]), TorchTopk)
    tracker = NumbaTopk(64 * 64, 0.25)  # built directly: the kernel answers
    w = torch.randn(64, 64)
    mask, mask_f = torch.zeros(64, 64, dtype=torch.bool), torch.zeros(64, 64)
    assert tracker.update(w, mask, mask_f) is None
    assert torch.equal(mask, mask_topk(w, 0.25))


def test_tensor_subclasses_go_to_the_torch_tracker() -> None:
    class Tagged(torch.Tensor):  # stands for e.g. a sharded DTensor: no .numpy() view
        pass

    w = torch.randn(256, 256).as_subclass(Tagged)
    mask, mask_f = torch.zeros(256, 256, dtype=torch.bool), torch.zeros(256, 256)
    assert isinstance(make_topk(w, mask, mask_f, 0.25), TorchTopk)
    tracker = NumbaTopk(w.numel(), 0.25)  # misused: the kernel answers
    assert tracker.update(w, mask, mask_f) is None and tracker.fallbacks == 1
    assert torch.equal(mask, mask_topk(w.as_subclass(torch.Tensor), 0.25))


def test_weights_updated_in_place_or_swapped_keep_the_mask_exact() -> None:
    """Training updates one Parameter in place (the numpy views are kept from step to step);
    replacing its storage (``p.data = ...``, ``.double()``) must be seen, never read stale."""
    g = torch.Generator().manual_seed(3)
    p = nn.Parameter(torch.randn(96, 80, generator=g))
    mask, mask_f = torch.zeros(96, 80, dtype=torch.bool), torch.zeros(96, 80)
    tracker = NumbaTopk(p.numel(), 0.25)
    for step in range(12):
        with torch.no_grad():
            p.add_(0.05 * torch.randn(96, 80, generator=g))
        if step == 6:  # same object, new memory
            p.data = torch.randn(96, 80, generator=g)
        assert _check(tracker, p, mask, mask_f, 0.25) is not None
    p.data = p.data.double()  # same object, new dtype (and a new float copy of the mask)
    mask_f = mask.double()
    assert _check(tracker, p, mask, mask_f, 0.25) is not None


def _four_layer_run(monkeypatch: pytest.MonkeyPatch, min_numel: int) -> tuple[list, set]:
    """Train SEARCH on 4 layers for 6 steps; return every step's masks and the threads used."""
    monkeypatch.setattr(sparsifier, "PARALLEL_MIN_NUMEL", min_numel)
    threads: set[str] = set()
    real = LayerState.rewire

    def spy(state, structure):
        threads.add(threading.current_thread().name.split("_")[0])
        return real(state, structure)

    monkeypatch.setattr(LayerState, "rewire", spy)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(96, 112), nn.Linear(112, 128), nn.Linear(128, 144),
                          nn.Linear(144, 160))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sp = sparsify(model, 0.3, method=Search()).attach(opt)
    masks = []
    for _ in range(6):
        model(torch.randn(4, 96)).square().sum().backward()
        opt.step()
        opt.zero_grad()
        masks.append([m.weight_mask.clone() for m in sp.modules])
        for m in sp.modules:
            assert torch.equal(m.weight_mask, mask_topk(m.weight.detach(), 0.3))
    return masks, threads


def test_layers_rewired_two_at_a_time_equal_one_at_a_time(monkeypatch) -> None:
    parallel, threads = _four_layer_run(monkeypatch, min_numel=1000)
    assert threads == {"MainThread", "weightscope-rewire"}
    serial, threads = _four_layer_run(monkeypatch, min_numel=1 << 40)
    assert threads == {"MainThread"}
    assert all(torch.equal(a, b) for pa, pb in zip(parallel, serial) for a, b in zip(pa, pb))


def test_a_failure_on_the_helper_thread_reaches_the_caller(monkeypatch) -> None:
    monkeypatch.setattr(sparsifier, "PARALLEL_MIN_NUMEL", 1000)
    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsify(model, 0.25, method=Search()).attach(opt)

    def fail_off_main(state, structure):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("helper failed")

    monkeypatch.setattr(LayerState, "rewire", fail_off_main)
    model(torch.randn(2, 64)).sum().backward()
    with pytest.raises(RuntimeError, match="helper failed"):
        opt.step()
