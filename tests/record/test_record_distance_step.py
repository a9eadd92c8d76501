"""distance_step: the fused numba pass and the torch passes both equal a float64 oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscope.record import capture
from weightscope.record.capture import distance_step

needs_numba = pytest.mark.skipif(capture._distance_kernels() is None, reason="needs numba")


def _oracle(cur: torch.Tensor, prev: torch.Tensor, mask: torch.Tensor | None) -> float:
    eff = cur.double() if mask is None else cur.double() * mask.double()
    return float((eff - prev.double()).abs().sum())


@pytest.fixture(params=["numba", "torch"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "numba" and capture._distance_kernels() is None:
        pytest.skip("needs numba")
    if request.param == "torch":
        monkeypatch.setattr(capture, "_distance_kernels", lambda: None)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_distance_equals_float64_oracle_and_prev_becomes_effective_weight(path, dtype, masked):
    g = torch.Generator().manual_seed(0)
    cur = torch.randn(300, 77, generator=g, dtype=dtype)
    prev = cur + 1e-3 * torch.randn(300, 77, generator=g, dtype=dtype)
    mask = torch.rand(300, 77, generator=g) < 0.3 if masked else None
    expected = _oracle(cur, prev, mask)
    got = distance_step(cur, prev, mask, torch.empty_like(prev))
    assert got.dtype == torch.float64 and got.ndim == 0
    np.testing.assert_allclose(float(got), expected, rtol=1e-12 if path == "numba" else 1e-6)
    assert torch.equal(prev, cur if mask is None else cur * mask)


@needs_numba
@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 5000), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([1e-8, 1.0, 1e8]))
def test_numba_sum_of_float32_differences_is_exact_to_float64_rounding(n, seed, scale):
    rng = np.random.default_rng(seed)
    cur = torch.from_numpy((rng.standard_normal(n) * scale).astype(np.float32))
    prev = torch.from_numpy((rng.standard_normal(n) * scale).astype(np.float32))
    expected = _oracle(cur, prev, None)
    got = float(distance_step(cur, prev.clone()))
    assert got == pytest.approx(expected, rel=1e-13, abs=0.0)


def test_nonfinite_weights_give_a_nonfinite_distance(path):
    cur = torch.tensor([1.0, float("nan"), 2.0])
    assert np.isnan(float(distance_step(cur, torch.zeros(3))))
    cur = torch.tensor([1.0, float("inf")])
    assert float(distance_step(cur, torch.zeros(2))) == float("inf")


@needs_numba
def test_inputs_the_kernels_do_not_take_use_the_torch_passes(monkeypatch):
    calls = []
    real = capture._distance_kernels

    def spy():
        calls.append(1)
        return real()

    monkeypatch.setattr(capture, "_distance_kernels", spy)
    cur = torch.randn(8, 6).t()  # not contiguous
    prev = torch.zeros(6, 8)
    assert float(distance_step(cur, prev)) == pytest.approx(float(cur.abs().sum()), rel=1e-6)
    half = torch.randn(16, dtype=torch.bfloat16)
    distance_step(half, torch.zeros(16, dtype=torch.bfloat16))
    assert calls == []
    distance_step(torch.randn(16), torch.zeros(16))
    assert calls == [1]
