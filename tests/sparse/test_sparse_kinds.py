"""Layer kinds in sparse training: registered types, the summary of layers left dense, the
plan, selectors and the density of the 2:4 structures."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from sparse_helpers import mlp
from torch import nn

import weightscope as ws
from weightscope.errors import ConfigError
from weightscope.kinds import kind_of, register_layer
from weightscope.sparse import ExcludedLayerWarning, plan, sparsify


class Scaled(nn.Module):
    """A user layer with its own forward reading ``self.weight`` (out, in)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * F.linear(x, self.weight)


class Kernel(nn.Module):
    """A user layer keeping its (in, out) weight in ``kernel``."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.kernel


def test_a_registered_type_is_masked_through_its_own_forward() -> None:
    register_layer(Scaled)
    torch.manual_seed(0)
    model = nn.Sequential(Scaled(16, 16), nn.ReLU(), nn.Linear(16, 4))
    sp = sparsify(model, 0.25)
    assert sp.layers == ["0", "2"] and type(model[0]).__name__ == "SparseScaled"
    x = torch.randn(3, 16)
    want = 2.0 * F.linear(x, model[0].weight * model[0].weight_mask)
    torch.testing.assert_close(model[0](x), want)
    model[0](x).sum().backward()  # straight-through: the dense weight gets a gradient
    assert model[0].weight.grad is not None and isinstance(model[0].weight, nn.Parameter)
    sp.remove()
    assert type(model[0]) is Scaled


def test_a_weight_under_another_name_is_recorded_but_stays_dense() -> None:
    register_layer(Kernel, weight="kernel", in_dim=0)
    model = nn.Sequential(Kernel(), nn.Linear(8, 16))
    assert kind_of(model[0]).input_size(model[0]) == 16
    with pytest.warns(ExcludedLayerWarning, match=r"layer '0' stays dense: Kernel keeps its "
                      r"weight in 'kernel'"):
        sp = sparsify(model, 0.5, exclude=lambda n, m: False)
    assert sp.layers == ["1"]


def test_registration_errors_name_the_rule_the_value_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"register_layer needs an nn.Module subclass .*got 3"):
        register_layer(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"in_dim must be an int >= 0 .*got -1. Pass in_dim=1"):
        register_layer(Scaled, in_dim=-1)
    with pytest.raises(ConfigError, match=r"weight must name the layer's weight attribute; "
                       r"got 'not a name'"):
        register_layer(Scaled, weight="not a name")
    with pytest.raises(ConfigError, match=r"Kernel is registered as a layer with "
                       r"weight='weight', but it has no tensor 'weight' \(its parameters: "
                       r"\['kernel'\]\). Register it with weight="):
        register_layer(Kernel())
    with pytest.raises(ConfigError, match=r"registered with in_dim=2, which does not fit its "
                       r"weight 'kernel' of shape \(16, 8\).*in_dim=1 for \(out, in\)"):
        register_layer(Kernel(), weight="kernel", in_dim=2)


def test_every_layer_left_dense_is_reported_once_in_one_summary() -> None:
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.Flatten(),
                          nn.Linear(16, 10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sp = sparsify(model, structure="2:4-2d")
    assert len(caught) == 1 and caught[0].category is ExcludedLayerWarning
    text = str(caught[0].message)
    assert text.startswith("sparsify leaves 2 linear-like layer(s) dense")
    assert "layer '0' stays dense: input dimension 3 is not divisible by 16" in text
    assert "layer '4' stays dense: 2:4-2d does not fit it" in text
    assert sp.layers == ["2"] and sp.plan["0"].reason.startswith("input dimension 3")


def test_no_layer_left_is_one_error_and_no_warning() -> None:
    model = nn.Sequential(*[nn.Linear(16, 10) for _ in range(20)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=r"no layer is left to sparsify .*'0': block:3 "
                           r"does not fit it.*and 17 more\)"):
            sparsify(model, 0.5, structure="block:3")
    assert not hasattr(model[0], "weight_mask")


def test_two_four_without_a_density_takes_one_half() -> None:
    assert sparsify(mlp(), structure="2:4").structure.density == 0.5
    assert sparsify(mlp(), structure="2:4-2d").density() == 0.5
    with pytest.raises(ConfigError, match=r"density must be 0.5; got 0.25"):
        sparsify(mlp(), 0.25, structure="2:4")
    assert sparsify(mlp()).structure.density == 0.25


def test_plan_changes_nothing_and_says_why() -> None:
    model = nn.ModuleDict({"emb": nn.Embedding(10, 16), "body": nn.Linear(16, 16),
                           "out": nn.Linear(16, 10)})
    table = plan(model)
    assert [(r.name, r.chosen) for r in table] == [("emb", False), ("body", True),
                                                   ("out", False)]
    assert table["out"].reason == ("vocabulary projection: its 10 outputs match embedding "
                                   "'emb' (10 rows)")
    assert "sparsify plan: 1 of 3 entries" in repr(table)
    assert not hasattr(model["body"], "weight_mask")
    assert plan(model, exclude=lambda n, m: False).chosen == ["body", "out"]


def test_tied_weights_stay_dense_unless_named_in_layers() -> None:
    model = nn.ModuleDict({"emb": nn.Embedding(12, 16), "out": nn.Linear(16, 12, bias=False),
                           "body": nn.Linear(16, 16)})
    model["out"].weight = model["emb"].weight
    assert sparsify(model, 0.5, exclude=lambda n, m: False).layers == ["body"]  # never by rule
    ws.sparse.get_sparsifier(model).remove()
    assert sparsify(model, 0.5, layers=["out"]).layers == ["out"]


def test_selectors_take_globs_and_list_close_names() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.Linear(16, 16))
    assert sparsify(model, 0.5, layers="[02]").layers == ["0", "2"]
    ws.sparse.get_sparsifier(model).remove()
    blocks = nn.ModuleDict({"block1": mlp(), "block2": mlp()})
    assert sparsify(blocks, 0.5, exclude=["block2.*"]).layers == ["block1.0", "block1.2"]
    with pytest.raises(ConfigError, match=r"exclude names modules that the model does not have: "
                       r"\['blok1'\]. Use names .* Close names for 'blok1': 'block1'"):
        plan(blocks, exclude=["blok1"])
