"""The lm task's reference numbers: unigram and bigram baselines, REDUCE widths, and REGULAR.

``python scripts/lm_baselines.py [LR ...]`` prints the validation loss (nats), perplexity and
next-token error of the train split's unigram and bigram (add-0.01) models, the width of
REDUCE at d = 0.5 / 0.25 / 0.1, and for each LR the REGULAR run (seed 0, the task's other
defaults) trained on one thread. Quoted in docs/reproducing.md ("Language model").
"""

from __future__ import annotations

import math
import sys
import time

import torch

from weightscope.experiments.lm import load_corpus, unigram_baseline
from weightscope.experiments.models import count_weights
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sparse_train import build_model
from weightscope.experiments.train import evaluate, train


def _bigram(corpus) -> tuple[float, float]:
    v = corpus.vocab_size
    x, y = corpus.x_train.flatten(), corpus.y_train.flatten()
    pairs = torch.zeros(v, v).index_put_((x, y), torch.ones(y.numel()), accumulate=True)
    p = (pairs + 0.01) / (pairs + 0.01).sum(1, keepdim=True)
    xv, yv = corpus.x_test.flatten(), corpus.y_test.flatten()
    return float(-p[xv, yv].log().mean()), float((pairs.argmax(1)[xv] != yv).float().mean())


def main(lrs: list[float]) -> None:
    torch.set_num_threads(1)
    corpus = load_corpus(RunConfig(task="lm").num_samples)
    for name, (loss, error) in (("unigram", unigram_baseline(corpus)),
                                ("bigram", _bigram(corpus))):
        print(f"{name}: loss {loss:.3f} ppl {math.exp(loss):.1f} error {error:.4f}")
    for d in (0.5, 0.25, 0.1):
        model = build_model(RunConfig(task="lm", method="reduce", density=d))
        print(f"REDUCE d={d}: width {model.tok.weight.shape[1]}, {count_weights(model)} weights")
    for lr in lrs:
        config = RunConfig(task="lm", method="regular", lr=lr)
        model, start = config.build(seed=0), time.perf_counter()
        result = train(model, corpus, config.train_config)
        loss, error = evaluate(model, corpus.x_test, corpus.y_test)
        print(f"REGULAR lr={lr:g} seed 0 ({time.perf_counter() - start:.0f} s): val loss "
              f"{loss:.3f} ppl {math.exp(loss):.1f} error {error:.4f}; train loss "
              f"{result.train_loss:.3f}")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]])
