"""SEARCH (paper Algorithm 1): rewiring, FIX, RESET, REGULARIZE and their order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sparse_helpers import fake_step, ref_topk, set_weight
from torch import nn

from weightscope.errors import ConfigError
from weightscope.sparse import Search, sparsify

D = 0.25


def _layer(seed: int = 0, shape: tuple[int, int] = (4, 16)) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(shape[1], shape[0])


def _fresh(step: int, shape: tuple[int, int] = (4, 16)) -> torch.Tensor:
    """Distinct random weights for a step (a new top-k set almost surely)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(1000 + step))


def test_masks_at_sparsify_come_from_abs_w_at_init_and_weights_stay_dense() -> None:
    lin = _layer()
    w0 = lin.weight.detach().clone()
    sparsify(lin, D)
    assert torch.equal(lin.weight_mask, ref_topk(w0, D))
    assert torch.equal(lin.weight, w0)


def test_grad_scale_gives_g_on_p_and_scaled_g_on_n() -> None:
    lin = _layer()
    sparsify(lin, D, method=Search(grad_scale=0.3))
    x = torch.randn(5, 16)
    m = lin.weight_mask
    wm = (lin.weight * m).detach().requires_grad_(True)
    F.linear(x, wm, lin.bias).pow(2).sum().backward()
    lin(x).pow(2).sum().backward()
    g = wm.grad
    torch.testing.assert_close(lin.weight.grad, torch.where(m, g, 0.3 * g), rtol=0, atol=0)


def test_rewire_only_at_multiples_of_rewire_every() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=Search(rewire_every=3))
    mask = lin.weight_mask.clone()
    for s in range(1, 10):
        set_weight(lin, _fresh(s))
        sp.step()
        if s % 3 == 0:
            mask = ref_topk(_fresh(s), D)
            assert not torch.equal(mask, ref_topk(_fresh(s - 1), D))
        assert torch.equal(lin.weight_mask, mask), f"step {s}"


def test_fix_rewires_at_v_for_the_last_time_and_zeroes_n_from_v_on() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=Search(rewire_every=2, fix_at=5))
    for s in range(1, 10):
        set_weight(lin, _fresh(s))
        sp.step()
        m, w = lin.weight_mask, lin.weight.detach()
        if s in (2, 4, 5):  # multiples of r up to v, and v itself
            assert torch.equal(m, ref_topk(_fresh(s), D)), f"step {s}"
        if s > 5:
            assert torch.equal(m, ref_topk(_fresh(5), D)), f"mask not frozen at step {s}"
        if s >= 5:
            assert bool((w[~m] == 0).all()), f"n not zero at step {s}"
            assert torch.equal(w[m], _fresh(s)[m])  # p untouched
        else:
            assert bool((w[~m] != 0).all()), f"n zeroed before v at step {s}"


def test_reset_zeroes_n_exactly_at_multiples_of_z() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=Search(rewire_every=1000, reset_every=3))
    m = lin.weight_mask.clone()
    for s in range(1, 11):
        before = lin.weight.detach().clone()
        fake_step(lin, _fresh(s) * 0.01)
        sp.step()
        w = lin.weight.detach()
        assert torch.equal(lin.weight_mask, m)
        assert torch.equal(w[m], before[m] + 0.01 * _fresh(s)[m])  # p never reset
        if s % 3 == 0:
            assert bool((w[~m] == 0).all()), f"step {s}"
        else:
            assert bool((w[~m] != 0).all()), f"step {s}"


def test_regularize_scales_n_by_one_minus_beta_and_leaves_p() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=Search(rewire_every=1000, decay=0.1))
    m = lin.weight_mask.clone()
    for s in range(1, 4):
        fake_step(lin, _fresh(s) * 0.01)
        after_opt = lin.weight.detach().clone()
        sp.step()
        w = lin.weight.detach()
        torch.testing.assert_close(w[~m], after_opt[~m] - 0.1 * after_opt[~m],
                                   rtol=1e-6, atol=0)
        assert torch.equal(w[m], after_opt[m])


