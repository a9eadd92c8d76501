"""GPT-2 trained by the Hugging Face Trainer with SEARCH at d = 0.5, recorded and analyzed.

A GPT-2 built from ``GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=500)`` (nothing is
downloaded) learns token sequences generated here: each sequence follows
``t[i+1] = (a * t[i] + b) mod 500`` from a random start, with ``(a, b)`` one of a few fixed
rules, so the next token is predictable once the rule is seen. Then:

* ``ws.sparse.sparsify(model, density=0.5)`` with its defaults (the paper's: SEARCH, the
  blocks' ``Conv1D`` layers sparse; the embeddings ``wte``/``wpe`` and ``lm_head``, tied to
  ``wte``, dense), attached to the optimizer the Trainer is given;
* :class:`~weightscope.integrations.transformers.WeightscopeCallback` records the run (the
  default selection: every block's ``Conv1D`` weight and the tied embedding once, with
  ``lm_head.weight`` as its alias) at 21 uniformly spaced snapshots;
* ``weightscope analyze RUN`` draws its Figure 1 (decay panel: the first block's MLP ``c_fc``)
  and writes summary.json.

Usage::

    python examples/hf_gpt2.py [OUT] [--steps N | --full]

By default 200 optimizer steps (about a minute on 2 CPU cores); ``--full`` trains 2000 steps
with 4 layers of width 128 (``n_layer=4, n_embd=128, n_head=4``; about 15 minutes), where the
loss falls from ~6.2 (log 500) to near the rules' entropy. The test suite runs ``--steps 8``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as hf

import weightscope as ws
from weightscope.integrations.transformers import WeightscopeCallback

VOCAB, LENGTH, BATCH, RULES = 500, 32, 16, ((3, 7), (7, 11), (11, 1), (13, 5))


def token_data(rows: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``rows`` sequences of LENGTH tokens, each from one of RULES (labels = inputs: the model
    shifts them for next-token prediction)."""
    gen = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(rows):
        a, b = RULES[int(torch.randint(len(RULES), (), generator=gen))]
        ids = [int(torch.randint(VOCAB, (), generator=gen))]
        for _ in range(LENGTH - 1):
            ids.append((a * ids[-1] + b) % VOCAB)
        tokens = torch.tensor(ids)
        data.append({"input_ids": tokens, "labels": tokens})
    return data


def gpt2(full: bool) -> hf.GPT2LMHeadModel:
    """The issue's GPT-2 (or a 4-layer, width-128 one for ``--full``), seeded."""
    torch.manual_seed(0)
    size = dict(n_layer=4, n_embd=128, n_head=4) if full else dict(n_layer=2, n_embd=64,
                                                                   n_head=2)
    config = hf.GPT2Config(vocab_size=VOCAB, n_positions=LENGTH, bos_token_id=0,
                           eos_token_id=0, **size)
    return hf.GPT2LMHeadModel(config)


def train(out: Path, steps: int, full: bool) -> Path:
    """Sparsify, train with the Trainer and record; returns the run's path."""
    model = gpt2(full)
    sp = ws.sparse.sparsify(model, density=0.5)  # method=Search(): the paper's SEARCH
    print(f"sparse (d = 0.5): {len(sp.layers)} layers, {', '.join(sp.layers[:4])} ...; dense: "
          + ", ".join(row.name for row in sp.plan if not row.chosen))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sp.attach(opt)  # masks are rewired after every optimizer step the Trainer takes
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    path = out / "gpt2.zarr"
    args = hf.TrainingArguments(
        output_dir=str(out / "trainer"), max_steps=steps, per_device_train_batch_size=BATCH,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=True, seed=0)
    trainer = hf.Trainer(model=model, args=args, train_dataset=token_data(BATCH * steps),
                         optimizers=(opt, sched),
                         callbacks=[WeightscopeCallback(path, every=max(1, steps // 20),
                                                        overwrite=True)])
    trainer.remove_callback(hf.PrinterCallback)
    trainer.train()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=None, type=Path)
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 200)")
    parser.add_argument("--full", action="store_true", help="a larger GPT-2, 2000 steps")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp())
    steps = args.steps or (2000 if args.full else 200)
    hf.logging.set_verbosity_error()
    path = train(out, steps, args.full)

    ds = ws.open_run(path)
    loss = ds.loss.values  # one per optimizer step (dimension "iteration")
    print(f"recorded {ds.sizes['step']} snapshots of {ds.sizes['weight']:,} weights in "
          f"{ds.sizes['param']} parameters (aliases {ds.attrs['aliases']}); loss "
          f"{loss[0]:.2f} -> {loss[-1]:.2f}")
    # what a user types: weightscope analyze RUN --param ... (the decay panel on a sparse
    # block's weight; by default it takes the largest parameter, here the tied embedding)
    subprocess.run([sys.executable, "-m", "weightscope_cli.app", "analyze", str(path),
                    "--param", "transformer.h.0.mlp.c_fc.weight", "--out", str(out / "analysis")],
                   check=True)


if __name__ == "__main__":
    main()
