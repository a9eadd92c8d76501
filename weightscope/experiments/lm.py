"""The bundled language-modeling task: a grammar-generated corpus and a small decoder-only
transformer.

The corpus is generated offline by a fixed stochastic grammar (nothing is downloaded); its
sentences follow::

    S    -> NP[c, n] VP[c, n] "."
    NP   -> DET[n] ADJ[c]? NOUN[c, n] (PREP NP | "that" VP[c, n])?
    VP   -> VERB_T[c, n] NP[c']  |  VERB_I[c, n] ADV?

Every noun belongs to one of four classes ``c``; each verb and adjective accepts subjects
(objects) of a few classes only, drawn once from a fixed seed (selectional restrictions, a
lexicon to memorize); verbs agree in number ``n`` with their subject, also across a
prepositional phrase or relative clause ("the cat near the dogs *sees* ..."), which takes
attention over the context. The token stream (sentences back to back) is cut into windows of
``context + 1`` tokens: inputs are the first ``context`` tokens, targets the next ones.

The model (:class:`TinyLM`) is GPT-style: token and position embeddings, ``depth`` pre-norm
blocks (causal self-attention with a fused ``qkv`` Linear and a ``proj`` Linear, then an MLP
``fc`` -> GELU -> ``out``), a final LayerNorm and a vocabulary projection ``head`` tied to the
token embedding. Its logits come out as ``(batch, vocab, time)``, the class-in-dimension-1
layout of :func:`torch.nn.functional.cross_entropy`, so the MNIST-1D training loop and its
``evaluate`` (cross-entropy, ``argmax(1) != y``) serve it unchanged: the "test error" of this
task is the validation next-token error. Sparsify's defaults keep the embeddings and the tied
head dense (the paper's "except embeddings and vocabulary projections") and mask every block.

Examples
--------
>>> from weightscope.experiments.lm import count_lm_weights, load_corpus, transformer
>>> corpus = load_corpus(num_samples=100)
>>> tuple(corpus.x_train.shape), corpus.vocab_size
((80, 32), 149)
>>> count_lm_weights()
235488
>>> tuple(transformer(width=32, seed=0)(corpus.x_test[:2]).shape)
(2, 149, 32)
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weightscope._validate import check_int
from weightscope.errors import ConfigError

from .models import _seeded

__all__ = ["CONTEXT", "DEFAULT_LM_WIDTH", "LMCorpus", "TinyLM", "count_lm_weights",
           "lm_family", "load_corpus", "transformer", "unigram_baseline"]

#: Tokens of context per training window.
CONTEXT = 32
#: Width of the full model (3 heads of 32).
DEFAULT_LM_WIDTH = 96
_DEPTH = 2
_HEAD_DIM = 32
_GRAMMAR_SEED = 1234  # the lexicon's selectional restrictions (fixed: part of the task)
_NOUNS = ("cat dog bird horse cow goat frog duck " "king queen farmer baker doctor pilot nurse "
          "singer " "stone tree river road lamp book chair table " "song story idea plan "
          "dream rule law trick").split()
_VERBS_T = ("see chase find like hold push pull lift follow watch read sing build break "
            "paint open").split()
_VERBS_I = "sleep run swim fall shine laugh wait rest".split()
_ADJS = "big small old young red blue green happy sad quiet loud bright dark soft cold warm".split()
_ADVS = "slowly quickly often rarely today again".split()
_PREPS = "near behind under above beside with".split()
_DET_SG, _DET_PL = ("a", "the", "every", "this"), ("the", "some", "these", "many")


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("sh", "ch")) else "s")


@functools.lru_cache(maxsize=1)
def _grammar() -> tuple[tuple[str, ...], dict]:
    """Vocabulary and the lexicon's class tables (fixed by ``_GRAMMAR_SEED``)."""
    words = ([".", "that"] + sorted(set(_DET_SG + _DET_PL)) + _PREPS + _ADVS + _ADJS
             + _NOUNS + [_plural(n) for n in _NOUNS] + _VERBS_T + [_plural(v) for v in _VERBS_T]
             + _VERBS_I + [_plural(v) for v in _VERBS_I])
    rng = np.random.default_rng(_GRAMMAR_SEED)

    def classes() -> tuple[int, ...]:
        return tuple(sorted(rng.choice(4, size=2, replace=False).tolist()))

    tables = {
        "subj": {v: classes() for v in _VERBS_T + _VERBS_I},
        "obj": {v: classes() for v in _VERBS_T},
        "adj": {a: classes() for a in _ADJS},
    }
    return tuple(words), tables


