"""Small models for MNIST-1D and width families spanning 1/4 to 1 of the largest.

Two architectures, both built from a single ``width`` so that a model family (Figure 1 middle)
and the REDUCE baseline (a narrower dense model with the weight count of a sparse one) are one
argument away:

* ``mlp``: ``in_features -> width -> ... -> width -> classes`` with ReLU (40-256-256-10 default,
  78,336 weights).
* ``cnn``: three Conv1d layers (kernel 5 stride 1, then kernel 3 stride 2 twice; 40 -> 20 -> 10
  positions) and a Linear classifier on the flattened ``width * 10`` features (64 channels
  default, 31,296 weights).

:func:`resnet18` (not one of :data:`ARCHS`) is the ResNet-18 of the examples and of
``bench/scale.py``: BatchNorm, 2D convolutions, 11.2M weights at its default width on 32x32
images (torchvision is not a dependency).

Every layer but the first has an input dimension that is a multiple of 16 when ``width`` is a
multiple of 16 (and of 8 for the CNN's classifier), so the sparse modules' default exclusion
("input dimension not divisible by 16") only drops the input layer.

Examples
--------
>>> from weightscope.experiments.models import count_weights, mlp
>>> count_weights(mlp())
78336
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from weightscope._validate import check_int
from weightscope.errors import ConfigError

__all__ = ["ARCHS", "DEFAULT_WIDTH", "BasicBlock", "build", "cnn", "count_weights", "mlp",
           "model_family", "resnet18"]

#: Architectures :func:`build` and :func:`model_family` know.
ARCHS = ("mlp", "cnn")
#: Width of the largest (full) model of each architecture.
DEFAULT_WIDTH = {"mlp": 256, "cnn": 64}
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def mlp(
    width: int = 256,
    depth: int = 2,
    in_features: int = 40,
    classes: int = 10,
    seed: int | None = None,
) -> nn.Sequential:
    """Multilayer perceptron with ``depth`` hidden layers of ``width`` units and ReLU.

    Parameters
    ----------
    width : int, default 256
        Hidden units per layer.
    depth : int, default 2
        Number of hidden layers (``depth + 1`` Linear layers in all).
    in_features, classes : int
        Input length and number of classes (MNIST-1D: 40 and 10).
    seed : int, optional
        If given, initialize the weights from this seed without touching the global torch RNG.

    Examples
    --------
    >>> from weightscope.experiments.models import mlp
    >>> [tuple(m.weight.shape) for m in mlp(width=16, depth=1) if hasattr(m, "weight")]
    [(16, 40), (10, 16)]
    """
    _check_positive(width=width, depth=depth, in_features=in_features, classes=classes)
    with _seeded(seed):
        layers: list[nn.Module] = []
        fan_in = in_features
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(fan_in, classes))
        return nn.Sequential(*layers)


def cnn(
    width: int = 64,
    in_features: int = 40,
    classes: int = 10,
    seed: int | None = None,
) -> nn.Sequential:
    """Small 1D CNN: three conv layers of ``width`` channels and a Linear classifier.

    Input is ``(batch, in_features)`` (a channel dimension is added inside the model). Weight
    count: ``6 * width**2 + 5 * width + width * ceil(in_features / 4) * classes``.

    Parameters
    ----------
    width : int, default 64
        Channels of every conv layer.
    in_features, classes : int
        Input length and number of classes (MNIST-1D: 40 and 10).
    seed : int, optional
        If given, initialize the weights from this seed without touching the global torch RNG.

    Examples
    --------
    >>> import torch
    >>> from weightscope.experiments.models import cnn
    >>> tuple(cnn(width=16)(torch.zeros(2, 40)).shape)
    (2, 10)
    """
    _check_positive(width=width, in_features=in_features, classes=classes)
    length = math.ceil(math.ceil(in_features / 2) / 2)
    with _seeded(seed):
        return nn.Sequential(
            nn.Unflatten(1, (1, in_features)),
            nn.Conv1d(1, width, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(width * length, classes),
        )


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with BatchNorm, a 1x1 projection when the shape changes.

    Examples
    --------
    >>> import torch
    >>> from weightscope.experiments.models import BasicBlock
    >>> tuple(BasicBlock(8, 16, stride=2)(torch.zeros(1, 8, 8, 8)).shape)
    (1, 16, 4, 4)
    """

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


