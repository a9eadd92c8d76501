"""sparsify(): layer selection, names and state_dict keys, checkpoints, remove(), errors."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from sparse_helpers import mlp, ref_topk
from torch import nn

from weightscope.errors import ConfigError, SparseStateError, StructureError
from weightscope.sparse import (
    ExcludedLayerWarning,
    Search,
    SparseLinear,
    Static,
    default_exclude,
    get_sparsifier,
    sparsify,
)


class Net(nn.Module):
    """Linear/Conv layers that the default rules keep or exclude, plus an embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(12, 16)  # 12 rows: head (10 outputs) is no vocab projection
        self.conv = nn.Conv2d(16, 32, 3, padding=1)  # kept
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)  # depthwise: excluded
        self.stem = nn.Conv1d(3, 16, 3)  # in_channels 3: excluded
        self.fc = nn.Linear(32, 16)  # kept
        self.head = nn.Linear(16, 10)  # kept (in 16)


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    opt.step()


# ------------------------------------------------------------------------- selection
def test_default_selection_excludes_input_dims_not_multiple_of_16_and_grouped_convs() -> None:
    net = Net()
    with pytest.warns(ExcludedLayerWarning, match=r"'dw' stays dense: .*'stem' stays dense: "
                      r"input dimension 3 is not divisible by 16"):
        sp = sparsify(net, 0.5)  # one summary warning names every layer the rule left dense
    assert sp.layers == ["conv", "fc", "head"]
    assert not hasattr(net.dw, "weight_mask") and not hasattr(net.stem, "weight_mask")
    assert not hasattr(net.emb, "weight_mask")


def test_exclude_names_extend_and_predicate_replaces_the_default_rules() -> None:
    with pytest.warns(ExcludedLayerWarning, match="'stem' stays dense"):  # names extend the rule
        assert sparsify(Net(), 0.5, exclude=["fc"]).layers == ["conv", "head"]
    everything = sparsify(Net(), 0.5, exclude=lambda name, module: False)
    assert everything.layers == ["conv", "dw", "stem", "fc", "head"]
    composed = sparsify(Net(), 0.5, exclude=lambda n, m: default_exclude(n, m) or n == "conv")
    assert composed.layers == ["fc", "head"]


def test_explicit_layers_bypass_default_rules() -> None:
    sp = sparsify(Net(), 0.5, layers=["stem", "head"])
    assert sp.layers == ["stem", "head"]


def test_unstructured_keeps_max_1_round_d_n_per_layer() -> None:
    model = mlp()
    masks_before = {n: ref_topk(m.weight, 0.3) for n, m in model.named_children() if n != "1"}
    sp = sparsify(model, 0.3)
    for name, mask in sp.masks().items():
        assert int(mask.sum()) == max(1, round(0.3 * mask.numel()))
        assert torch.equal(mask, masks_before[name])  # top-|w| at init
    tiny = sparsify(mlp(1), 1e-4)
    assert all(int(m.sum()) == 1 for m in tiny.masks().values())


def test_structure_incompatible_layer_is_warned_in_default_selection() -> None:
    model = mlp(widths=(16, 32, 10))  # out_features 10 cannot take 4x4 blocks
    with pytest.warns(ExcludedLayerWarning, match=r"layer '2' stays dense: block:4"):
        sp = sparsify(model, 0.5, structure="block:4")
    assert sp.layers == ["0"]


def test_structure_incompatible_explicit_layer_is_an_error() -> None:
    model = mlp(widths=(16, 32, 10))
    with pytest.raises(StructureError, match=r"layer '2' cannot be sparsified: 2:4-2d"):
        sparsify(model, None, structure="2:4-2d", layers=["0", "2"])
    assert get_sparsifier(model) is None and not hasattr(model[0], "weight_mask")


def test_attention_out_proj_is_never_masked() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2)
            self.ff = nn.Linear(16, 16)

    sp = sparsify(Block(), 0.5)
    assert sp.layers == ["ff"]
    with pytest.raises(ConfigError, match=r"attention's out_proj"):
        sparsify(Block(), 0.5, layers=["attn.out_proj"])


