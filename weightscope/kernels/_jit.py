"""Optional numba kernels: load a module of ``@njit`` functions, or None to fall back.

numba is the optional extra ``weightscope[fast]``. Modules of numba kernels (e.g.
:mod:`weightscope.sparse._band_kernels`) are imported through :func:`jit_module`, which
returns None when numba is missing or the module fails to load (an incompatible numpy, no
writable cache directory...): callers then use their pure-torch path, so training never fails
for want of a kernel.

Examples
--------
>>> jit_module("weightscope.no_such_module") is None
True
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType

__all__ = ["jit_module"]


@functools.cache
def jit_module(name: str) -> ModuleType | None:
    """Import the numba kernels module ``name`` once; None if numba or the module won't load.

    The first call imports numba (about half a second).
    """
    if importlib.util.find_spec("numba") is None:
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # numba present but unusable here: fall back, do not fail training
        return None
