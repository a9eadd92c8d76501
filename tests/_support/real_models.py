"""Small real-world models for tests: GPT-2 and BERT built from configs (no download, no
dropout, so that two runs of the same batches are bit-identical) and a ResNet-18-style CNN with
BatchNorm."""

from __future__ import annotations

import torch
from torch import nn


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


class Block(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm, a 1x1 projection when downsampling."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout)) if stride != 1 or cin != cout
                     else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


def resnet18(width: int = 16, classes: int = 10, seed: int = 0) -> nn.Module:
    """ResNet-18 layout (stem conv on 3 channels, 4 stages of 2 blocks, ``fc``) at ``width``."""
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv2d(3, width, 3, 1, 1, bias=False))
    model.add_module("bn1", nn.BatchNorm2d(width))
    model.add_module("relu", nn.ReLU())
    cin = width
    for stage in range(4):
        cout = width * 2**stage
        stride = 1 if stage == 0 else 2
        model.add_module(f"layer{stage + 1}",
                         nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1)))
        cin = cout
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc", nn.Linear(cin, classes))
    return model
