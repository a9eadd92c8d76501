"""One selector for ``params=`` / ``exclude=`` / ``layers=``: names, globs, or a predicate.

The Recorder selects parameters (names like ``"transformer.h.0.attn.c_attn.weight"``),
:func:`~weightscope.sparse.sparsify` selects modules (``"transformer.h.0.attn.c_attn"``); both
read their arguments through :class:`Selector`:

* a name, or a list of names: each an exact name or a glob (``*``, ``?``, ``[...]``, matched
  with :func:`fnmatch.fnmatchcase`); one that matches nothing is an error listing close names;
* a predicate ``f(name, module) -> bool``.

Examples
--------
>>> from torch import nn
>>> items = [("fc1", [("fc1", nn.Linear(2, 2))]), ("fc2", [("fc2", nn.Linear(2, 2))])]
>>> sorted(Selector.parse("fc*", "exclude").resolve(items, "modules"))
['fc1', 'fc2']
>>> Selector.parse(["fc3"], "exclude").resolve(items, "modules")
Traceback (most recent call last):
...
weightscope.errors.ConfigError: exclude names modules that the model does not have: ['fc3'].
Close names for 'fc3': 'fc2', 'fc1'.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from torch import nn

from weightscope.errors import ConfigError

__all__ = ["Predicate", "Selector", "SelectorArg", "close_names"]

Predicate = Callable[[str, nn.Module], bool]
#: What ``params=`` / ``exclude=`` / ``layers=`` accept.
SelectorArg = str | Sequence[str] | Predicate | None
#: One candidate: its key and the ``(name, module)`` pairs it is known by (aliases included).
Item = tuple[str, Sequence[tuple[str, nn.Module]]]


def close_names(wanted: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` names close to ``wanted`` (difflib), best first.

    Examples
    --------
    >>> close_names("lm_haed", ["lm_head", "transformer.wte"])
    ['lm_head']
    """
    names = list(names)
    close = difflib.get_close_matches(wanted, names, n=n, cutoff=0.6)
    tail = wanted.rsplit(".", 1)[-1]
    return close or [m for m in names if m.rsplit(".", 1)[-1] == tail][:n]


@dataclass(frozen=True)
class Selector:
    """A parsed selector argument (see the module).

    Attributes
    ----------
    arg : str
        The argument's name, for messages (``"params"``, ``"exclude"``...).
    patterns : tuple of str
        Names and globs (empty for a predicate).
    predicate : callable or None
        ``f(name, module) -> bool``.
    """

    arg: str
    patterns: tuple[str, ...] = ()
    predicate: Predicate | None = None

    @classmethod
    def parse(cls, spec: SelectorArg, arg: str) -> Selector | None:
        """``None`` for ``None``, else the :class:`Selector` of ``spec`` (checked)."""
        if spec is None:
            return None
        if callable(spec):
            return cls(arg, predicate=spec)
        patterns = (spec,) if isinstance(spec, str) else spec
        try:
            patterns = tuple(patterns)
        except TypeError:
            patterns = None  # type: ignore[assignment]
        if patterns is None or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(
                f"{arg} must be a name, a list of names or globs, or a predicate "
                f"f(name, module) -> bool; got {spec!r}. Pass e.g. {arg}=['fc', 'layer1.*']."
            )
        return cls(arg, patterns=patterns)

    def resolve(self, items: Iterable[Item], what: str,
                unknown: Callable[[list[str]], str] | None = None) -> set[str]:
        """Keys of the ``items`` this selector matches.

        A pattern matches an item when it matches one of the item's names; a predicate when
        it is true for one of its ``(name, module)`` pairs. A pattern that matches nothing
        raises :class:`~weightscope.errors.ConfigError`: ``unknown(patterns)`` words the
        message (default: "<arg> names <what> that the model does not have"), followed by the
        close names.
        """
        items = list(items)
        if self.predicate is not None:
            return {key for key, pairs in items if any(self.predicate(n, m) for n, m in pairs)}
        chosen: set[str] = set()
        missing = []
        for pattern in self.patterns:
            hits = {key for key, pairs in items if any(_matches(pattern, n) for n, _ in pairs)}
            if not hits:
                missing.append(pattern)
            chosen |= hits
        if missing:
            names = [n for _, pairs in items for n, _ in pairs]
            text = (unknown(missing) if unknown is not None else
                    f"{self.arg} names {what} that the model does not have: {missing!r}.")
            raise ConfigError(f"{text}{_hint(missing, names)}")
        return chosen

    def order(self, keys: Iterable[str], items: Iterable[Item]) -> list[str]:
        """``keys`` in the order of this selector's patterns (first match), then the items'."""
        keys = set(keys)
        ordered: list[str] = []
        for pattern in self.patterns:
            for key, pairs in items:
                if key in keys and key not in ordered and any(_matches(pattern, n)
                                                              for n, _ in pairs):
                    ordered.append(key)
        return ordered


def _matches(pattern: str, name: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern == name


def _hint(missing: list[str], names: list[str]) -> str:
    close = {p: close_names(p, names) for p in missing}
    found = {p: c for p, c in close.items() if c}
    if not found:
        return ""
    shown = "; ".join(f"for {p!r}: {', '.join(map(repr, c))}" for p, c in found.items())
    return f" Close names {shown}."