def test_linear_subclasses_keep_their_class_and_custom_forwards_are_skipped() -> None:
    class Plain(nn.Linear):
        pass

    class Custom(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    model = nn.Sequential(Plain(16, 16), Custom(16, 16))
    with pytest.warns(ExcludedLayerWarning, match=r"'1' stays dense: Custom overrides forward"):
        sp = sparsify(model, 0.5)
    assert sp.layers == ["0"] and isinstance(model[0], Plain)
    assert isinstance(model[0], SparseLinear)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("density", [0.0, 1.5, -0.1, float("nan"), None, "0.5"])
def test_density_outside_0_1_is_a_config_error(density: object) -> None:
    with pytest.raises(ConfigError, match=r"density must be in \(0, 1\]; got"):
        sparsify(mlp(), density)  # type: ignore[arg-type]


def test_two_four_structures_fix_density_half() -> None:
    with pytest.raises(ConfigError, match=r"density must be 0.5; got 0.25"):
        sparsify(mlp(), 0.25, structure="2:4")
    assert sparsify(mlp(), None, structure="2:4").structure.density == 0.5
    assert sparsify(mlp(), 0.5, structure="2:4-2d").structure.density == 0.5


@pytest.mark.parametrize("structure", ["dense", "block:0", "block:x", "4:8", ""])
def test_unknown_structure_is_a_structure_error(structure: str) -> None:
    with pytest.raises(StructureError, match=r"structure|block size"):
        sparsify(mlp(), 0.5, structure=structure)


def test_bad_names_methods_and_total_steps_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"exclude names modules that the model does not have"):
        sparsify(mlp(), 0.5, exclude=["nope"])
    with pytest.raises(ConfigError, match=r"layers names '1', a ReLU"):
        sparsify(mlp(), 0.5, layers=["1"])
    with pytest.raises(ConfigError, match=r"either layers= .* or exclude="):
        sparsify(mlp(), 0.5, layers=["0"], exclude=["2"])
    with pytest.raises(ConfigError, match=r"method must be a weightscope.sparse method"):
        sparsify(mlp(), 0.5, method="search")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"total_steps must be a positive integer"):
        sparsify(mlp(), 0.5, total_steps=0)
    with pytest.raises(ConfigError, match=r"no layer is left to sparsify"):
        sparsify(nn.Sequential(nn.Linear(3, 4)), 0.5)


def test_sparsifying_twice_is_a_sparse_state_error() -> None:
    model = mlp()
    sp = sparsify(model, 0.5)
    with pytest.raises(SparseStateError, match=r"already sparsified"):
        sparsify(model, 0.5)
    sp.remove()
    sparsify(model, 0.5)  # allowed again after remove()


def test_step_before_optimizer_step_is_a_sparse_state_error() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sp = sparsify(model, 0.5)
    with pytest.raises(SparseStateError, match=r"must follow optimizer.step\(\).*since sparsify"):
        sp.step()
    _train_step(model, opt, torch.randn(4, 16))
    sp.step()
    with pytest.raises(SparseStateError, match=r"since the last sp.step\(\) \(s=1\)"):
        sp.step()
    assert sp.step_count == 1


# ------------------------------------------------------------- names, keys, registry
def test_names_keys_and_parameters_are_unchanged_except_weight_mask() -> None:
    model = mlp()
    params = dict(model.named_parameters())
    keys = set(model.state_dict())
    sp = sparsify(model, 0.5)
    assert dict(model.named_parameters()) == params  # same Parameter objects
    assert set(model.state_dict()) == keys | {"0.weight_mask", "2.weight_mask"}
    assert model.state_dict()["0.weight_mask"].dtype == torch.bool
    assert isinstance(model[0], nn.Linear) and get_sparsifier(model) is sp
    assert get_sparsifier(nn.Sequential(model)) is sp  # found from a parent module too


