"""``--scheduler``: run the analysis of a command on an existing dask cluster.

Every analyzer builds ordinary dask graphs of module-level functions over the run's stored
chunks, so it runs unchanged on a ``dask.distributed`` cluster: while a ``Client`` is open it
is dask's default scheduler and each ``compute`` goes to the cluster's workers, which read the
run's chunks themselves. Workers lost in the middle are replaced and their tasks recomputed by
the scheduler; results are the same numbers as a local run (bit for bit: each block is
computed by the same code on the same bytes, and the reductions run in the same order).

Running on a real cluster
-------------------------
1. Start a scheduler and workers where the run's storage is reachable, e.g.
   ``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786 --nthreads 1`` on each
   worker machine (or dask-jobqueue, dask-kubernetes, Coiled...). Workers need weightscope
   installed (``pip install "weightscope[cluster,s3]"``; torch is not needed to analyze).
2. Keep the run where every worker can read it: an object store URL (``s3://bucket/run.zarr``,
   with credentials and ``AWS_ENDPOINT_URL`` set in the workers' environment too) or an
   absolute path on a shared filesystem. ``memory://`` runs exist in one process only.
3. ``weightscope analyze s3://bucket/run.zarr --scheduler tcp://HOST:8786`` (or set
   ``DASK_SCHEDULER_ADDRESS``). Each worker thread holds about ``3 * READ_BLOCK_BYTES`` (see
   :mod:`weightscope.store.reader`); give workers one thread per ~256 MB of memory.

Examples
--------
>>> with scheduler_client(None) as client:   # no address: the local threaded scheduler
...     client is None
True
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from weightscope.errors import ConfigError, MissingExtraError, SchedulerUnreachableError

__all__ = ["CONNECT_TIMEOUT", "SchedulerUnreachableError", "check_cluster_paths",
           "scheduler_client"]

#: Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT = 5.0


@contextmanager
def scheduler_client(address: str | None, timeout: float = CONNECT_TIMEOUT
                     ) -> Iterator[Any | None]:
    """A ``dask.distributed.Client`` connected to ``address`` for the duration of a block.

    Parameters
    ----------
    address : str or None
        Scheduler address (``tcp://host:8786``); ``None`` or ``""`` yields ``None`` and dask
        keeps its local threaded scheduler.
    timeout : float
        Seconds to wait for the scheduler.

    Raises
    ------
    SchedulerUnreachableError
        Nothing that speaks dask answers at ``address`` within ``timeout``.
    MissingExtraError
        ``dask.distributed`` is not installed.
    """
    if not address:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise MissingExtraError(
            "--scheduler needs dask.distributed, which is not installed. Install the extra: "
            "pip install 'weightscope[cluster]'."
        ) from None
    _probe(address, timeout)
    try:
        client = Client(address, timeout=timeout, set_as_default=True)
    except Exception as err:
        raise _unreachable(address, timeout, err) from None
    with client:
        yield client


def _probe(address: str, timeout: float) -> None:
    """Open and close one connection to the scheduler (fails fast, without a Client)."""
    from distributed.comm import connect

    async def attempt() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(attempt(), timeout + 1.0))
    except Exception as err:
        raise _unreachable(address, timeout, err) from None


def _unreachable(address: str, timeout: float, err: BaseException) -> SchedulerUnreachableError:
    reason = " ".join(str(err).split())[:160] or type(err).__name__
    return SchedulerUnreachableError(
        f"no dask scheduler answers at '{address}' within {timeout:g} s ({reason}). Start one "
        "(`dask scheduler`) and pass its address, e.g. --scheduler tcp://HOST:8786, or leave "
        "--scheduler and DASK_SCHEDULER_ADDRESS unset to analyze locally."
    )


def check_cluster_paths(runs: list[str]) -> None:
    """``memory://`` runs live in this process only: a cluster's workers cannot read them.

    Examples
    --------
    >>> check_cluster_paths(["s3://b/run.zarr", "/shared/run.zarr"])
    >>> check_cluster_paths(["memory://run.zarr"])
    Traceback (most recent call last):
    ...
    weightscope.errors.ConfigError: run 'memory://run.zarr' is in this process's memory...
    """
    for run in runs:
        if str(run).startswith("memory://"):
            raise ConfigError(
                f"run {run!r} is in this process's memory, which the workers of a dask cluster "
                "cannot read; got --scheduler. Analyze it without --scheduler, or store it on "
                "shared storage (s3://..., a shared filesystem)."
            )
