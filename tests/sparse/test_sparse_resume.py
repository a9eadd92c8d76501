"""Checkpoints: model + optimizer + sparsifier state dicts resume training bit for bit."""

from __future__ import annotations

import io

import pytest
import torch
from sparse_helpers import mlp
from torch import nn

from weightscope.errors import SparseStateError
from weightscope.sparse import SET, Method, RigL, Search, Static, sparsify

TOTAL = 12
METHODS = [
    Search(rewire_every=2, reset_every=3, decay=0.01, fix_at=9),
    Search(grad_scale=0.5, fix_at=0.75),
    Static(init="random", seed=1),
    SET(0.3, rewire_every=2, seed=5),
    RigL(0.3, rewire_every=3),
]


def _batch(step: int, width: int = 16) -> torch.Tensor:
    return torch.randn(8, width, generator=torch.Generator().manual_seed(step))


def _setup(
    method: Method, seed: int, widths: tuple[int, ...] = (16, 32, 16)
) -> tuple[nn.Module, torch.optim.Optimizer, object]:
    model = mlp(seed=seed, widths=widths)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sp = sparsify(model, 0.25, method=method, total_steps=TOTAL).attach(opt)
    return model, opt, sp


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    width = next(model.parameters()).shape[1]
    for step in steps:
        opt.zero_grad()
        model(_batch(step, width)).pow(2).mean().backward()
        opt.step()  # the attached sparsifier steps here


def _checkpoint(model: nn.Module, opt: torch.optim.Optimizer, sp: object) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sp": sp.state_dict()}, buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("method", "widths"),
    [(m, (16, 32, 16)) for m in METHODS] + [(Search(decay=1e-3), (256, 256, 16))],
    ids=[type(m).__name__ for m in METHODS] + ["Search-incremental"],
)
def test_checkpoint_resumes_identically(method: Method, widths: tuple[int, ...]) -> None:
    model, opt, sp = _setup(method, seed=0, widths=widths)
    _train(model, opt, range(1, 6))
    blob = _checkpoint(model, opt, sp)
    _train(model, opt, range(6, TOTAL + 1))

    resumed, opt2, sp2 = _setup(method, seed=123, widths=widths)  # all must come back
    state = torch.load(io.BytesIO(blob), weights_only=True)
    resumed.load_state_dict(state["model"])
    opt2.load_state_dict(state["opt"])
    sp2.load_state_dict(state["sp"])  # type: ignore[attr-defined]
    assert sp2.step_count == 5  # type: ignore[attr-defined]
    _train(resumed, opt2, range(6, TOTAL + 1))

    assert sp2.step_count == sp.step_count == TOTAL  # type: ignore[attr-defined]
    for (name, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        for key, value in opt.state[p].items():
            assert torch.equal(value, opt2.state[q][key]), key


def test_sparsifier_state_must_match_method_and_layers() -> None:
    _, _, sp = _setup(Search(), seed=0)
    state = sp.state_dict()  # type: ignore[attr-defined]
    _, _, other = _setup(Static(), seed=0)
    with pytest.raises(SparseStateError, match=r"method is 'Search', expected 'Static'"):
        other.load_state_dict(state)  # type: ignore[attr-defined]
    model = mlp()
    narrow = sparsify(model, 0.25, layers=["0"])
    with pytest.raises(SparseStateError, match=r"layers is \['0', '2'\], expected \['0'\]"):
        narrow.load_state_dict(state)
