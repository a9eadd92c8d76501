"""Baselines: Static, Lottery, SET and RigL (paper appendix D)."""

from __future__ import annotations

import copy

import pytest
import torch
from sparse_helpers import mlp, ref_topk, set_weight
from torch import nn

from weightscope.errors import ConfigError, StructureError
from weightscope.sparse import SET, Lottery, RigL, Static, sparsify

D = 0.25


def _layer(seed: int = 0, shape: tuple[int, int] = (8, 16)) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(shape[1], shape[0], bias=False)


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 16, generator=g)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def _assert_n_zero(module: nn.Module) -> None:
    assert bool((module.weight.detach()[~module.weight_mask] == 0).all())


# -------------------------------------------------------------------------- Static
def test_static_mask_is_fixed_and_n_stays_zero_without_gradient() -> None:
    model = mlp()
    w0 = model[0].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    sp = sparsify(model, D, method=Static()).attach(opt)
    m0 = ref_topk(w0, D)
    assert torch.equal(model[0].weight_mask, m0)
    assert torch.equal(model[0].weight.detach()[m0], w0[m0])
    _assert_n_zero(model[0])
    for _ in range(5):
        _train(model, opt, 1)
        assert bool((model[0].weight.grad[~m0] == 0).all())
        assert torch.equal(model[0].weight_mask, m0)
        _assert_n_zero(model[0])
    assert sp.step_count == 5


def test_static_random_mask_is_seeded_and_respects_the_structure() -> None:
    masks = [sparsify(_layer(), D, method=Static("random", seed=s)).masks()[""] for s in (1, 1, 2)]
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])
    assert not torch.equal(masks[0], ref_topk(_layer().weight, D))
    assert int(masks[0].sum()) == 32
    two_four = sparsify(_layer(), None, "2:4", method=Static("random", seed=3)).masks()[""]
    assert bool((two_four.view(8, 4, 4).sum(-1) == 2).all())
    with pytest.raises(ConfigError, match=r"Static init must be 'magnitude' or 'random'"):
        Static(init="gradient")


# ------------------------------------------------------------------------- Lottery
def test_lottery_masks_from_trained_weights_and_rewinds_to_eps() -> None:
    dense = mlp(seed=4)
    opt = torch.optim.SGD(dense.parameters(), lr=0.1)
    _train(dense, opt, 2)
    rewind = copy.deepcopy(dense.state_dict())  # step eps = 2
    _train(dense, opt, 6, seed=1)
    trained = copy.deepcopy(dense.state_dict())
    ticket = mlp(seed=9)
    sp = sparsify(ticket, D, method=Lottery(trained, rewind, rewind_step=2))
    for name in ("0", "2"):
        m = ticket.get_submodule(name).weight_mask
        w = ticket.get_submodule(name).weight.detach()
        assert torch.equal(m, ref_topk(trained[f"{name}.weight"], D))
        assert torch.equal(w[m], rewind[f"{name}.weight"][m])
        assert torch.equal(ticket.get_submodule(name).bias, rewind[f"{name}.bias"])
        assert bool((w[~m] == 0).all())
    assert sp.config["method_params"] == {"rewind": True, "rewind_step": 2}


def test_lottery_without_rewind_keeps_the_models_init() -> None:
    init = mlp(seed=2)
    w0 = init[0].weight.detach().clone()
    trained = {k: v + 1.0 for k, v in mlp(seed=3).state_dict().items()}
    sparsify(init, D, method=Lottery(trained))
    m = init[0].weight_mask
    assert torch.equal(m, ref_topk(trained["0.weight"], D))
    assert torch.equal(init[0].weight.detach()[m], w0[m])


