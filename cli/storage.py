"""``--storage-option KEY=VALUE``: fsspec options for runs given as URLs.

Credentials and endpoints normally come from the environment, as for every fsspec/boto tool
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` for an
S3-compatible server such as MinIO; ``GOOGLE_APPLICATION_CREDENTIALS`` for ``gs://``). The
option covers the rest: each ``KEY=VALUE`` becomes one entry of ``storage_options``; a dotted
key nests (``client_kwargs.endpoint_url=http://localhost:9000``) and a value that reads as
JSON is decoded (``anon=true``, ``default_block_size=1048576``), else it stays a string.

Examples
--------
>>> parse_storage_options(["anon=true", "client_kwargs.endpoint_url=http://localhost:9000"])
{'anon': True, 'client_kwargs': {'endpoint_url': 'http://localhost:9000'}}
>>> parse_storage_options([]) is None
True
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from weightscope.errors import ConfigError

__all__ = ["HELP", "RunArgument", "StorageOption", "parse_storage_options", "parse_value"]

HELP = ("fsspec option for URL runs, KEY=VALUE (repeatable; dotted keys nest, JSON values are "
        "decoded), e.g. client_kwargs.endpoint_url=http://localhost:9000 or anon=true.")

#: The ``RUN`` argument of the commands that read one run.
RunArgument = Annotated[str, typer.Argument(help="A run directory (run.zarr) or URL.")]
#: The repeatable ``--storage-option KEY=VALUE`` of every command that reads runs.
StorageOption = Annotated[list[str] | None, typer.Option(help=HELP)]


def parse_storage_options(items: list[str] | None) -> dict[str, Any] | None:
    """``storage_options`` from ``KEY=VALUE`` strings (``None`` when there are none)."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(
                f"--storage-option must be KEY=VALUE with a non-empty key; got {item!r}. "
                "Pass e.g. --storage-option anon=true."
            )
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--storage-option {item!r} nests under {part!r}, which is "
                                  "already set to a value; give each key once.")
            node = child
        node[parts[-1]] = parse_value(raw)
    return out


def parse_value(raw: str) -> Any:
    """A command-line ``VALUE``: decoded as JSON when it is JSON (``true``, ``3``...), else text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw
