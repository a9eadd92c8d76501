"""Small real-world models for tests: GPT-2 and BERT built from configs (no download, no
dropout, so that two runs of the same batches are bit-identical) and a ResNet-18-style CNN with
BatchNorm (weightscope.experiments.models.resnet18, the one of the examples and bench/scale.py)."""

from __future__ import annotations

import torch
from torch import nn

from weightscope.experiments import models


def gpt2(seed: int = 0) -> nn.Module:
    """GPT-2 LM head model from ``GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=500)``."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=500,
                                     n_positions=64, bos_token_id=0, eos_token_id=0,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(config)


def bert(seed: int = 0, num_labels: int = 3) -> nn.Module:
    """A two-layer BERT sequence classifier (hidden 64, vocabulary 500)."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=128,
                                     max_position_embeddings=64, num_labels=num_labels,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config)


def resnet18(width: int = 16, classes: int = 10, seed: int = 0) -> nn.Module:
    """The package's ResNet-18 (CIFAR stem) at ``width``, seeded."""
    return models.resnet18(width, classes, seed=seed)
