"""What the training-framework callbacks share: optional imports and Recorder arguments.

Examples
--------
>>> check_recorder_kwargs({"every": 5, "sample": 0.1})
{'every': 5, 'sample': 0.1}
>>> check_recorder_kwargs({"resume": True})
Traceback (most recent call last):
...
weightscope.errors.ConfigError: the callback decides resume= itself: ...
>>> check_recorder_kwargs({"every": 0})
Traceback (most recent call last):
...
weightscope.errors.ConfigError: every must be an int >= 1 (snapshot interval in ...); got 0. ...
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

from ..errors import ConfigError, MissingExtraError

__all__ = ["check_recorder_kwargs", "require"]

#: Recorder arguments the callbacks set themselves (from the trainer).
_OWNED = {
    "model": "the callback records the module the trainer trains",
    "resume": "a fit resumed from a checkpoint continues the run at the checkpoint's step",
    "rank": "only the trainer's global rank 0 records",
}


def require(module: str, extra: str, framework: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Examples
    --------
    >>> require("math", "none", "Python").pi > 3
    True
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"weightscope's {framework} callback needs the '{module.split('.')[0]}' package, "
            f"which cannot be imported ({err}). Install it with: pip install "
            f"'weightscope[{extra}]'"
        ) from err


def check_recorder_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Validate the ``**recorder_kwargs`` of a callback: their names, and the settings'
    values (:class:`~weightscope.config.RecorderConfig`; the rest at fit start)."""
    from ..config import RecorderConfig
    from ..record import Recorder  # torch is a hard dependency of the callbacks anyway

    allowed = set(inspect.signature(Recorder).parameters) - {"path", *_OWNED}
    for name in kwargs:
        if name in _OWNED:
            raise ConfigError(
                f"the callback decides {name}= itself: {_OWNED[name]}. Remove {name}= from "
                "the callback's arguments."
            )
        if name not in allowed:
            raise ConfigError(
                f"{name!r} is not an argument of weightscope.Recorder; the callback accepts "
                f"{sorted(allowed)}."
            )
    RecorderConfig(**{k: v for k, v in kwargs.items() if k in RecorderConfig.field_names()})
    return dict(kwargs)
