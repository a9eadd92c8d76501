"""Callbacks for training frameworks (optional extras, imported on first use).

* :mod:`weightscope.integrations.lightning` -- ``WeightscopeCallback`` for Lightning
  (``pip install 'weightscope[lightning]'``).
* :mod:`weightscope.integrations.transformers` -- ``WeightscopeCallback`` for the Hugging Face
  ``Trainer`` (``pip install 'weightscope[hf]'``).

Importing this package imports neither framework; importing one of the modules without its
framework raises :class:`~weightscope.errors.MissingExtraError` naming the extra to install.

Examples
--------
>>> import weightscope.integrations as integrations
>>> integrations.lightning.WeightscopeCallback.__name__
'WeightscopeCallback'
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["lightning", "transformers"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