class _Generator:
    """Sentences of the grammar from one numpy Generator (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.tables = _grammar()[1]

    def pick(self, options: list[str] | tuple[str, ...], key: str) -> str:
        """One of ``options``, Zipf-weighted in an order fixed by ``key`` (the word that
        selects it): every context has its own preferred words."""
        order = _preference(key, tuple(options))
        rank = int(np.searchsorted(_zipf(len(order)), self.rng.random()))
        return order[min(rank, len(order) - 1)]

    def noun_phrase(self, cls: int, depth: int, key: str,
                    plural: bool | None = None) -> tuple[list[str], str]:
        """Words of a noun phrase of class ``cls`` selected by ``key``, and its head noun."""
        if plural is None:
            plural = bool(self.rng.random() < 0.4)
        noun = self.pick(_NOUNS[8 * cls:8 * cls + 8], key)
        words = [self.pick(_DET_PL if plural else _DET_SG, key)]
        if self.rng.random() < 0.4:
            words.append(self.pick([a for a in _ADJS if cls in self.tables["adj"][a]], noun))
        words.append(_plural(noun) if plural else noun)
        if depth < 2 and self.rng.random() < 0.3:
            if self.rng.random() < 0.5:
                prep = self.pick(_PREPS, noun)
                words += [prep] + self.noun_phrase(int(self.rng.integers(4)), depth + 1,
                                                   prep)[0]
            else:
                words += ["that", *self.verb_phrase(cls, plural, noun, depth + 1)]
        return words, noun

    def verb_phrase(self, cls: int, plural: bool, subject: str, depth: int) -> list[str]:
        """A verb phrase agreeing with a subject of class ``cls``, number ``plural``."""
        transitive = self.rng.random() < 0.7
        pool = _VERBS_T if transitive else _VERBS_I
        verb = self.pick([v for v in pool if cls in self.tables["subj"][v]], subject)
        words = [verb if plural else _plural(verb)]
        if transitive:
            obj = int(self.pick([str(c) for c in self.tables["obj"][verb]], verb))
            words += self.noun_phrase(obj, depth, verb)[0]
        elif self.rng.random() < 0.3:
            words.append(self.pick(_ADVS, verb))
        return words

    def sentence(self) -> list[str]:
        cls, plural = int(self.rng.integers(4)), bool(self.rng.random() < 0.4)
        subject, noun = self.noun_phrase(cls, 0, ".", plural)
        return subject + self.verb_phrase(cls, plural, noun, 0) + ["."]


@functools.lru_cache(maxsize=4096)
def _preference(key: str, options: tuple[str, ...]) -> tuple[str, ...]:
    """``options`` in the order of preference of the word ``key`` (fixed per grammar)."""
    seed = zlib.crc32(f"{_GRAMMAR_SEED}:{key}:{' '.join(options)}".encode())
    return tuple(options[i] for i in np.random.default_rng(seed).permutation(len(options)))


@functools.lru_cache(maxsize=64)
def _zipf(n: int) -> np.ndarray:
    """Cumulative Zipf probabilities ``p_i ~ 1 / i`` of ``n`` ranked options."""
    weights = 1.0 / np.arange(1, n + 1)
    return np.cumsum(weights / weights.sum())


@dataclass(frozen=True, eq=False)
class LMCorpus:
    """Train and validation windows of the grammar corpus (shared cached tensors: do not
    modify); the attribute names match :class:`~.data.MNIST1D` so that
    :func:`~.train.train` takes either.

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        Input tokens, int64 of shape (n, :data:`CONTEXT`) (``x_test``: the validation split).
    y_train, y_test : torch.Tensor
        The next token of every input position, same shape.
    vocab : tuple of str
        Token strings by id.
    seed : int
        Seed the corpus was generated with.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    vocab: tuple[str, ...]
    seed: int

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens."""
        return len(self.vocab)

    def decode(self, ids: torch.Tensor) -> str:
        """The words of a 1D tensor of token ids, space separated.

        Examples
        --------
        >>> from weightscope.experiments.lm import load_corpus
        >>> load_corpus(num_samples=10).decode(torch.tensor([4, 0]))
        'many .'
        """
        return " ".join(self.vocab[int(i)] for i in ids)


def load_corpus(num_samples: int = 10_000, seed: int = 0) -> LMCorpus:
    """Generate the grammar corpus offline: ``num_samples`` windows, 80 % train (the first),
    20 % validation (cached per arguments; no global random state is touched).

    Raises
    ------
    ConfigError
        If ``num_samples`` is not a multiple of 10 or ``seed`` is negative.

    Examples
    --------
    >>> from weightscope.experiments.lm import load_corpus
    >>> load_corpus(num_samples=10).decode(load_corpus(num_samples=10).x_train[0][:6])
    'these rules sing every queen that'
    """
    check_int(num_samples, "num_samples must be an int >= 10", minimum=10,
              fix="Pass e.g. num_samples=10000.")
    if num_samples % 10:
        raise ConfigError(f"num_samples must be a multiple of 10 (80/20 split); got "
                          f"{num_samples}. Pass e.g. num_samples=10000.")
    check_int(seed, "seed must be an int >= 0", minimum=0, fix="Pass e.g. seed=0.")
    return _load_corpus(int(num_samples), int(seed))


@functools.lru_cache(maxsize=4)
def _load_corpus(num_samples: int, seed: int) -> LMCorpus:
    vocab = _grammar()[0]
    ids = {w: i for i, w in enumerate(vocab)}
    gen, stream = _Generator(seed), []
    need = num_samples * (CONTEXT + 1)
    while len(stream) < need:
        stream += [ids[w] for w in gen.sentence()]
    windows = torch.tensor(stream[:need], dtype=torch.int64).view(num_samples, CONTEXT + 1)
    n_train = num_samples * 8 // 10
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
    return LMCorpus(x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:],
                    y_test=y[n_train:], vocab=vocab, seed=seed)


def unigram_baseline(corpus: LMCorpus) -> tuple[float, float]:
    """Validation cross-entropy (nats) and next-token error of the train split's unigram
    distribution: the level a model that ignores the context reaches.

    Examples
    --------
    >>> from weightscope.experiments.lm import load_corpus, unigram_baseline
    >>> loss, error = unigram_baseline(load_corpus(num_samples=1000))
    >>> 3.5 < loss < 4.5, 0.8 < error < 0.9
    (True, True)
    """
    counts = torch.bincount(corpus.y_train.flatten(), minlength=corpus.vocab_size) + 1.0
    logp = (counts / counts.sum()).log()
    y = corpus.y_test.flatten()
    return float(-logp[y].mean()), float((y != counts.argmax()).float().mean())


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = _Attention(width, heads)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyLM(nn.Module):
    """Decoder-only transformer with a tied vocabulary projection (see the module docstring).

    ``forward(tokens)`` maps int64 ``(batch, time)`` to logits ``(batch, vocab, time)``.
    """

    def __init__(self, vocab: int, width: int, depth: int = _DEPTH,
                 context: int = CONTEXT) -> None:
        super().__init__()
        heads = max(1, width // _HEAD_DIM) if width % _HEAD_DIM == 0 else _heads_for(width)
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:  # GPT-2: residual projections scaled by 1/sqrt(2 depth)
            for layer in (block.attn.proj, block.out):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * depth))
        self.head.weight = self.tok.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok(tokens) + self.pos.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x)).transpose(1, 2)


def _heads_for(width: int) -> int:
    """Most heads of at least 8 dims that divide ``width`` (REDUCE's narrow widths)."""
    return max([h for h in range(1, width // 8 + 1) if width % h == 0] or [1])


def transformer(width: int = DEFAULT_LM_WIDTH, seed: int | None = None) -> TinyLM:
    """The task's model at ``width`` (any width >= 8; full model 96), seeded if asked.

    Examples
    --------
    >>> from weightscope.experiments.lm import transformer
    >>> sorted({type(m).__name__ for m in transformer(width=32).modules()})
    ['Embedding', 'LayerNorm', 'Linear', 'ModuleList', 'TinyLM', '_Attention', '_Block']
    """
    check_int(width, "width must be an int >= 8", minimum=8, fix="Pass e.g. width=128.")
    with _seeded(seed):
        return TinyLM(_grammar_vocab_size(), int(width))


def _grammar_vocab_size() -> int:
    return len(_grammar()[0])


def count_lm_weights(width: int = DEFAULT_LM_WIDTH) -> int:
    """Weights of the model's Linear layers at ``width`` (blocks plus the tied head, counted
    once; biases, norms and the position embedding excluded)."""
    return _DEPTH * 12 * width * width + _grammar_vocab_size() * width


def lm_family(n: int = 4, width: int = DEFAULT_LM_WIDTH, multiple_of: int = 16) -> tuple:
    """Widths (multiples of ``multiple_of``) whose weight counts are closest to
    ``linspace(1/4, 1, n)`` of the full model's; the last is ``width``.

    Examples
    --------
    >>> from weightscope.experiments.lm import lm_family
    >>> lm_family()
    (48, 64, 80, 96)
    """
    check_int(n, "n must be an int >= 2", minimum=2, fix="Pass e.g. n=4.")
    full = count_lm_weights(width)
    candidates = range(multiple_of, width + 1, multiple_of)
    widths = [min(candidates, key=lambda w: abs(count_lm_weights(w) - full * (
        0.25 + 0.75 * i / (n - 1)))) for i in range(n - 1)] + [width]
    if len(set(widths)) != n:
        raise ConfigError(f"lm_family(n={n}, width={width}) gives repeated widths "
                          f"{tuple(widths)}. Pass a smaller n or a larger width.")
    return tuple(widths)
