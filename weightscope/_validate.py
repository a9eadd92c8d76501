"""The few argument checks every part of weightscope uses.

Each check returns the value as a plain Python number or raises ``error`` with a message that
names the rule, the value received and the fix. Callers keep their own wording of the rule and
the fix (tests pin those messages), naming arguments through :func:`weightscope.errors.hint`
and :func:`~weightscope.errors.arg` where a command line passes them (so its messages name
its options); this module owns the type logic, written once: a ``bool`` is never a number
here, numpy integers and floats are.

Examples
--------
>>> from weightscope._validate import check_int, is_int
>>> check_int(3, "every must be an int >= 1", fix="Pass e.g. every=10.")
3
>>> is_int(True)
False
"""

from __future__ import annotations

import math
import numbers

from .errors import ConfigError, WeightscopeError

__all__ = ["check_fraction", "check_int", "check_real", "is_int", "is_real"]


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy), and not a ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (int or float, Python or numpy), and not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value: object, rule: str, *, minimum: int = 1, fix: str = "",
              error: type[WeightscopeError] = ConfigError) -> int:
    """``value`` as an ``int`` if it is an integer >= ``minimum``, else ``error``.

    The message reads ``"{rule}; got {value!r}. {fix}"``.
    """
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise error(f"{rule}; got {value!r}. {fix}".rstrip())
    return int(value)  # type: ignore[arg-type]


def check_real(value: object, rule: str, *, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False, high_open: bool = False, fix: str = "",
               error: type[WeightscopeError] = ConfigError) -> float:
    """``value`` as a finite ``float`` within the bounds, else ``error`` (message as
    :func:`check_int`'s)."""
    ok = is_real(value) and math.isfinite(value)  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise error(f"{rule}; got {value!r}. {fix}".rstrip())
    return float(value)  # type: ignore[arg-type]


def check_fraction(value: object, rule: str, *, fix: str = "",
                   error: type[WeightscopeError] = ConfigError) -> float:
    """``value`` as a ``float`` in the open interval (0, 1), else ``error``."""
    return check_real(value, rule, low=0.0, high=1.0, low_open=True, high_open=True, fix=fix,
                      error=error)
