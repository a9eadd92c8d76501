"""The typer ``app`` every command registers on, and the error handling they share.

Command modules import ``app`` and ``handle_errors`` from here; :mod:`weightscope_cli.app`
imports the command modules, so importing any one of them alone never makes a cycle.
"""

from __future__ import annotations

import functools
import sys
import typing
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup
from typer.models import OptionInfo

from weightscope.errors import WeightscopeError, WeightscopeWarning, option_names

__all__ = ["app", "command_options", "handle_errors", "usage_line"]

class _OneLineErrors(TyperGroup):
    """The command group: a usage error (unknown command or option, a value that does not
    parse, a missing argument) is one line on stderr with exit code 2, like every other error,
    instead of click's usage text and error box."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as err:  # click's errors (typer vendors click)
            if type(err).__name__ == "NoArgsIsHelpError":
                err.show()  # type: ignore[attr-defined]  (the help, as before)
            else:
                typer.echo(f"error: {usage_line(err)}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            typer.echo("error: aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_line(err: typer.TyperException) -> str:
    """One line for a usage error: its message and where the command's options are listed.

    >>> usage_line(typer.TyperException("Missing argument 'RUN'."))
    "Missing argument 'RUN'. Run 'weightscope --help' for the usage."
    """
    ctx = getattr(err, "ctx", None)
    where = ctx.command_path if ctx is not None else "weightscope"
    message = _one_line(err.format_message()).rstrip(".")
    return f"{message}. Run '{where} --help' for the usage."


app = typer.Typer(
    cls=_OneLineErrors,
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
    """Map weightscope errors to an exit code and one line on stderr; show warnings plainly.

    Every error ends the command with exactly one line on stderr: a weightscope error exits
    with its ``exit_code`` (2 for bad input or a damaged store), any other exception with 1
    (a runtime failure) and its type named; a multi-line message is joined into one line.

    While the command runs, the fixes in weightscope's messages name its options (``--keep
    0.25``, not ``keep=0.25``: :func:`weightscope.errors.option_names`).
    """
    options = command_options(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(), option_names(options):
            warnings.simplefilter("default", WeightscopeWarning)
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except WeightscopeError as err:
                typer.echo(f"error: {_one_line(str(err))}", err=True)
                raise typer.Exit(err.exit_code) from None
            except (KeyboardInterrupt, typer.Exit, typer.Abort):
                raise
            except Exception as err:  # a runtime failure: exit 1, still one line
                typer.echo(f"error: {type(err).__name__}: {_one_line(str(err))}", err=True)
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def command_options(func: Callable[..., Any]) -> dict[str, str]:
    """Parameter name -> long option of a typer command (``keep`` -> ``--keep``, ``fmt`` ->
    ``--format``), read from its ``Annotated[..., typer.Option(...)]`` parameters."""
    options = {}
    for name, hint in typing.get_type_hints(func, include_extras=True).items():
        for info in getattr(hint, "__metadata__", ()):
            if isinstance(info, OptionInfo):
                # typer takes Option("--format") as a declaration when annotated
                decls = [info.default, *(info.param_decls or ())]
                named = [d for d in decls if isinstance(d, str) and d.startswith("--")]
                options[name] = named[0] if named else "--" + name.replace("_", "-")
    return options


def _one_line(message: str) -> str:
    """``message`` on one line (an error from a library may span several)."""
    return " ".join(message.split())


def _show_warning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    typer.echo(f"warning: {message}", err=True)
