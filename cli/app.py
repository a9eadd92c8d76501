"""The ``weightscope`` command: ``analyze``, ``info`` and ``demo``.

Exit codes: 0 ok, 2 bad input (one line on stderr naming the fix), 1 failure. No command
prints a traceback for an error weightscope raised on purpose.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from weightscope.errors import WeightscopeError, WeightscopeWarning

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


def _register() -> None:
    from . import analyze, demo, info, sweep  # noqa: F401  (commands register themselves on `app`)


def main() -> None:
    """Entry point of the installed ``weightscope`` script."""
    _register()
    app()


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
