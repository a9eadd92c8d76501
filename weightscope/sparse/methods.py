"""SEARCH, the paper's sparse-training method (Algorithm 1, appendices C and D).

A method is a frozen, validated dataclass that says how masks and non-participating weights
``n`` evolve after each optimizer step ``s = 1, 2, ...``. :class:`Method` is the base that the
baselines in :mod:`weightscope.sparse.baselines` share; :func:`~weightscope.sparse.sparsify`
drives it through a :class:`~weightscope.sparse.Sparsifier`.

The in-place operations on a masked layer are small functions here, usable on their own.

Examples
--------
>>> Search(rewire_every=1, fix_at=0.5, reset_every=1000).fix_step(total_steps=10_000)
5000
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from weightscope._pools import thread_pool
from weightscope.errors import ConfigError

from .band_topk import BandTopk, numba_available
from .fast_topk import TopkTracker
from .layers import cache_masked_product, float_mask, mark_float_mask_synced
from .structures import Structure

if TYPE_CHECKING:  # pragma: no cover
    from .sparsifier import Sparsifier

#: Layers of at least this many weights are rewired two at a time (see rewire_layers).
PARALLEL_MIN_NUMEL = 1 << 18

__all__ = [
    "PARALLEL_MIN_NUMEL",
    "Method",
    "Search",
    "regularize_nonparticipating",
    "rewire_by_magnitude",
    "rewire_layers",
    "zero_nonparticipating",
]


def rewire_by_magnitude(
    module: nn.Module, structure: Structure, tracker: BandTopk | TopkTracker | None = None
) -> None:
    """Set ``module.weight_mask`` in place to the structure's mask of ``|weight|``.

    With a :class:`~weightscope.sparse.band_topk.BandTopk` or
    :class:`~weightscope.sparse.fast_topk.TopkTracker` (unstructured only) the same mask is
    computed incrementally, which is much cheaper when rewiring every step.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from weightscope.sparse.layers import to_sparse
    >>> lin = nn.Linear(4, 1, bias=False)
    >>> to_sparse(lin, torch.ones(1, 4, dtype=torch.bool), grad_scale=1.0)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.1, -3.0, 0.2, 2.0]]))
    >>> rewire_by_magnitude(lin, Structure("unstructured", 0.5))
    >>> lin.weight_mask
    tensor([[False,  True, False,  True]])
    """
    with torch.no_grad():
        if tracker is None:
            module.weight_mask.copy_(structure.mask(module.weight.detach()))
            return
        product = tracker.update(module.weight, module.weight_mask, float_mask(module))
        mark_float_mask_synced(module)
        if product is not None:
            cache_masked_product(module, product)


def rewire_layers(
    modules: list[nn.Module], structure: Structure,
    tracker_of: Callable[[nn.Module], BandTopk | TopkTracker | None],
) -> None:
    """:func:`rewire_by_magnitude` every layer, two at a time where that pays.

    When at least two layers of :data:`PARALLEL_MIN_NUMEL` weights or more are rewired by
    the numba kernels on the CPU (which release the GIL), the layers are split into two groups
    of about equal size and one group is rewired on a helper thread while this thread does the
    other. Each layer's result is the same as alone (layers share nothing).
    """
    jobs = [(module, tracker_of(module)) for module in modules]
    big = [(m, t) for m, t in jobs if isinstance(t, BandTopk) and t.n >= PARALLEL_MIN_NUMEL
           and m.weight.device.type == "cpu" and numba_available()]
    if len(big) < 2:
        _rewire_jobs(jobs, structure)
        return
    helper: list[tuple[nn.Module, BandTopk | TopkTracker | None]] = []
    mine: list[tuple[nn.Module, BandTopk | TopkTracker | None]] = []
    sizes = [0, 0]
    for job in sorted(jobs, key=lambda j: -j[0].weight.numel()):  # greedy: largest first
        side = int(sizes[1] < sizes[0])
        (helper, mine)[side].append(job)
        sizes[side] += job[0].weight.numel()
    future = thread_pool("rewire", 1).submit(_rewire_jobs, helper, structure)
    try:
        _rewire_jobs(mine, structure)
    finally:
        future.result()


def _rewire_jobs(jobs: list[tuple[nn.Module, BandTopk | TopkTracker | None]],
                 structure: Structure) -> None:
    for module, tracker in jobs:
        rewire_by_magnitude(module, structure, tracker)


def zero_nonparticipating(module: nn.Module) -> None:
    """Set the non-participating weights (mask False) of ``module`` to zero.

    Implemented as ``w *= m`` with the float mask (several times faster than ``masked_fill``
    on CPU): finite weights become exactly ``±0``; a non-finite one would become NaN.
    """
    with torch.no_grad():
        module.weight.mul_(float_mask(module))


def regularize_nonparticipating(module: nn.Module, beta: float) -> None:
    """REGULARIZE: ``n <- n - beta * n`` on non-participating weights; ``p`` is untouched."""
    with torch.no_grad():
        w = module.weight
        minus_n = (w * float_mask(module)).sub_(w)  # 0 on p, -n on n (exact)
        w.add_(minus_n, alpha=beta)


def _check_int(name: str, value: object, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        hint = " or None" if allow_none else ""
        raise ConfigError(
            f"{name} must be an integer >= {minimum}{hint}; got {value!r}. "
            f"Pass e.g. {name}={max(minimum, 1)}."
        )


def _check_float(name: str, value: object, lo: float, hi: float, hi_open: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi):
        return float(value)
    bracket = ")" if hi_open else "]"
    raise ConfigError(
        f"{name} must be a number in [{lo}, {hi}{bracket}; got {value!r}. "
        f"Pass e.g. {name}={lo}."
    )


@dataclass(frozen=True)
class Method:
    """Base class of sparse-training methods (SEARCH and the baselines).

    Subclasses override the hooks below; the defaults describe a method whose mask comes
    from ``|w|`` at initialization and whose non-participating weights get no gradient
    (``grad_scale = 0``) and stay at zero.
    """

    #: Gradient scale ``s`` of non-participating weights in the STE backward.
    nonparticipating_grad_scale: ClassVar[float] = 0.0

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
        return structure.mask(module.weight.detach())

    def zeroes_nonparticipating(self, step: int, total_steps: int | None) -> bool:
        """Whether non-participating weights are held at zero after optimizer step ``step``."""
        return True

    def needs_dense_grad(self, step: int) -> bool:
        """Whether the backward before optimizer step ``step`` must stash dense gradients."""
        return False

    def after_step(self, sp: Sparsifier, step: int) -> None:
        """Update masks and weights after optimizer step ``step`` (default: keep n at 0)."""
        for module in sp.modules:
            zero_nonparticipating(module)

    def params(self) -> dict[str, Any]:
        """JSON-serializable parameters of the method, stored in ``Sparsifier.config``."""
        return dataclasses.asdict(self)


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
    (:mod:`weightscope.sparse.band_topk` with numba, else :mod:`weightscope.sparse.fast_topk`
    for layers of at least ``TRACK_MIN_NUMEL`` weights), which gives the kernel's mask at a
    fraction of its cost; other structures call their kernel.

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

    def zeroes_nonparticipating(self, step: int, total_steps: int | None) -> bool:
        v = self.fix_step(total_steps)
        return v is not None and step >= v

    def after_step(self, sp: Sparsifier, step: int) -> None:
        v = self.fix_step(sp.total_steps)
        if (v is None or step <= v) and (step % self.rewire_every == 0 or step == v):
            rewire_layers(sp.modules, sp.structure, sp.topk_tracker)
        if self.decay > 0.0:
            for module in sp.modules:
                regularize_nonparticipating(module, self.decay)
        reset = self.reset_every is not None and step % self.reset_every == 0
        if reset or (v is not None and step >= v):
            for module in sp.modules:
                zero_nonparticipating(module)
