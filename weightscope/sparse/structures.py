"""Sparsity structures: parse ``structure=`` strings and build masks with the kernels.

=================  =============================================================  =========
structure          participating weights (per layer)                               density
=================  =============================================================  =========
``unstructured``   top ``k = max(1, round(d * n))`` by score                       any in (0, 1]
``block:<b>``      ``b x b`` blocks over (out, in) scored by their max score       any in (0, 1]
``2:4``            2 of every 4 consecutive weights along the input dimension     0.5 only
``2:4-2d``         every 4x4 block keeps 2 per row and 2 per column (exact)        0.5 only
=================  =============================================================  =========

The kernels rank by magnitude ``|x|``, so :meth:`Structure.mask` takes the weight itself for
magnitude rewiring, and any non-negative score (random numbers, gradient magnitudes) for the
other criteria. The masks come from :mod:`weightscope.kernels`, which raise
:class:`~weightscope.errors.StructureError` for shapes a structure cannot take.

Examples
--------
>>> s = parse_structure("block:4", 0.25)
>>> s.name, s.density, s.block
('block:4', 0.25, 4)
>>> parse_structure("2:4", None).density
0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from weightscope import kernels
from weightscope.errors import ConfigError, StructureError
from weightscope.kernels._common import check_density
from weightscope.kinds import kind_of

__all__ = ["DEFAULT_DENSITY", "FIXED_DENSITY", "STRUCTURES", "Structure", "check_density",
           "fixed_density", "parse_structure"]

#: The accepted spellings of ``structure=`` (``<b>`` is a positive block size).
STRUCTURES = ("unstructured", "block:<b>", "2:4", "2:4-2d")
#: Structures whose density is fixed by the pattern: 2 of every 4 weights participate.
FIXED_DENSITY = {"2:4": 0.5, "2:4-2d": 0.5}


class _DefaultDensity(float):
    """The float 0.25 that stands for "no density given" (a 2:4 structure takes its own)."""


#: ``sparsify``'s default density: 0.25, or the fixed density of a 2:4 structure.
DEFAULT_DENSITY = _DefaultDensity(0.25)


def fixed_density(structure: str) -> float | None:
    """The density ``structure`` fixes (0.5 for the 2:4 structures), or None if it is free.

    Examples
    --------
    >>> fixed_density("2:4-2d"), fixed_density("block:4")
    (0.5, None)
    """
    return FIXED_DENSITY.get(structure)


@dataclass(frozen=True)
class Structure:
    """A parsed sparsity structure with its density.

    Attributes
    ----------
    name : str
        Canonical spelling (``"unstructured"``, ``"block:4"``, ``"2:4"``, ``"2:4-2d"``).
    density : float
        Fraction of participating weights (0.5 for the 2:4 structures).
    block : int
        Block size for ``block:<b>``, else 0.
    """

    name: str
    density: float
    block: int = 0

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """Return the bool mask of the largest ``|scores|`` allowed by the structure.

        Examples
        --------
        >>> import torch
        >>> Structure("2:4", 0.5).mask(torch.tensor([[4.0, 1.0, 3.0, 2.0]]))
        tensor([[ True, False,  True, False]])
        """
        if self.name == "unstructured":
            return kernels.mask_topk(scores, self.density)
        if self.name == "2:4":
            return kernels.mask_24_1d(scores)
        if self.name == "2:4-2d":
            return kernels.mask_24_2d(scores)
        return kernels.mask_blocks(scores, self.block, self.density)

    def layer_mask(self, scores: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
        """:meth:`mask` of a score tensor laid out like ``module``'s weight.

        The kernels take ``(out, in, ...)``; a layer kind with another layout (Hugging Face
        ``Conv1D``'s ``(in, out)``) is masked through its canonical view and back, so 2:4
        groups run along its input dimension and 2:4-2d blocks cover (out, in).

        Examples
        --------
        >>> import torch
        >>> Structure("2:4", 0.5).layer_mask(torch.tensor([[4.0, 1.0, 3.0, 2.0]]),
        ...                                  torch.nn.Linear(4, 1))
        tensor([[ True, False,  True, False]])
        """
        kind = kind_of(module)
        if kind is None or kind.in_dim == 1:
            return self.mask(scores)
        view = kind.canonical(scores)
        try:
            return kind.from_canonical(self.mask(view))
        except StructureError as err:
            raise StructureError(
                f"{kind.name} weights are laid out {tuple(scores.shape)} with the input "
                f"dimension at dim {kind.in_dim}, so {self.name} masks the (out, in) view "
                f"{tuple(view.shape)}: {err}"
            ) from None


def parse_structure(structure: str, density: float | None) -> Structure:
    """Validate ``structure`` and ``density`` together and return a :class:`Structure`.

    Parameters
    ----------
    structure : str
        One of :data:`STRUCTURES`.
    density : float or None
        Fraction of participating weights in (0, 1]. The 2:4 structures fix it to 0.5
        (``None``, ``0.5`` or :data:`DEFAULT_DENSITY` accepted); the others require it.

    Raises
    ------
    StructureError
        Unknown structure or bad block size.
    ConfigError
        Density out of range, or another density than 0.5 for a 2:4 structure.

    Examples
    --------
    >>> parse_structure("unstructured", 0.1)
    Structure(name='unstructured', density=0.1, block=0)
    """
    if not isinstance(structure, str):
        raise StructureError(
            f"structure must be a string, one of {', '.join(STRUCTURES)}; got {structure!r}."
        )
    fixed = fixed_density(structure)
    if fixed is not None:
        if density is not None and density is not DEFAULT_DENSITY and density != fixed:
            raise ConfigError(
                f"structure {structure!r} keeps exactly half of the weights, so density must be "
                f"{fixed}; got {density!r}. Pass density={fixed} or density=None."
            )
        return Structure(structure, fixed)
    block = _parse_block(structure) if structure.startswith("block:") else 0
    if structure != "unstructured" and block == 0:
        raise StructureError(
            f"unknown structure {structure!r}. Use one of {', '.join(STRUCTURES)} "
            "(e.g. 'block:4')."
        )
    return Structure(structure, check_density(density), block)


def _parse_block(structure: str) -> int:
    text = structure.split(":", 1)[1]
    if not text.isdigit() or int(text) < 1:
        raise StructureError(
            f"block size in {structure!r} must be a positive integer. Use e.g. 'block:4'."
        )
    return int(text)
