"""Real models: GPT-2 and BERT (Hugging Face, built from configs) and a ResNet-18-style CNN
with BatchNorm, sparsified with the paper's defaults; 2:4 masks on Conv1D's (in, out) weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from real_models import bert, gpt2, resnet18

import weightscope as ws
from weightscope.errors import StructureError
from weightscope.sparse import ExcludedLayerWarning, plan, sparsify

BLOCKS = [f"transformer.h.{i}.{part}" for i in range(2)
          for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]


@pytest.fixture(scope="module", autouse=True)
def hf():
    """transformers, imported when a test runs (collecting the suite does not import it);
    without it every test of the module skips."""
    return pytest.importorskip("transformers")


def _groups_of_four_along_input(mask: torch.Tensor) -> torch.Tensor:
    """Participating weights per 4 consecutive inputs of a Conv1D mask (in, out)."""
    n_in, n_out = mask.shape
    return mask.t().reshape(n_out, n_in // 4, 4).sum(-1)


def _transposable(mask: torch.Tensor) -> bool:
    """Every 4x4 block of the (out, in) view keeps 2 per row and 2 per column."""
    blocks = mask.t().reshape(mask.shape[1] // 4, 4, mask.shape[0] // 4, 4)
    return bool((blocks.sum(3) == 2).all() and (blocks.sum(1) == 2).all())


def test_gpt2_default_sparsifies_every_block_and_leaves_embeddings_and_lm_head_dense():
    model = gpt2()
    sp = sparsify(model, 0.5)
    assert sp.layers == BLOCKS
    dense = {r.name: r.reason for r in sp.plan if not r.chosen}
    assert set(dense) == {"transformer.wte", "transformer.wpe", "lm_head"}
    assert "tied to embedding 'transformer.wte'" in dense["lm_head"]
    assert not hasattr(model.lm_head, "weight_mask")
    assert not hasattr(model.transformer.wte, "weight_mask")
    x = torch.randint(0, 500, (2, 8))
    model(x, labels=x).loss.backward()  # the masked Conv1D forward runs in the real model
    assert model.transformer.h[0].mlp.c_fc.weight.grad is not None


@pytest.mark.parametrize("structure", ["2:4", "2:4-2d"])
def test_gpt2_two_four_masks_run_along_conv1d_input_dimension(structure):
    model = gpt2()
    sparsify(model, structure=structure)
    for name in BLOCKS:
        mask = model.get_submodule(name).weight_mask
        assert (_groups_of_four_along_input(mask) == 2).all(), name
        if structure == "2:4-2d":
            assert _transposable(mask), name


@settings(max_examples=25, deadline=None)
@given(n_in=st.integers(1, 6), n_out=st.integers(1, 6), seed=st.integers(0, 2**16),
       two_d=st.booleans())
def test_conv1d_masks_keep_two_of_every_four_inputs(hf, n_in, n_out, seed, two_d):
    torch.manual_seed(seed)
    layer = hf.pytorch_utils.Conv1D(4 * n_out, 4 * n_in)  # weight (in, out)
    sp = sparsify(torch.nn.Sequential(layer), structure="2:4-2d" if two_d else "2:4",
                  layers=["0"])
    mask = layer.weight_mask
    assert mask.shape == layer.weight.shape
    assert (_groups_of_four_along_input(mask) == 2).all()
    assert _transposable(mask) or not two_d
    kernel = ws.kernels.mask_24_2d if two_d else ws.kernels.mask_24_1d
    assert torch.equal(mask, kernel(layer.weight.detach().t()).t())  # the (out, in) view's
    x = torch.randn(3, 4 * n_in)
    torch.testing.assert_close(layer(x), x @ (layer.weight * mask) + layer.bias)
    sp.remove()


def test_conv1d_input_not_divisible_by_four_is_skipped_or_refused(hf):
    conv1d = hf.pytorch_utils.Conv1D
    model = torch.nn.Sequential(conv1d(16, 10), conv1d(8, 16))
    with pytest.warns(ExcludedLayerWarning, match=r"layer '0' stays dense: 2:4 does not fit it "
                      r"\(Conv1D weights are laid out \(10, 16\) with the input dimension at "
                      r"dim 0.*in=10"):
        sp = sparsify(model, structure="2:4", exclude=lambda n, m: False)
    assert sp.layers == ["1"]
    assert plan(model)["0"].reason == "input dimension 10 is not divisible by 16"
    sp.remove()
    with pytest.raises(StructureError, match=r"layer '0' cannot be sparsified: 2:4 does not fit "
                       r"it \(Conv1D weights are laid out \(10, 16\)"):
        sparsify(model, structure="2:4", layers=["0", "1"])


def test_bert_classifier_and_pooler_stay_dense():
    model = bert()
    sp = sparsify(model, 0.5)
    assert "classifier" not in sp.layers and "bert.pooler.dense" not in sp.layers
    assert len(sp.layers) == 12  # q, k, v, attention output, intermediate, output per layer
    assert sp.plan["classifier"].reason == "classification head of a BertForSequenceClassification"
    ws.sparse.get_sparsifier(model).remove()
    assert sparsify(model, 0.5, exclude=lambda n, m: False).layers[-2:] == [
        "bert.pooler.dense", "classifier"]


def test_resnet_with_batchnorm_is_recorded_and_sparsified_with_two_four_2d(tmp_path):
    model = resnet18(width=16)
    with pytest.warns(ExcludedLayerWarning) as caught:
        sp = sparsify(model, structure="2:4-2d")
    assert len(caught) == 1
    assert "layer 'conv1' stays dense: input dimension 3" in str(caught[0].message)
    assert "layer 'fc' stays dense: 2:4-2d does not fit it" in str(caught[0].message)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sp.attach(opt)
    gen = torch.Generator().manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ws.Recorder(tmp_path / "r.zarr", model, every=2) as rec:
            rec.attach(opt)
            for _ in range(4):
                x = torch.randn(4, 3, 32, 32, generator=gen)
                y = torch.randint(0, 10, (4,), generator=gen)
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
    ds = ws.open_run(tmp_path / "r.zarr")
    assert len(ds.param) == 21 and ds.step.values.tolist() == [0, 2, 4]
    assert ds.attrs["sparse"]["structure"] == "2:4-2d"
    index = list(ds.param.values).index("layer2.0.conv1.weight")
    layer = ds.isel(weight=ds.param_id.values == index)
    mask = layer.mask.values[-1].reshape(32, 16, 3, 3)
    blocks = mask.reshape(8, 4, 4, 4, 3, 3)
    assert (blocks.sum(3) == 2).all() and (blocks.sum(1) == 2).all()
    assert np.array_equal(mask, model.layer2[0].conv1.weight_mask.numpy())
