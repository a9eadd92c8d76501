"""``weightscope verify RUN``: read every chunk of a run and list the damaged ones.

Every chunk of a run is checked as a reader would check it (checksum, exact length, codec
header, presence), then the run's metadata rules. The report goes to stdout; a damaged run
also ends with one ``error:`` line on stderr and exit code 2.
"""

from __future__ import annotations

from rich.console import Console

from weightscope.errors import CorruptRunError
from weightscope.store.verify import verify_run

from .base import app, handle_errors
from .info import inert
from .storage import RunArgument, StorageOption, parse_storage_options


@app.command()
@handle_errors
def verify(
    run: RunArgument,
    storage_option: StorageOption = None,
) -> None:
    """Read every chunk of a run and list the damaged ones (exit code 2 if any)."""
    report = verify_run(run, storage_options=parse_storage_options(storage_option))
    console = Console(highlight=False, soft_wrap=True)
    for line in str(report).splitlines():
        console.print(inert(line))
    if not report.ok:
        raise CorruptRunError(
            f"run '{run}' has {len(report.damaged)} damaged chunk(s) or metadata rule(s) "
            "(listed above); its damaged values cannot be read. Re-record the run, or restore "
            "it from a copy."
        )
