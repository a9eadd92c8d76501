"""REDUCE baseline: a narrower dense model with as many weights as a sparse one (appendix D).

The paper trains smaller models "by reducing the widths of neural layers by a factor of 1/d
to match the number of weights used in sparse models". :func:`reduce_width` finds that width
multiplier for any model builder.

Examples
--------
>>> from torch import nn
>>> def build(mult: float) -> nn.Module:
...     width = max(1, round(256 * mult))
...     return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
>>> model, mult = reduce_width(build, density=0.25)
>>> model[0].out_features, round(mult, 2)
(64, 0.25)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from weightscope.errors import ConfigError
from weightscope.kernels._common import check_density

from .selection import ExcludeArg, is_candidate, select_layers

__all__ = ["count_sparsifiable", "reduce_width"]


def count_sparsifiable(model: nn.Module, names: Sequence[str]) -> int:
    """Number of weights in the Linear/Conv modules ``names`` of ``model``.

    Examples
    --------
    >>> from torch import nn
    >>> count_sparsifiable(nn.Sequential(nn.Linear(16, 4)), ["0"])
    64
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules or not is_candidate(modules[n])]
    if missing:
        raise ConfigError(
            f"build(width_multiplier) must keep the layer names of build(1.0); layers "
            f"{missing!r} are missing or no longer Linear/Conv. Scale widths, not structure."
        )
    return sum(modules[n].weight.numel() for n in names)


def reduce_width(
    build: Callable[[float], nn.Module],
    density: float,
    *,
    exclude: ExcludeArg = None,
    low: float = 1e-3,
    iterations: int = 40,
) -> tuple[nn.Module, float]:
    """Find the width multiplier whose model has ``density`` times the sparsifiable weights.

    The layers counted are those the default selection of
    :func:`~weightscope.sparse.sparsify` (or ``exclude``) picks in ``build(1.0)``, looked up by
    name in each narrower model. The multiplier is searched by bisection on ``[low, 1]``
    (models are built on the ``meta`` device, so the search allocates no weights) assuming the
    count grows with the multiplier; the best match seen is returned, built normally.

    Parameters
    ----------
    build : callable
        ``build(width_multiplier: float) -> nn.Module``; it rounds widths itself.
    density : float
        Target fraction ``d`` in (0, 1] of the full model's sparsifiable weights.
    exclude : optional
        Same as ``sparsify(exclude=...)``, for choosing the counted layers.
    low : float, default 1e-3
        Smallest multiplier tried.
    iterations : int, default 40
        Bisection steps.

    Returns
    -------
    (nn.Module, float)
        The narrower model (built by ``build(multiplier)``) and its multiplier.

    Raises
    ------
    ConfigError
        Bad density/low/iterations, no sparsifiable layer, or layer names that change.
    """
    density = check_density(density)
    if not 0.0 < low < 1.0 or iterations < 1:
        raise ConfigError(
            f"reduce_width needs 0 < low < 1 and iterations >= 1; got low={low!r}, "
            f"iterations={iterations!r}. Keep the defaults low=1e-3, iterations=40."
        )
    with torch.device("meta"):
        full = build(1.0)
    names = [name for name, _ in select_layers(full, exclude, None)]
    if not names:
        raise ConfigError("build(1.0) has no sparsifiable Linear/Conv layer to count; "
                          "check exclude= or the builder.")
    target = density * count_sparsifiable(full, names)

    def error(mult: float) -> float:
        with torch.device("meta"):
            return count_sparsifiable(build(mult), names) - target

    best, lo, hi = (1.0, abs(error(1.0))), low, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        err = error(mid)
        if abs(err) < best[1] or (abs(err) == best[1] and mid < best[0]):
            best = (mid, abs(err))
        lo, hi = (mid, hi) if err < 0 else (lo, mid)
    return build(best[0]), best[0]