def test_order_rewire_then_regularize_then_reset_then_fix() -> None:
    # On every step the rules apply to the *new* non-participating set of step (1).
    lin = _layer()
    sp = sparsify(lin, D, method=Search(rewire_every=1, decay=0.5, reset_every=2, fix_at=4))
    expectations = {
        1: lambda w: w * 0.5,  # rewire + regularize
        2: lambda w: torch.zeros_like(w),  # rewire + regularize + reset
        3: lambda w: w * 0.5,
        4: lambda w: torch.zeros_like(w),  # last rewire + regularize + reset + fix
        5: lambda w: torch.zeros_like(w),  # fix (frozen mask)
    }
    for s, expected_n in expectations.items():
        previous = lin.weight_mask.clone()
        set_weight(lin, _fresh(s))
        sp.step()
        m_new = ref_topk(_fresh(min(s, 4)), D)
        assert torch.equal(lin.weight_mask, m_new), f"step {s}"
        if s <= 4:  # some weights joined p: they keep their values, the new n are scaled
            assert bool((m_new & ~previous).any())
        w = lin.weight.detach()
        assert torch.equal(w[m_new], _fresh(s)[m_new]), f"step {s}: p changed"
        torch.testing.assert_close(w[~m_new], expected_n(_fresh(s)[~m_new]), rtol=1e-6, atol=0)


def _reference_search(
    w0: torch.Tensor, deltas: list[torch.Tensor], r: int, z: int, v: int, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow oracle of Algorithm 1 with explicit per-element loops."""
    w = w0.clone()
    m = ref_topk(w, D)
    for s, delta in enumerate(deltas, start=1):
        w = w + delta
        if s <= v and (s % r == 0 or s == v):
            m = ref_topk(w, D)
        flat_w, flat_m = w.view(-1), m.view(-1)
        for i in range(flat_w.numel()):
            if not flat_m[i]:
                flat_w[i] = flat_w[i] - beta * flat_w[i]
                if s % z == 0 or s >= v:
                    flat_w[i] = 0.0
    return w, m


def test_search_matches_a_slow_oracle_over_many_steps() -> None:
    lin = _layer(shape=(8, 16))
    w0 = lin.weight.detach().clone()
    deltas = [0.2 * _fresh(s, (8, 16)) for s in range(1, 21)]
    sp = sparsify(lin, D, method=Search(rewire_every=3, reset_every=7, fix_at=14, decay=0.05))
    for delta in deltas:
        fake_step(lin, delta)
        sp.step()
    w_ref, m_ref = _reference_search(w0, deltas, r=3, z=7, v=14, beta=0.05)
    assert torch.equal(lin.weight_mask, m_ref)
    torch.testing.assert_close(lin.weight.detach(), w_ref, rtol=1e-5, atol=1e-7)


def test_fix_at_fraction_resolves_against_total_steps() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=Search(fix_at=0.5), total_steps=10)
    for s in range(1, 6):
        set_weight(lin, _fresh(s))
        sp.step()
        n = lin.weight.detach()[~lin.weight_mask]
        assert bool((n == 0).all()) == (s >= 5)
    assert Search(fix_at=1.0).fix_step(7) == 7 and Search(fix_at=0.01).fix_step(10) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rewire_every": 0}, r"rewire_every must be an integer >= 1; got 0"),
        ({"rewire_every": 1.5}, r"rewire_every must be an integer >= 1; got 1.5"),
        ({"reset_every": 0}, r"reset_every must be an integer >= 1 or None; got 0"),
        ({"reset_every": True}, r"reset_every must be an integer >= 1 or None; got True"),
        ({"grad_scale": -0.1}, r"grad_scale must be a number in \[0.0, inf\); got -0.1"),
        ({"decay": 1.0}, r"decay must be a number in \[0.0, 1.0\); got 1.0"),
        ({"fix_at": 0}, r"fix_at must be an integer >= 1 or None; got 0"),
        ({"fix_at": 1.5}, r"fix_at \(a fraction of total_steps\) must be a number in"),
        ({"fix_at": 0.0}, r"fix_at as a fraction must be in \(0, 1\]; got 0.0"),
    ],
)
def test_search_parameters_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Search(**kwargs)  # type: ignore[arg-type]


def test_fix_at_needs_total_steps_and_must_fit_in_it() -> None:
    with pytest.raises(ConfigError, match=r"fix_at=0.5 is a fraction .* needs total_steps"):
        sparsify(_layer(), D, method=Search(fix_at=0.5))
    with pytest.raises(ConfigError, match=r"fix_at must be <= total_steps \(10\); got 20"):
        sparsify(_layer(), D, method=Search(fix_at=20), total_steps=10)


def test_a_method_overriding_the_removed_after_step_hook_is_refused() -> None:
    from weightscope.sparse import Method

    with pytest.raises(ConfigError, match=r"overrides after_step\(\).*Override the hooks"):
        type("Custom", (Method,), {"after_step": lambda self, sp, step: None})
