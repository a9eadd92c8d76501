"""The typer ``app`` every command registers on, and the error handling they share.

Command modules import ``app`` and ``handle_errors`` from here; :mod:`weightscope_cli.app`
imports the command modules, so importing any one of them alone never makes a cycle.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from weightscope.errors import WeightscopeError, WeightscopeWarning

__all__ = ["app", "handle_errors"]

app = typer.Typer(
    name="weightscope",
    help="Record, analyze and sparsify how the weights of a PyTorch model move in training.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root() -> None:
    """Record, analyze and sparsify how the weights of a PyTorch model move in training."""


def handle_errors(func: F) -> F:
    """Map weightscope errors to an exit code and one line on stderr; show warnings plainly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("default", WeightscopeWarning)
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except WeightscopeError as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(err.exit_code) from None
            except (KeyboardInterrupt, typer.Exit, typer.Abort):
                raise
            except Exception as err:
                typer.echo(f"error: {type(err).__name__}: {err}", err=True)
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    typer.echo(f"warning: {message}", err=True)
