"""MNIST-1D, generated offline, as torch tensors.

The bundled task of :mod:`weightscope.experiments` is MNIST-1D (Greydanus, 2020): 1D signals of
length 40 in 10 classes, small enough to train a model family in seconds on a CPU. The data is
generated with :func:`mnist1d.data.make_dataset` (never downloaded). That function reseeds the
global ``random`` and ``numpy.random`` generators, so :func:`load_mnist1d` saves and restores
both around the call: loading the data never changes the caller's random state.

Examples
--------
>>> from weightscope.experiments.data import load_mnist1d
>>> data = load_mnist1d(num_samples=200)
>>> tuple(data.x_train.shape), tuple(data.x_test.shape), data.y_train.dtype
((160, 40), (40, 40), torch.int64)
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch

from weightscope._validate import check_int, is_int
from weightscope.errors import ConfigError

__all__ = ["MNIST1D", "load_mnist1d"]

#: Number of classes of MNIST-1D (samples are generated in equal numbers per class).
NUM_CLASSES = 10


@dataclass(frozen=True, eq=False)
class MNIST1D:
    """Train and test split of MNIST-1D as CPU tensors (shared by every caller: do not modify).

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        Signals, float32 of shape (n, 40), standardized over the whole dataset.
    y_train, y_test : torch.Tensor
        Labels in 0..9, int64 of shape (n,).
    seed : int
        Seed the data was generated with.

    Examples
    --------
    >>> from weightscope.experiments.data import load_mnist1d
    >>> load_mnist1d(num_samples=100).num_classes
    10
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    seed: int

    @property
    def num_features(self) -> int:
        """Length of one signal (40 for the package defaults)."""
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes (10)."""
        return NUM_CLASSES


def load_mnist1d(num_samples: int = 5000, seed: int = 42, train_split: float = 0.8) -> MNIST1D:
    """Generate MNIST-1D offline (cached per arguments) without touching global RNG state.

    Parameters
    ----------
    num_samples : int, default 5000
        Total number of samples, a multiple of 10 (equal count per class). The package default
        5000 gives 4000 train and 1000 test samples.
    seed : int, default 42
        Generation seed (42 is the package's, which reproduces the published dataset).
    train_split : float, default 0.8
        Fraction of the samples that go to the train split (the rest is the test split).

    Returns
    -------
    MNIST1D
        The cached dataset; the same object is returned for the same arguments.

    Raises
    ------
    ConfigError
        If ``num_samples`` is not a positive multiple of 10, or a split would be empty.

    Examples
    --------
    >>> from weightscope.experiments.data import load_mnist1d
    >>> load_mnist1d(num_samples=100) is load_mnist1d(num_samples=100)
    True
    """
    _validate(num_samples, seed, train_split)
    return _load(int(num_samples), int(seed), float(train_split))


def _validate(num_samples: int, seed: int, train_split: float) -> None:
    if not is_int(num_samples):
        raise ConfigError(
            f"num_samples must be an int; got {num_samples!r}. Pass e.g. num_samples=5000."
        )
    if num_samples < NUM_CLASSES or num_samples % NUM_CLASSES:
        raise ConfigError(
            f"num_samples must be a positive multiple of {NUM_CLASSES} (equal count per class); "
            f"got {num_samples}. Pass e.g. num_samples=5000."
        )
    check_int(seed, "seed must be an int >= 0", minimum=0, fix="Pass e.g. seed=42.")
    n_train = int(num_samples * train_split)
    if not 0 < n_train < num_samples:
        raise ConfigError(
            f"train_split must leave both splits non-empty; got train_split={train_split!r} "
            f"with num_samples={num_samples}. Pass a fraction such as train_split=0.8."
        )


@functools.lru_cache(maxsize=8)
def _load(num_samples: int, seed: int, train_split: float) -> MNIST1D:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, seed, train_split
    # make_dataset reseeds numpy's legacy global RNG: save and restore it (hence NPY002).
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        raw = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    return MNIST1D(
        x_train=_floats(raw["x"]),
        y_train=_labels(raw["y"]),
        x_test=_floats(raw["x_test"]),
        y_test=_labels(raw["y_test"]),
        seed=seed,
    )


def _floats(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _labels(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
