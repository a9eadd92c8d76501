"""Baselines the paper compares SEARCH against (appendix D): Static, Lottery, SET, RigL.

In all of them non-participating weights get no gradient (``grad_scale = 0``) and are kept at
exactly zero after every optimizer step. REDUCE lives in :mod:`weightscope.sparse.reduce`.

Examples
--------
>>> SET(fraction=0.3, rewire_every=100).fraction_at(50, total_steps=100)
0.15
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from weightscope.errors import ConfigError, StructureError

from .methods import Method, _check_float, _check_int
from .state import LayerState
from .structures import Structure

__all__ = ["SET", "Lottery", "RigL", "Static"]


@dataclass(frozen=True)
class Static(Method):
    """STATIC: the mask is fixed at initialization (appendix D, the "sparsity at
    initialization" approximation of REDUCE).

    Parameters
    ----------
    init : {"magnitude", "random"}, default "magnitude"
        Mask from ``|w|`` at init, or from uniform random scores (any structure).
    seed : int, default 0
        Seed of the random mask.

    Examples
    --------
    >>> Static(init="random", seed=3).params()
    {'init': 'random', 'seed': 3}
    """

    init: str = "magnitude"
    seed: int = 0  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.init not in ("magnitude", "random"):
            raise ConfigError(
                f"Static init must be 'magnitude' or 'random'; got {self.init!r}. "
                "Pass init='magnitude'."
            )
        _check_int("seed", self.seed, 0)

    def initial_mask(
        self, name: str, module: nn.Module, structure: Structure, generator: torch.Generator
    ) -> torch.Tensor:
        w = module.weight.detach()
        if self.init == "magnitude":
            return structure.layer_mask(w, module)
        scores = torch.rand(w.shape, generator=generator, dtype=torch.float32)
        return structure.layer_mask(scores.to(w.device), module)


@dataclass(frozen=True, eq=False)
class Lottery(Method):
    """LOTTERY ticket: mask from a trained model, weights rewound (appendix D, [14, 54]).

    The mask of each layer is the structure's mask of ``|w|`` in ``trained`` (the final
    weights of a dense run). When ``rewind`` is given, the whole model is loaded from it (a
    dense state dict saved at step ``eps``, or at init for ``t = 0``) before masking; otherwise
    the model is used as it is. Non-participating weights are zero and get no updates.

    Workflow:

    1. train the dense model, saving ``rewind = copy.deepcopy(model.state_dict())`` at step
       ``eps`` (``eps = 0``: at init; the paper picks ``eps`` in ``[k/100, k/10]``);
    2. keep training to the end (``k`` steps); ``trained = model.state_dict()``;
    3. build a fresh model, ``sp = sparsify(fresh, method=Lottery(trained, rewind))`` and train
       it for ``k - eps`` steps with the same hyperparameters.

    Parameters
    ----------
    trained : mapping of str to Tensor
        State dict of the trained dense model (must hold ``<layer>.weight`` of every layer).
    rewind : mapping of str to Tensor, optional
        Dense state dict to rewind to (loaded with ``strict=True``).
    rewind_step : int, optional
        ``eps``, only recorded in ``Sparsifier.config``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightscope.sparse import sparsify
    >>> model = nn.Linear(16, 4)
    >>> trained = {"weight": torch.arange(64.0).view(4, 16), "bias": torch.zeros(4)}
    >>> sp = sparsify(model, 0.25, method=Lottery(trained, rewind=model.state_dict()))
    >>> bool(model.weight_mask[3].all()), int(model.weight_mask.sum())  # 48..63 are largest
    (True, 16)
    """

    trained: Mapping[str, torch.Tensor] = field(repr=False)
    rewind: Mapping[str, torch.Tensor] | None = field(default=None, repr=False)
    rewind_step: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.trained, Mapping):
            raise ConfigError(
                f"Lottery needs the trained model's state dict; got {type(self.trained).__name__}"
                ". Pass Lottery(trained=model.state_dict(), ...)."
            )
        if self.rewind is not None and not isinstance(self.rewind, Mapping):
            raise ConfigError(
                f"Lottery rewind must be a state dict or None; got {type(self.rewind).__name__}."
                " Pass rewind=copy.deepcopy(model.state_dict()) saved at step eps."
            )
        _check_int("rewind_step", self.rewind_step, 0, allow_none=True)

    def prepare(self, model: nn.Module, layers: list[tuple[str, nn.Module]]) -> None:
        for name, module in layers:
            key = f"{name}.weight" if name else "weight"
            w = self.trained.get(key)
            if not isinstance(w, torch.Tensor) or w.shape != module.weight.shape:
                got = tuple(w.shape) if isinstance(w, torch.Tensor) else None
                raise ConfigError(
                    f"Lottery's trained state dict must hold {key!r} of shape "
                    f"{tuple(module.weight.shape)}; got {got}. Pass the state dict of the same "
                    "architecture trained to completion."
                )
        if self.rewind is not None:
            model.load_state_dict(self.rewind, strict=True)

    def initial_mask(
        self, name: str, module: nn.Module, structure: Structure, generator: torch.Generator
    ) -> torch.Tensor:
        key = f"{name}.weight" if name else "weight"
        trained = self.trained[key].detach().to(module.weight.device)
        return structure.layer_mask(trained, module)

    def params(self) -> dict[str, Any]:
        return {"rewind": self.rewind is not None, "rewind_step": self.rewind_step}


@dataclass(frozen=True)
class _DropGrow(Method):
    """Shared schedule of SET and RigL (unstructured only)."""

    fraction: float = 0.3
    rewire_every: int = 100

    def __post_init__(self) -> None:
        if _check_float("fraction", self.fraction, 0.0, 1.0, hi_open=False) == 0.0:
            raise ConfigError(f"{self.name} fraction must be in (0, 1]; got 0.0. Pass e.g. "
                              "fraction=0.3 (use Static for a mask that never changes).")
        _check_int("rewire_every", self.rewire_every, 1)

    def check(self, structure: Structure, total_steps: int | None) -> None:
        if structure.name != "unstructured":
            raise StructureError(
                f"{self.name} rewires single weights, so it needs structure='unstructured'; "
                f"got {structure.name!r}. Use Search or Static for structured sparsity."
            )
        if total_steps is None:
            raise ConfigError(
                f"{self.name}'s rewired fraction decays linearly over training, so sparsify() "
                "needs total_steps; got None. Pass total_steps=<number of optimizer steps>."
            )

    def fraction_at(self, step: int, total_steps: int) -> float:
        """``f(s) = f0 * (1 - s / total_steps)``, clipped at 0 after the end."""
        return self.fraction * max(0.0, 1.0 - step / total_steps)

    def rewires(self, step: int, total_steps: int | None) -> bool:
        return step % self.rewire_every == 0

    def swap_fraction(self, step: int, total_steps: int | None) -> float | None:
        assert total_steps is not None  # checked in check()
        return self.fraction_at(step, total_steps)


@dataclass(frozen=True)
class SET(_DropGrow):
    """SET: every ``rewire_every`` steps drop the weakest fraction ``f(s)`` of participating
    weights (by ``|w|``) per layer and regrow as many at random (appendix D, [19]).

    ``f(s) = fraction * (1 - s / total_steps)`` decays linearly (needs ``total_steps``). Regrown
    weights are chosen uniformly among the weights that were non-participating before the
    rewire, with the sparsifier's seeded generator, and start at 0. Unstructured only.

    Examples
    --------
    >>> SET(fraction=0.5, rewire_every=10, seed=1).params()
    {'fraction': 0.5, 'rewire_every': 10, 'seed': 1}
    """

    seed: int = 0  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("seed", self.seed, 0)

    def grow_scores(self, state: LayerState, generator: torch.Generator) -> torch.Tensor:
        weight = state.module.weight
        scores = torch.rand(weight.shape, generator=generator, dtype=torch.float32)
        return scores.to(weight.device)


@dataclass(frozen=True)
class RigL(_DropGrow):
    """RigL: like :class:`SET` but regrow the non-participating weights with the largest
    ``|dense gradient|`` (appendix D, [21]).

    The dense gradient of every weight (participating or not) is stashed by the STE backward
    of the training step that precedes each rewire, although non-participating weights get no
    update. Unstructured only; needs ``total_steps``.

    Examples
    --------
    >>> RigL(fraction=0.3, rewire_every=100).fraction_at(100, total_steps=1000)
    0.27
    """

    def needs_dense_grad(self, step: int) -> bool:
        return step % self.rewire_every == 0

    def grow_scores(self, state: LayerState, generator: torch.Generator) -> torch.Tensor:
        return state.require_dense_grad().abs()
