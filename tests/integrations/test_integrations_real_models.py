"""GPT-2 and BERT (built from configs) trained by the Hugging Face Trainer and by Lightning
give the store of a plain loop recorded with the default Recorder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from real_models import bert, gpt2
from torch import nn

import weightscope as ws
from weightscope import schema

STEPS, MICRO = 3, 4
BUILD = {"gpt2": gpt2, "bert": bert}


@pytest.fixture(scope="module")
def hf():
    """transformers, imported only when a test runs (collecting the suite does not import it);
    without it these tests skip."""
    return pytest.importorskip("transformers")


class Wrapped(nn.Module):
    """A Hugging Face model behind ``forward(input_ids, labels) -> {"loss"}``; remembers its
    training batches so that a plain loop can replay them."""

    def __init__(self, family: str) -> None:
        super().__init__()
        self.model = BUILD[family]()
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, input_ids, labels):
        if self.training:
            self.seen.append((input_ids.clone(), labels.clone()))
        return {"loss": self.model(input_ids=input_ids, labels=labels).loss}


def _data(family: str) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    rows = []
    for _ in range(STEPS * MICRO):
        ids = torch.randint(0, 500, (8,), generator=gen)
        label = ids.clone() if family == "gpt2" else torch.randint(0, 3, (), generator=gen)
        rows.append({"input_ids": ids, "labels": label})
    return rows


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _plain(path, model: nn.Module, wrapped: Wrapped, batches) -> object:
    """The same optimizer steps in a plain loop, recorded by the default Recorder."""
    opt = _optimizer(model)
    with ws.Recorder(path, model, every=2) as rec:
        rec.attach(opt)
        for ids, labels in batches:
            loss = wrapped(ids, labels)["loss"]
            loss.backward()
            opt.step()
            rec.log(loss=loss.detach())
            opt.zero_grad()
    return ws.open_run(path)


def _assert_same_run(got, want) -> None:
    assert got.param.values.tolist() == want.param.values.tolist()
    assert got.step.values.tolist() == want.step.values.tolist() == [0, 2, 3]
    assert np.array_equal(got.w.values.view(np.uint32), want.w.values.view(np.uint32))
    for name in ("distance", "loss"):
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert got.attrs[schema.ALIASES] == want.attrs[schema.ALIASES]


def _check_selection(ds, family: str, prefix: str) -> None:
    params = ds.param.values.tolist()
    if family == "gpt2":
        blocks = [p for p in params if ".h." in p]
        assert len(blocks) == 8 and all(p.endswith(".weight") for p in blocks)
        assert params == [f"{prefix}transformer.wte.weight", *blocks]  # wte once, not lm_head
        assert ds.attrs[schema.ALIASES] == {f"{prefix}transformer.wte.weight":
                                            [f"{prefix}lm_head.weight"]}
    else:
        assert len(params) == 14 and params[-2:] == [f"{prefix}bert.pooler.dense.weight",
                                                     f"{prefix}classifier.weight"]


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_trainer_run_equals_plain_loop(hf, tmp_path, family):
    from weightscope.integrations.transformers import WeightscopeCallback

    model = Wrapped(family)
    args = hf.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=STEPS, per_device_train_batch_size=MICRO,
        logging_steps=1, max_grad_norm=0.0, seed=0, save_strategy="no", report_to="none",
        disable_tqdm=True, use_cpu=True, remove_unused_columns=False)
    opt = _optimizer(model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    trainer = hf.Trainer(model=model, args=args, train_dataset=_data(family),
                         optimizers=(opt, sched),
                         callbacks=[WeightscopeCallback(tmp_path / "hf.zarr", every=2)])
    trainer.remove_callback(hf.PrinterCallback)
    trainer.train()
    got = ws.open_run(tmp_path / "hf.zarr")
    _check_selection(got, family, "model.")
    plain = Wrapped(family)
    _assert_same_run(got, _plain(tmp_path / "plain.zarr", plain, plain, model.seen))


@pytest.mark.usefixtures("hf")  # the models are transformers' GPT-2 and BERT
@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_lightning_run_equals_plain_loop(tmp_path, family):
    pl = pytest.importorskip("lightning.pytorch")
    from torch.utils.data import DataLoader

    from weightscope.integrations.lightning import WeightscopeCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = Wrapped(family)

        def training_step(self, batch, batch_idx):
            return self.net(batch["input_ids"], batch["labels"])["loss"]

        def configure_optimizers(self):
            return _optimizer(self.net)

    module = Module()
    trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path,
                         callbacks=[WeightscopeCallback(tmp_path / "pl.zarr", every=2)])
    trainer.fit(module, DataLoader(_data(family), batch_size=MICRO))
    got = ws.open_run(tmp_path / "pl.zarr")
    _check_selection(got, family, "net.model.")
    plain = Module()
    _assert_same_run(got, _plain(tmp_path / "plain.zarr", plain, plain.net, module.net.seen))
