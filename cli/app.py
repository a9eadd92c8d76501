"""The ``weightscope`` command: ``analyze``, ``info``, ``verify``, ``demo`` and ``sweep``.

Exit codes: 0 ok, 2 bad input (one line on stderr naming the fix), 1 failure. No command
prints a traceback for an error weightscope raised on purpose.
"""

from __future__ import annotations

import sys

from . import analyze, demo, info, sweep, verify  # noqa: F401  (each registers its command on `app`)
from .base import app, handle_errors

__all__ = ["app", "handle_errors", "main"]


def main() -> None:
    """Entry point of the installed ``weightscope`` script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