def test_config_is_plain_json() -> None:
    sp = sparsify(mlp(), 0.25, method=Search(fix_at=0.5, reset_every=10), total_steps=100)
    config = json.loads(json.dumps(sp.config))
    assert config == {
        "structure": "unstructured",
        "density": 0.25,
        "method": "Search",
        "method_params": {"rewire_every": 1, "grad_scale": 1.0, "fix_at": 0.5,
                          "reset_every": 10, "decay": 0.0},
        "layers": ["0", "2"],
        "total_steps": 100,
    }


def test_attach_steps_after_every_optimizer_step() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sp = sparsify(model, 0.5).attach(opt)
    for _ in range(3):
        _train_step(model, opt, torch.randn(4, 16))
    assert sp.step_count == 3
    with pytest.raises(SparseStateError, match=r"already attached"):
        sp.attach(opt)


# -------------------------------------------------------------------- checkpoints
def test_dense_checkpoint_loads_strictly_into_a_sparsified_model() -> None:
    dense = mlp(seed=5)
    checkpoint = copy.deepcopy(dense.state_dict())
    model = mlp(seed=0)
    sparsify(model, 0.25)
    result = model.load_state_dict(checkpoint)  # strict=True, no weight_mask keys
    assert not result.missing_keys and not result.unexpected_keys
    for name in ("0", "2"):
        w = checkpoint[f"{name}.weight"]
        assert torch.equal(model.get_submodule(name).weight, w)  # Search keeps n
        assert torch.equal(model.get_submodule(name).weight_mask, ref_topk(w, 0.25))


def test_dense_checkpoint_into_static_model_zeroes_nonparticipating() -> None:
    checkpoint = copy.deepcopy(mlp(seed=5).state_dict())
    model = mlp()
    sparsify(model, 0.25, method=Static())
    model.load_state_dict(checkpoint)
    w, m = model[0].weight, model[0].weight_mask
    assert torch.equal(m, ref_topk(checkpoint["0.weight"], 0.25))
    assert bool((w[~m] == 0).all()) and torch.equal(w[m], checkpoint["0.weight"][m])


def test_sparse_checkpoint_keeps_its_masks() -> None:
    source = mlp(seed=3)
    sparsify(source, 0.25, method=Static(init="random"))
    model = mlp()
    sparsify(model, 0.25)
    model.load_state_dict(source.state_dict())
    assert torch.equal(model[0].weight_mask, source[0].weight_mask)


# ------------------------------------------------------------------------- remove()
def test_remove_restores_plain_layers_holding_m_times_w() -> None:
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sp = sparsify(model, 0.25).attach(opt)
    _train_step(model, opt, torch.randn(4, 16))
    x = torch.randn(3, 16)
    with torch.no_grad():
        y_sparse = model(x)
    masks = {n: m.clone() for n, m in sp.masks().items()}
    sp.remove()
    assert type(model[0]) is nn.Linear and type(model[2]) is nn.Linear
    assert "0.weight_mask" not in model.state_dict() and get_sparsifier(model) is None
    assert bool((model[0].weight[~masks["0"]] == 0).all())
    torch.testing.assert_close(model(x), y_sparse)
    _train_step(model, opt, x)  # the detached optimizer hook no longer steps
    with pytest.raises(SparseStateError, match=r"was removed"):
        sp.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Sequential(*model).load_state_dict(model.state_dict())


def test_uninitialized_lazy_layers_stay_dense_with_a_warning() -> None:
    model = nn.Sequential(nn.Linear(16, 16), nn.LazyLinear(4))
    with pytest.warns(ExcludedLayerWarning, match=r"\['1'\] stay dense: their lazy weights"):
        sp = sparsify(model, 0.5)
    assert sp.layers == ["0"]
    model(torch.randn(2, 16))
    sp.remove()
    assert sparsify(model, 0.5).layers == ["0", "1"]  # initialized now
