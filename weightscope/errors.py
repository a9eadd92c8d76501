"""Exceptions and warnings raised by weightscope.

Every error a user can provoke is a :class:`WeightscopeError` whose message names the rule,
the value received and the fix. Subclasses also derive from the matching built-in exception
(``FileNotFoundError``, ``ValueError``...) so generic handlers keep working. The command line
maps :class:`WeightscopeError` to exit code ``exit_code`` (2 for bad input, 1 for failures)
and prints the message as one line on stderr.

Examples
--------
>>> from weightscope.errors import ConfigError
>>> try:
...     raise ConfigError("every must be >= 1; got 0. Pass every=1 or more.")
... except ValueError as err:
...     print(err)
every must be >= 1; got 0. Pass every=1 or more.

A fix names an argument through :func:`hint` (``keep=0.25``) or :func:`arg` (``keep``); under
:func:`option_names`, which the command line sets while a command runs, the same messages name
that command's options instead (``--keep 0.25``):

>>> hint("keep", 0.25), hint("scope", "param"), hint("param", None)
('keep=0.25', "scope='param'", 'param=None')
>>> with option_names({"keep": "--keep", "param": "--param"}):
...     hint("keep", 0.25), arg("param"), hint("param", None), hint("every", 10)
('--keep 0.25', '--param', 'omit --param', 'every=10')
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "AnalysisError",
    "ConfigError",
    "CorruptRunError",
    "DivergedRunWarning",
    "IncompleteRunWarning",
    "MissingExtraError",
    "NotARunError",
    "ResumeError",
    "RunExistsError",
    "RunLockedError",
    "RunNotFoundError",
    "SchemaError",
    "SchedulerUnreachableError",
    "ShapeChangedError",
    "SparseStateError",
    "StorageAccessError",
    "StorageError",
    "StructureError",
    "WeightscopeError",
    "WeightscopeWarning",
    "WriterError",
    "arg",
    "hint",
    "option_names",
]

#: Python argument name -> option of the command running now (set by :func:`option_names`).
_OPTIONS: ContextVar[Mapping[str, str] | None] = ContextVar("weightscope_option_names",
                                                            default=None)


@contextmanager
def option_names(options: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`hint` and :func:`arg` spell ``options``' names as options.

    ``options`` maps a Python argument name to its command-line option (``{"keep":
    "--keep"}``); a name it lacks keeps its Python spelling.
    """
    token = _OPTIONS.set(dict(options))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def arg(name: str) -> str:
    """How the interface in use names the argument ``name`` (``keep`` or ``--keep``)."""
    return (_OPTIONS.get() or {}).get(name, name)


def hint(name: str, value: object) -> str:
    """How to pass ``value`` as ``name`` in a fix: ``keep=0.25`` from Python, ``--keep 0.25``
    on the command line; ``None`` (leave the option out) reads ``omit --param`` there."""
    option = (_OPTIONS.get() or {}).get(name)
    if option is None:
        return f"{name}={value!r}"
    return f"omit {option}" if value is None else f"{option} {shlex.quote(str(value))}"


class WeightscopeError(Exception):
    """Base class of every error weightscope raises on purpose."""

    #: Exit code of the command line when this error reaches it (2 = bad input).
    exit_code: int = 2


class RunNotFoundError(WeightscopeError, FileNotFoundError):
    """The path given as a run does not exist."""


class NotARunError(WeightscopeError, ValueError):
    """The path exists but is not a weightscope run (not a zarr group with our format attr)."""


class SchemaError(WeightscopeError, ValueError):
    """A run's content does not follow the store format (or is of a newer format version)."""


class RunExistsError(WeightscopeError, FileExistsError):
    """A run already exists at the path and neither ``overwrite`` nor ``resume`` was given."""


class CorruptRunError(SchemaError):
    """A run's stored data is damaged: a checksum fails, a chunk is missing or cannot be
    decoded, or its metadata breaks a rule of the format (the message names the array and
    chunk, or the rule and the value)."""


class RunLockedError(WeightscopeError, RuntimeError):
    """Another live writer holds the run (one writer per run); the message names the holder."""


class ConfigError(WeightscopeError, ValueError):
    """An argument or configuration value is out of its allowed range."""


class StructureError(ConfigError):
    """A sparsity structure cannot be applied to a layer (or is unknown)."""


class ResumeError(WeightscopeError, ValueError):
    """A run cannot be resumed from the requested step or with the given model."""


class ShapeChangedError(WeightscopeError, RuntimeError):
    """A recorded parameter changed shape during recording."""


class SparseStateError(WeightscopeError, RuntimeError):
    """A sparse-training object was used out of order (e.g. ``step()`` before training)."""


class AnalysisError(WeightscopeError, ValueError):
    """A run cannot be analyzed as asked (too few snapshots, mixed architectures...)."""


class MissingExtraError(WeightscopeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class WriterError(WeightscopeError, RuntimeError):
    """The background writer failed (disk full, permission lost...); raised at the next call."""

    exit_code = 1


class StorageError(WeightscopeError, OSError):
    """The storage behind a run failed (unreachable endpoint, network error...)."""

    exit_code = 1


class StorageAccessError(StorageError, PermissionError):
    """The storage denied access to a run (missing or wrong credentials, no permission)."""

    exit_code = 2


class SchedulerUnreachableError(WeightscopeError, ConnectionError):
    """No dask scheduler answers at the address given (bad input: exit code 2)."""


class WeightscopeWarning(UserWarning):
    """Base class of weightscope's warnings (tests turn them into errors)."""


class IncompleteRunWarning(WeightscopeWarning):
    """A run was not closed (crashed or still being written); only its flushed prefix is used."""


class DivergedRunWarning(WeightscopeWarning):
    """A run diverged (its weights became NaN/Inf); only its snapshots up to the last
    all-finite one are analyzed."""
