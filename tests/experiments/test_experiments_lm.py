"""The bundled language-model task: corpus, model, sparsify defaults, runs and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner
from weightscope_cli.app import app

from weightscope.errors import ConfigError
from weightscope.experiments import lm
from weightscope.experiments.demo import DemoConfig, run_family
from weightscope.experiments.models import count_weights
from weightscope.experiments.sparse_config import RunConfig
from weightscope.experiments.sparse_train import run_config
from weightscope.experiments.sweeps import get_sweep
from weightscope.sparse import plan
from weightscope.store.sweep_results import SweepStore

TINY = {"task": "lm", "num_samples": 100, "batch_size": 8, "width": 32}


def test_corpus_is_deterministic_and_shifted() -> None:
    a = lm._load_corpus.__wrapped__(200, 0)  # a fresh generation, not the cache
    b = lm.load_corpus(num_samples=200)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(lm.load_corpus(200, seed=1).x_train, b.x_train)
    assert b.x_train.shape == (160, lm.CONTEXT) and b.x_test.shape == (40, lm.CONTEXT)
    assert torch.equal(b.y_train[:, :-1], b.x_train[:, 1:])  # targets are the next tokens
    assert int(b.x_train.max()) < b.vocab_size and b.vocab[0] == "."


def test_sentences_follow_the_grammar() -> None:
    """Sentences end with '.'; a subject noun followed by its verb agrees in number."""
    corpus = lm.load_corpus(200)
    stream = torch.cat([corpus.x_train, corpus.y_train[:, -1:]], 1).flatten()
    sentences = corpus.decode(stream).split(" . ")[1:-1]
    verbs = lm._VERBS_T + lm._VERBS_I
    singular = {noun: {lm._plural(v) for v in verbs} for noun in lm._NOUNS}
    plural = {lm._plural(noun): set(verbs) for noun in lm._NOUNS}
    checked = 0
    for words in (s.split() for s in sentences[:300]):
        head = next(i for i, w in enumerate(words) if w in singular or w in plural)
        if words[head + 1] in set(verbs) | singular[lm._NOUNS[0]]:
            assert words[head + 1] in {**singular, **plural}[words[head]], words
            checked += 1
    assert checked > 100


def test_unigram_baseline_matches_a_loop() -> None:
    corpus = lm.load_corpus(100)
    counts = [1.0] * corpus.vocab_size
    for t in corpus.y_train.flatten().tolist():
        counts[t] += 1
    total = sum(counts)
    ys = corpus.y_test.flatten().tolist()
    loss = -sum(math.log(counts[y] / total) for y in ys) / len(ys)
    best = max(range(len(counts)), key=counts.__getitem__)
    got = lm.unigram_baseline(corpus)
    assert got[0] == pytest.approx(loss, rel=1e-5)
    assert got[1] == pytest.approx(sum(y != best for y in ys) / len(ys))


def test_bad_corpus_size() -> None:
    with pytest.raises(ConfigError, match=r"num_samples must be a multiple of 10 .*got 105"):
        lm.load_corpus(105)


def test_model_size_tied_head_and_sparsify_defaults() -> None:
    model = lm.transformer(seed=0)
    assert count_weights(model) == lm.count_lm_weights() == 235_488
    assert model.head.weight is model.tok.weight
    rows = {row.name: row for row in plan(model).rows}
    assert not rows["head"].chosen and "tied" in rows["head"].reason
    assert not rows["tok"].chosen and not rows["pos"].chosen
    blocks = [n for n, r in rows.items() if r.chosen]
    assert len(blocks) == 8 and all(n.startswith("blocks.") for n in blocks)
    logits = model(lm.load_corpus(100).x_test[:3])
    assert logits.shape == (3, lm.load_corpus(100).vocab_size, lm.CONTEXT)


def test_run_config_task_field() -> None:
    cfg = RunConfig(task="lm")
    assert (cfg.arch, cfg.width, cfg.recipe) == ("transformer", lm.DEFAULT_LM_WIDTH, "adamw")
    assert RunConfig.from_json(cfg.to_json()) == cfg and '"task":"lm"' in cfg.to_json()
    assert cfg.key() != cfg.replace(task="mnist1d", arch="cnn", width=32).key()
    with pytest.raises(ConfigError, match=r"task must be one of \('mnist1d', 'lm'\)"):
        RunConfig(task="text")
    with pytest.raises(ConfigError, match=r"arch must be one of \('transformer',\); got "
                                          r"'cnn' \(task 'lm'\)"):
        RunConfig(task="lm", arch="cnn")


@pytest.mark.parametrize("method", ["search", "reduce"])
def test_run_config_trains_the_lm(method: str) -> None:
    cfg = RunConfig(method=method, density=0.25, steps=3, seed=1,
                    **{k: v for k, v in TINY.items()})
    a, b = run_config(cfg), run_config(cfg)
    assert a.test_error == b.test_error and 0.0 < a.test_error <= 1.0
    dense = count_weights(lm.transformer(32))
    assert a.n_weights < dense


def test_sweep_and_demo_take_the_task() -> None:
    sweep = get_sweep("methods", steps=2, **TINY)
    assert {p.config.task for p in sweep.points} == {"lm"}
    assert sweep.spec["metric"] == "validation next-token error"
    assert "metric" not in get_sweep("methods").spec  # MNIST-1D specs are unchanged
    config = DemoConfig(task="lm", arch="transformer", steps=6, every=2, n_models=2,
                        num_samples=100, batch_size=8)
    runs = run_family(config, "unused")
    assert [r.spec.width for r in runs] == [48, 96] and runs[0].spec.n_weights == 62_448


def test_cli_sweep_methods_lm(tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "m"
    sets = [a for k, v in TINY.items() if k != "task" for a in ("--set", f"{k}={v}")]
    res = runner.invoke(app, ["sweep", "methods", "--task", "lm", "--out", str(out), "--steps",
                              "2", "--seeds", "1", "--workers", "1", *sets])
    assert res.exit_code == 0, res.output
    assert "16 runs executed" in res.output
    assert SweepStore.open(out).spec["overrides"]["task"] == "lm"
    res = runner.invoke(app, ["plot-sweep", str(out)])
    assert res.exit_code == 0, res.output
    assert "validation next-token" in res.output
    assert json.loads((out / "methods.json").read_text())["spec"]["metric"].startswith("valid")
