"""Thread pools shared within a process, made on first use.

A pool belongs to the process that made it: a child forked from it (a DataLoader worker, a
``multiprocessing`` fork) gets its own on first use instead of the parent's dead threads.

Examples
--------
>>> thread_pool("doc", 1).submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["thread_pool"]

_POOLS: dict[tuple[int, str], ThreadPoolExecutor] = {}


def thread_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The pool ``name`` of this process, with ``workers`` threads named ``weightscope-<name>``."""
    key = (os.getpid(), name)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix=f"weightscope-{name}")
    return _POOLS[key]
