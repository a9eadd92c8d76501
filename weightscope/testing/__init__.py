"""Small synthetic runs for tests and examples (like ``xarray.testing``); torch-free.

* :func:`synthetic_run` -- an in-memory ``xarray.Dataset`` laid out like
  :func:`weightscope.open_run` returns it (optionally dask-backed), from a ``(step, weight)``
  array of weight values;
* :func:`write_run` -- the same values written to a run store on disk through
  :class:`weightscope.store.RunWriter` (with per-iteration distances), so that
  ``open_run``, the analyzers and the command line read a real store;
* :func:`random_walks` -- deterministic weight trajectories to fill them with.

Examples
--------
>>> import numpy as np
>>> from weightscope.testing import random_walks, synthetic_run
>>> ds = synthetic_run(random_walks(5, 3), every=10)
>>> ds.sizes["step"], ds.sizes["weight"], ds.step.values.tolist()
(5, 3, [0, 10, 20, 30, 40])
"""

from .runs import random_walks, synthetic_run, write_run

__all__ = ["random_walks", "synthetic_run", "write_run"]
