"""weightscope: watch how every weight of a PyTorch model moves during training.

Three parts (see the README):

* **Record** -- :class:`Recorder` streams weight snapshots into a zarr v3 run store.
* **Analyze** -- :func:`open_run` gives a lazy ``xarray.Dataset``; :mod:`weightscope.analyze`
  and :mod:`weightscope.plot` turn it into the paper's Figure 1.
* **Train sparse** -- :mod:`weightscope.sparse` and :mod:`weightscope.kernels`.

Importing ``weightscope`` is cheap and does not import torch, zarr or matplotlib: every
submodule and name loads on first use.

Examples
--------
>>> import weightscope as ws
>>> callable(ws.open_run)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors, schema
from ._version import __version__ as __version__
from .errors import WeightscopeError

__all__ = [
    # offline side (torch-free)
    "analyze",
    "errors",
    "open_run",
    "plot",
    "RecorderConfig",
    "schema",
    "store",
    "WeightscopeError",
    # training side (imports torch)
    "Recorder",
    "experiments",
    "integrations",
    "kernels",
    "kinds",
    "register_layer",
    "sparse",
]

_LAZY_MODULES = {"analyze", "plot", "store", "kernels", "kinds", "sparse", "integrations",
                 "experiments", "record"}
_LAZY_NAMES = {"Recorder": "weightscope.record", "open_run": "weightscope.store",
               "RecorderConfig": "weightscope.config", "register_layer": "weightscope.kinds"}

if TYPE_CHECKING:  # pragma: no cover
    from . import analyze, experiments, integrations, kernels, kinds, plot, sparse, store
    from .kinds import register_layer
    from .record import Recorder
    from .store import open_run


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'weightscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