def resnet18(
    width: int = 64, classes: int = 10, stem: str = "cifar", seed: int | None = None
) -> nn.Sequential:
    """ResNet-18: a stem conv on 3 channels, 4 stages of 2 :class:`BasicBlock`, then ``fc``.

    Stage ``i`` has ``width * 2**i`` channels (torchvision's ResNet-18 at ``width=64``:
    11,172,032 conv and fc weights for 10 classes with the ImageNet stem, 11,164,352 with the
    CIFAR stem). Module names follow torchvision's (``conv1``, ``layer1.0.conv1`` ... ``fc``).

    Parameters
    ----------
    width : int, default 64
        Channels of the stem and the first stage.
    classes : int, default 10
        Outputs of ``fc``.
    stem : {"cifar", "imagenet"}, default "cifar"
        ``"cifar"``: a 3x3 stride-1 conv (for 32x32 images; the usual CIFAR ResNet-18);
        ``"imagenet"``: torchvision's 7x7 stride-2 conv and 3x3 max-pool (16x less compute
        on the same images).
    seed : int, optional
        If given, initialize the weights from this seed without touching the global torch RNG.

    Examples
    --------
    >>> import torch
    >>> from weightscope.experiments.models import count_weights, resnet18
    >>> tuple(resnet18(width=8)(torch.zeros(2, 3, 32, 32)).shape)
    (2, 10)
    >>> with torch.device("meta"):
    ...     count_weights(resnet18(stem="imagenet"))
    11172032
    """
    _check_positive(width=width, classes=classes)
    if stem not in ("cifar", "imagenet"):
        raise ConfigError(f"stem must be 'cifar' or 'imagenet'; got {stem!r}. Pass stem='cifar'.")
    with _seeded(seed):
        model = nn.Sequential()
        if stem == "cifar":
            model.add_module("conv1", nn.Conv2d(3, width, 3, 1, 1, bias=False))
        else:
            model.add_module("conv1", nn.Conv2d(3, width, 7, 2, 3, bias=False))
        model.add_module("bn1", nn.BatchNorm2d(width))
        model.add_module("relu", nn.ReLU())
        if stem == "imagenet":
            model.add_module("maxpool", nn.MaxPool2d(3, 2, 1))
        cin = width
        for stage in range(4):
            cout = width * 2**stage
            model.add_module(f"layer{stage + 1}", nn.Sequential(
                BasicBlock(cin, cout, 1 if stage == 0 else 2), BasicBlock(cout, cout, 1)))
            cin = cout
        model.add_module("pool", nn.AdaptiveAvgPool2d(1))
        model.add_module("flatten", nn.Flatten())
        model.add_module("fc", nn.Linear(cin, classes))
        return model


def build(arch: str, width: int | None = None, seed: int | None = None) -> nn.Module:
    """Build ``arch`` ("mlp" or "cnn") at ``width`` (default: the full model's width).

    Examples
    --------
    >>> from weightscope.experiments.models import build, count_weights
    >>> count_weights(build("cnn"))
    31296
    """
    _check_arch(arch)
    width = DEFAULT_WIDTH[arch] if width is None else width
    return mlp(width, seed=seed) if arch == "mlp" else cnn(width, seed=seed)


def count_weights(model: nn.Module) -> int:
    """Number of weight elements of the Linear/Conv layers of ``model`` (no biases, no norms).

    Examples
    --------
    >>> from weightscope.experiments.models import count_weights, mlp
    >>> count_weights(mlp(width=10, depth=1, in_features=4, classes=2))
    60
    """
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, _WEIGHTED))


def model_family(arch: str, n: int = 4, width: int | None = None, multiple_of: int = 8) -> tuple:
    """Widths whose weight counts are closest to ``linspace(1/4, 1, n)`` of the full model's.

    Widths are multiples of ``multiple_of``; the last is ``width`` itself (the full model).
    For the defaults: MLP widths (120, 176, 216, 256) with 20,400 / 39,776 / 57,456 / 78,336
    weights (0.26 / 0.51 / 0.73 / 1 of the largest); CNN widths (32, 40, 56, 64) with
    9,504 / 13,800 / 24,696 / 31,296 (0.30 / 0.44 / 0.79 / 1).

    Raises
    ------
    ConfigError
        If ``arch`` is unknown, ``n < 2``, or two target counts round to the same width.

    Examples
    --------
    >>> from weightscope.experiments.models import model_family
    >>> model_family("mlp")
    (120, 176, 216, 256)
    """
    _check_arch(arch)
    width = DEFAULT_WIDTH[arch] if width is None else width
    _check_positive(n=n, width=width, multiple_of=multiple_of)
    if n < 2:
        raise ConfigError(f"n must be >= 2 (a family spans 1/4..1); got n={n}. Pass e.g. n=4.")
    full = _weights_at(arch, width)
    candidates = range(multiple_of, width + 1, multiple_of)
    widths = []
    for i in range(n - 1):
        target = full * (0.25 + 0.75 * i / (n - 1))
        widths.append(min(candidates, key=lambda w: abs(_weights_at(arch, w) - target)))
    widths.append(width)
    if len(set(widths)) != n:
        raise ConfigError(
            f"model_family({arch!r}, n={n}, width={width}, multiple_of={multiple_of}) gives "
            f"repeated widths {tuple(widths)}. Pass a smaller n or multiple_of, or a larger width."
        )
    return tuple(widths)


def _weights_at(arch: str, width: int) -> int:
    with torch.device("meta"):
        return count_weights(build(arch, width))


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {ARCHS}; got {arch!r}. Pass arch='mlp'.")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        check_int(value, f"{name} must be an int >= 1", fix=f"Pass e.g. {name}=1.")
