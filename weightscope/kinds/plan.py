"""What a selection chose, and why: the table behind ``ws.sparse.plan`` and the Recorder's
:func:`~weightscope.record.selection.plan_params`.

Examples
--------
>>> plan = Plan("record", [Row("fc.weight", "Linear", (4, 8), True, "linear-like weight"),
...                        Row("emb.weight", "Embedding", (100, 4), False, "not linear-like")],
...             total=432)
>>> plan.chosen, round(plan.coverage, 3)
(['fc.weight'], 0.074)
>>> print(plan)  # doctest: +NORMALIZE_WHITESPACE
record plan: 1 of 2 entries, 32 of 432 parameters (7.4%)
  name        kind       shape     record  why
  fc.weight   Linear     (4, 8)    yes     linear-like weight
  emb.weight  Embedding  (100, 4)  no      not linear-like
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from weightscope.errors import WeightscopeWarning

__all__ = ["COVERAGE_MIN", "CoverageWarning", "Plan", "Row"]

#: A default selection holding less than this fraction of the model's parameters is warned.
COVERAGE_MIN = 0.5


class CoverageWarning(WeightscopeWarning):
    """A default selection holds less than :data:`COVERAGE_MIN` of the model's parameters."""


@dataclass(frozen=True)
class Row:
    """One layer (sparsify) or parameter (Recorder): chosen or not, and why."""

    name: str
    kind: str
    shape: tuple[int, ...]
    chosen: bool
    reason: str

    @property
    def numel(self) -> int:
        """Number of weights."""
        return math.prod(self.shape)


class Plan:
    """The rows of one selection, in model order, with a readable table as repr.

    Attributes
    ----------
    action : str
        ``"sparsify"`` or ``"record"``.
    rows : list of Row
        Every linear-like layer and embedding (sparsify) or parameter (Recorder).
    total : int
        The model's parameters (each shared parameter counted once).
    """

    def __init__(self, action: str, rows: list[Row], total: int) -> None:
        self.action, self.rows, self.total = action, list(rows), int(total)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def chosen(self) -> list[str]:
        """Names of the chosen rows."""
        return [r.name for r in self.rows if r.chosen]

    @property
    def skipped(self) -> list[Row]:
        """The rows left out."""
        return [r for r in self.rows if not r.chosen]

    @property
    def coverage(self) -> float:
        """Fraction of the model's parameters the chosen rows hold."""
        return sum(r.numel for r in self.rows if r.chosen) / max(self.total, 1)

    def warn_if_thin(self, what: str, stacklevel: int = 3) -> None:
        """Warn (:class:`CoverageWarning`) when the chosen rows hold < :data:`COVERAGE_MIN`
        of the model's parameters, naming the biggest rows left out."""
        if self.coverage >= COVERAGE_MIN:
            return
        big = sorted(self.skipped, key=lambda r: -r.numel)[:3]
        left = ", ".join(f"{r.name!r} ({r.numel:,}: {r.reason})" for r in big) or "none listed"
        warnings.warn(
            f"{what} covers {self.coverage:.1%} of the model's {self.total:,} parameters "
            f"(less than {COVERAGE_MIN:.0%}); the biggest left out: {left}. Check "
            f"{self.action} plan and pass params=/exclude= (or register_layer your layer "
            "type) if that is not what you want.",
            CoverageWarning, stacklevel=stacklevel)

    def __repr__(self) -> str:
        head = (f"{self.action} plan: {len(self.chosen)} of {len(self.rows)} entries, "
                f"{sum(r.numel for r in self.rows if r.chosen):,} of {self.total:,} parameters "
                f"({self.coverage:.1%})")
        table = [("name", "kind", "shape", self.action, "why")] + [
            (r.name, r.kind, str(r.shape), "yes" if r.chosen else "no", r.reason)
            for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(4)]
        lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(line[:4], widths, strict=True))
                 + "  " + line[4] for line in table]
        return "\n".join([head, *lines])