def test_lottery_errors() -> None:
    with pytest.raises(ConfigError, match=r"Lottery needs the trained model's state dict"):
        Lottery([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"must hold '2.weight' of shape \(16, 32\); got None"):
        sparsify(mlp(), D, method=Lottery({"0.weight": torch.zeros(32, 16)}))


# ------------------------------------------------------------------ SET and RigL
def _scrambled(shape: tuple[int, int], seed: int) -> torch.Tensor:
    """Distinct magnitudes (no ties) in random order."""
    g = torch.Generator().manual_seed(seed)
    n = shape[0] * shape[1]
    return (torch.randperm(n, generator=g).float() + 1.0).view(shape) / n


def _weakest(w: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Oracle: bool tensor of the `count` participating weights of smallest |w|."""
    flat, fm = w.reshape(-1).tolist(), mask.reshape(-1).tolist()
    order = sorted((abs(v), i) for i, v in enumerate(flat) if fm[i])
    out = torch.zeros(len(flat), dtype=torch.bool)
    out[[i for _, i in order[:count]]] = True
    return out.view(w.shape)


def test_set_drops_weakest_and_regrows_at_random_at_zero() -> None:
    grown_sets = []
    for seed in (0, 0, 1):
        lin = _layer()
        sp = sparsify(lin, D, method=SET(0.5, rewire_every=2, seed=seed), total_steps=10)
        for s in (1, 2):
            before = lin.weight_mask.clone()
            target = _scrambled((8, 16), s) * lin.weight_mask  # n stays zero
            set_weight(lin, target)
            sp.step()
        after, w = lin.weight_mask, lin.weight.detach()
        count = round(0.5 * (1 - 2 / 10) * 32)  # f(2) * k = 12.8 -> 13
        dropped, grown = before & ~after, after & ~before
        assert int(dropped.sum()) == int(grown.sum()) == count and int(after.sum()) == 32
        assert torch.equal(dropped, _weakest(target, before, count))
        assert bool((w[dropped | grown] == 0).all())  # new weights start at 0
        assert torch.equal(w[after & before], target[after & before])
        grown_sets.append(grown)
    assert torch.equal(grown_sets[0], grown_sets[1]) and not torch.equal(grown_sets[0],
                                                                          grown_sets[2])


def test_set_regrowth_is_uniform_over_nonparticipating_weights() -> None:
    counts = torch.zeros(4, 16)
    trials = 150
    for seed in range(trials):
        lin = _layer(shape=(4, 16))
        sp = sparsify(lin, D, method=SET(0.5, rewire_every=1, seed=seed), total_steps=2)
        before = lin.weight_mask.clone()
        set_weight(lin, lin.weight.detach() * 1.0)
        sp.step()
        counts += (lin.weight_mask & ~before).float()
    rate = counts[~before] / trials  # expected 4 regrown of 48 candidates
    assert abs(float(rate.mean()) - 4 / 48) < 1e-6
    assert float(rate.min()) > 0.0 and float(rate.max()) < 0.25


def test_drop_fraction_decays_linearly() -> None:
    lin = _layer()
    sp = sparsify(lin, D, method=SET(0.5, rewire_every=2, seed=0), total_steps=10)
    swapped = {}
    for s in range(1, 13):
        before = lin.weight_mask.clone()
        set_weight(lin, _scrambled((8, 16), s) * before)
        sp.step()
        swapped[s] = int((before & ~lin.weight_mask).sum())
    expected = {s: round(0.5 * max(0.0, 1 - s / 10) * 32) if s % 2 == 0 else 0
                for s in range(1, 13)}
    assert swapped == expected
    assert [swapped[s] for s in (2, 4, 6, 8, 10)] == [13, 10, 6, 3, 0]


def test_rigl_regrows_by_largest_dense_gradient() -> None:
    lin = _layer()
    opt = torch.optim.SGD(lin.parameters(), lr=1e-3)
    sp = sparsify(lin, D, method=RigL(0.5, rewire_every=1), total_steps=4).attach(opt)
    c = _scrambled((8, 16), 7) - 0.5  # d loss / d (m * w) = c, signed, no ties in |c|
    before = lin.weight_mask.clone()
    opt.zero_grad()
    (lin(torch.eye(16)) * c.T).sum().backward()  # lin(I) = (m * w)^T
    assert bool((lin.weight.grad[~before] == 0).all())  # no update for n...
    w_after_opt = lin.weight.detach() - 1e-3 * lin.weight.grad
    opt.step()  # attached: sp.step() runs here
    count = round(0.5 * (1 - 1 / 4) * 32)
    grown = lin.weight_mask & ~before
    scores = c.abs().masked_fill(before, -1.0)  # ...but their dense gradient picks the growth
    expected = torch.zeros(128, dtype=torch.bool)
    expected[scores.reshape(-1).topk(count).indices] = True
    assert torch.equal(grown, expected.view(8, 16))
    assert torch.equal(before & ~lin.weight_mask, _weakest(w_after_opt, before, count))
    assert bool((lin.weight.detach()[grown] == 0).all())
    assert sp.step_count == 1 and lin.sparse_state.dense_grad is not None  # next: s=2


def test_regrown_weights_restart_optimizer_state_when_attached() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sparsify(model, D, method=RigL(0.3, rewire_every=3), total_steps=30).attach(opt)
    before = model[0].weight_mask.clone()
    _train(model, opt, 3)
    changed = before ^ model[0].weight_mask
    assert bool(changed.any())
    momentum = opt.state[model[0].weight]["momentum_buffer"]
    assert bool((momentum[changed] == 0).all())
    _assert_n_zero(model[0])


def test_set_and_rigl_errors() -> None:
    with pytest.raises(StructureError, match=r"SET rewires single weights.*got '2:4'"):
        sparsify(mlp(), None, "2:4", method=SET(), total_steps=10)
    with pytest.raises(ConfigError, match=r"RigL's rewired fraction decays linearly"):
        sparsify(mlp(), D, method=RigL())
    with pytest.raises(ConfigError, match=r"fraction must be a number in \[0.0, 1.0\]; got 1.5"):
        SET(fraction=1.5)
    with pytest.raises(ConfigError, match=r"RigL fraction must be in \(0, 1\]; got 0.0"):
        RigL(fraction=0.0)
