"""SEARCH, the paper's sparse-training method (Algorithm 1, appendices C and D).

A method is a frozen, validated dataclass that answers, after each optimizer step ``s = 1, 2,
...``, what Algorithm 1 does at that step: rewire the masks (and how), REGULARIZE, RESET, FIX.
:class:`Method` is the base that the baselines in :mod:`weightscope.sparse.baselines` share;
the :class:`~weightscope.sparse.Sparsifier` applies the answers to every layer, in the order
of Algorithm 1, with the in-place operations of :mod:`weightscope.sparse.ops`.

Examples
--------
>>> Search(rewire_every=1, fix_at=0.5, reset_every=1000).fix_step(total_steps=10_000)
5000
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from weightscope._validate import check_int, check_real, is_int, is_real
from weightscope.errors import ConfigError

from .state import LayerState
from .structures import Structure

__all__ = ["Method", "Search"]


def _check_int(name: str, value: object, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    hint = " or None" if allow_none else ""
    check_int(value, f"{name} must be an integer >= {minimum}{hint}", minimum=minimum,
              fix=f"Pass e.g. {name}={max(minimum, 1)}.")


def _check_float(name: str, value: object, lo: float, hi: float, hi_open: bool) -> float:
    bracket = ")" if hi_open else "]"
    return check_real(value, f"{name} must be a number in [{lo}, {hi}{bracket}", low=lo,
                      high=hi, high_open=hi_open, fix=f"Pass e.g. {name}={lo}.")


def _plain(value: object) -> object:
    """A numpy (or other) number the checks accepted as the plain int / float JSON takes."""
    if is_int(value):
        return int(value)  # type: ignore[call-overload]
    return float(value) if is_real(value) else value  # type: ignore[arg-type]


@dataclass(frozen=True)
class Method:
    """Base class of sparse-training methods (SEARCH and the baselines).

    Subclasses override the hooks below, which answer per step (rewire? REGULARIZE? RESET?
    FIX?) and per layer (growth scores); the defaults describe a method whose mask comes from
    ``|w|`` at initialization, never changes, and whose non-participating weights get no
    gradient (``grad_scale = 0``) and stay at zero.
    """

    #: Gradient scale ``s`` of non-participating weights in the STE backward.
    nonparticipating_grad_scale: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "after_step" in cls.__dict__:  # the hook of weightscope 0.1.0, never called now
            raise ConfigError(
                f"{cls.__name__} overrides after_step(), which the Sparsifier no longer calls. "
                "Override the hooks rewires(), swap_fraction(), grow_scores(), "
                "regularization(), resets() and zeroes_nonparticipating() instead."
            )

    @property
    def name(self) -> str:
        """The method's name as stored in ``Sparsifier.config`` (the class name)."""
        return type(self).__name__

    @property
    def seed(self) -> int | None:
        """Seed of the sparsifier's random generator, or None when the method draws none."""
        return None

    def check(self, structure: Structure, total_steps: int | None) -> None:
        """Raise ConfigError/StructureError when the method cannot run with these settings."""

    def prepare(self, model: nn.Module, layers: list[tuple[str, nn.Module]]) -> None:
        """Adjust the dense model before masks are computed (e.g. Lottery's rewind)."""

    def initial_mask(
        self, name: str, module: nn.Module, structure: Structure, generator: torch.Generator
    ) -> torch.Tensor:
        """Return the mask of ``module`` at sparsify time (default: from ``|w|`` at init)."""
        return structure.layer_mask(module.weight.detach(), module)

    def rewires(self, step: int, total_steps: int | None) -> bool:
        """Whether the masks are rewired after optimizer step ``step`` (Algorithm 1, step 1)."""
        return False

    def swap_fraction(self, step: int, total_steps: int | None) -> float | None:
        """How a rewire works: None recomputes each mask from ``|w|`` (the structure's mask);
        a fraction ``f`` drops ``round(f * participating)`` weights per layer and grows as many
        by :meth:`grow_scores` (SET, RigL)."""
        return None

    def grow_scores(self, state: LayerState, generator: torch.Generator) -> torch.Tensor:
        """Scores of one layer's weights for growth (the largest non-participating ones grow)."""
        raise NotImplementedError(f"{self.name} does not grow weights")

    def regularization(self, step: int) -> float:
        """REGULARIZE's ``beta`` after optimizer step ``step`` (0.0: off)."""
        return 0.0

    def resets(self, step: int) -> bool:
        """RESET: whether non-participating weights are set to zero after step ``step``."""
        return False

    def zeroes_nonparticipating(self, step: int, total_steps: int | None) -> bool:
        """FIX: whether non-participating weights are held at zero after step ``step``."""
        return True

    def needs_dense_grad(self, step: int) -> bool:
        """Whether the backward before optimizer step ``step`` must stash dense gradients."""
        return False

    def params(self) -> dict[str, Any]:
        """JSON-serializable parameters of the method, stored in ``Sparsifier.config``."""
        return {key: _plain(value) for key, value in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Search(Method):
    """SEARCH: magnitude rewiring with updates of non-participating weights (Algorithm 1).

    The top-``d`` weights by ``|w|`` of each layer participate (``p``, mask True) and the others
    do not (``n``). The forward uses ``p`` only; the backward updates every weight, ``n`` with
    its gradient scaled by ``grad_scale`` (paper section 3.2, Figure 3 middle). After optimizer
    step ``s``, in this order:

    1. rewire: recompute the masks from ``|w|`` if ``s % rewire_every == 0`` and ``s <= v``
       (section 3.1); with FIX at step ``v`` the masks are also recomputed at ``s == v``, for
       the last time, then frozen;
    2. REGULARIZE: ``n <- n - decay * n`` (section 3.3; ``decay = 0.0002`` as in appendix D);
    3. RESET: ``n <- 0`` if ``s % reset_every == 0`` (section 3.2, Figure 3 right; ~1k steps);
    4. FIX: ``n <- 0`` for every ``s >= v`` (section 3.3; ``v = 0.5`` of training is typical).

    ``n`` is the set of non-participating weights after step 1. Masks at
    :func:`~weightscope.sparse.sparsify` time come from ``|w|`` at initialization.
    Unstructured layers are rewired by an incremental exact top-k
    (:mod:`weightscope.sparse.topk`), which gives the kernel's mask at a fraction of its cost;
    other structures call their kernel.

    Parameters
    ----------
    rewire_every : int, default 1
        ``r``, optimizer steps between rewirings (frequent rewiring matters for ``d << 0.5``).
    grad_scale : float, default 1.0
        ``s``, scale of the gradients of non-participating weights (0 = no updates).
    fix_at : int, float or None, default None
        ``v``: an int step, or a float fraction in (0, 1] of ``total_steps``
        (``round(fix_at * total_steps)``, at least 1). None disables FIX.
    reset_every : int or None, default None
        ``z``, reset period of non-participating weights. None disables RESET.
    decay : float, default 0.0
        ``beta`` in [0, 1), REGULARIZE factor. 0 disables it.

    Examples
    --------
    >>> Search(fix_at=0.5).fix_step(total_steps=101)
    50
    >>> Search(reset_every=0)
    Traceback (most recent call last):
    ...
    weightscope.errors.ConfigError: reset_every must be an integer >= 1 or None; got 0. ...
    """

    rewire_every: int = 1
    grad_scale: float = 1.0
    fix_at: int | float | None = None
    reset_every: int | None = None
    decay: float = 0.0

    def __post_init__(self) -> None:
        _check_int("rewire_every", self.rewire_every, 1)
        _check_int("reset_every", self.reset_every, 1, allow_none=True)
        _check_float("grad_scale", self.grad_scale, 0.0, math.inf, hi_open=True)
        _check_float("decay", self.decay, 0.0, 1.0, hi_open=True)
        if isinstance(self.fix_at, float):
            _check_float("fix_at (a fraction of total_steps)", self.fix_at, 0.0, 1.0, False)
            if self.fix_at == 0.0:
                raise ConfigError("fix_at as a fraction must be in (0, 1]; got 0.0. Pass e.g. "
                                  "fix_at=0.5 (half of training) or an int step.")
        else:
            _check_int("fix_at", self.fix_at, 1, allow_none=True)

    @property
    def nonparticipating_grad_scale(self) -> float:  # type: ignore[override]
        return float(self.grad_scale)

    def fix_step(self, total_steps: int | None) -> int | None:
        """Resolve ``fix_at`` to the step ``v`` (None when FIX is off).

        Raises
        ------
        ConfigError
            A fraction without ``total_steps``, or a step beyond ``total_steps``.
        """
        if self.fix_at is None:
            return None
        if isinstance(self.fix_at, float):
            if total_steps is None:
                raise ConfigError(
                    f"fix_at={self.fix_at} is a fraction of training, so sparsify() needs "
                    "total_steps; got None. Pass total_steps=... or an int step as fix_at."
                )
            return max(1, round(self.fix_at * total_steps))
        if total_steps is not None and self.fix_at > total_steps:
            raise ConfigError(
                f"fix_at must be <= total_steps ({total_steps}); got {self.fix_at}. Pass a "
                "step within training or a fraction such as fix_at=0.5."
            )
        return int(self.fix_at)

    def check(self, structure: Structure, total_steps: int | None) -> None:
        self.fix_step(total_steps)

    def rewires(self, step: int, total_steps: int | None) -> bool:
        v = self.fix_step(total_steps)
        return (v is None or step <= v) and (step % self.rewire_every == 0 or step == v)

    def regularization(self, step: int) -> float:
        return float(self.decay)

    def resets(self, step: int) -> bool:
        return self.reset_every is not None and step % self.reset_every == 0

    def zeroes_nonparticipating(self, step: int, total_steps: int | None) -> bool:
        v = self.fix_step(total_steps)
        return v is not None and step >= v
