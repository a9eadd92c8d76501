"""The Recorder's parameter selection: the layer registry, tied parameters recorded once,
names/globs/predicates for params= and exclude=, the plan and its warnings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightscope as ws
from weightscope import schema
from weightscope.errors import ConfigError
from weightscope.kinds import register_layer
from weightscope.kinds.plan import CoverageWarning
from weightscope.record.selection import aliases_of, plan_params, select_params


def _tied() -> nn.Module:
    model = nn.ModuleDict({"emb": nn.Embedding(50, 16), "body": nn.Linear(16, 16),
                           "out": nn.Linear(16, 50, bias=False)})
    model["out"].weight = model["emb"].weight
    return model


def test_tied_parameter_is_recorded_once_under_its_first_name_with_aliases(tmp_path):
    model = _tied()
    chosen = select_params(model)
    assert [s.name for s in chosen] == ["emb.weight", "body.weight"]
    assert aliases_of(model, chosen) == {"emb.weight": ["out.weight"]}
    with ws.Recorder(tmp_path / "r.zarr", model) as rec:
        rec.step()
    ds = ws.open_run(tmp_path / "r.zarr")
    assert ds.param.values.tolist() == ["emb.weight", "body.weight"]
    assert ds.attrs[schema.ALIASES] == {"emb.weight": ["out.weight"]}
    assert "also named ['out.weight']" in rec.plan["emb.weight"].reason


def test_an_alias_named_explicitly_selects_the_one_parameter():
    assert [s.name for s in select_params(_tied(), params=["out.weight", "emb.weight"])] == [
        "emb.weight"]


def test_globs_predicates_and_exclude_share_one_selector():
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    assert [s.name for s in select_params(model, params="*.bias")] == ["0.bias", "2.bias"]
    assert [s.name for s in select_params(model, exclude=["2.*"])] == ["0.weight"]
    assert [s.name for s in select_params(model, exclude=lambda n, m: m.out_features == 4)] == [
        "0.weight"]
    with pytest.raises(ConfigError, match=r"exclude must name parameters of the model; "
                       r"\['2.wieght'\] are not among them.*Close names for '2.wieght': "
                       r"'2.weight'"):
        select_params(model, exclude=["2.wieght"])
    with pytest.raises(ConfigError, match=r"params must be a name, a list of names or globs, "
                       r"or a predicate"):
        select_params(model, params=3)  # type: ignore[arg-type]


def test_registered_layer_types_are_recorded_by_default():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = nn.Parameter(torch.zeros(8, 4))

    register_layer(Gate, weight="kernel", in_dim=0)
    model = nn.Sequential(Gate(), nn.Linear(4, 2))
    assert [s.name for s in select_params(model)] == ["0.kernel", "1.weight"]


def test_no_recordable_layer_says_what_counts_and_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"params=None matches no parameter of the model: it "
                       r"has no linear-like layer .*Pass params=\[names\] among: weight"):
        ws.Recorder(tmp_path / "r.zarr", nn.Embedding(4, 4))
    with pytest.warns(CoverageWarning, match=r"covers 0.0% .* the biggest left out: 'weight'"):
        plan = plan_params(nn.Embedding(4, 4))
    assert plan.chosen == []


def test_thin_default_selection_is_warned_naming_the_biggest_layers_left_out(tmp_path):
    model = nn.ModuleDict({"emb": nn.Embedding(1000, 16), "fc": nn.Linear(16, 16)})
    with pytest.warns(CoverageWarning, match=r"covers 1.6% .*'emb.weight' \(16,000"):
        ws.Recorder(tmp_path / "r.zarr", model).close()
    plan_params(model, params=["fc.weight"])  # an explicit selection is not warned


def test_plan_is_a_readable_table():
    text = repr(plan_params(nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))))
    assert text.splitlines()[0] == "record plan: 1 of 4 entries, 64 of 88 parameters (72.7%)"
    assert "weight of a linear-like layer (Linear)" in text
