"""How a :class:`~weightscope.Recorder` records: :class:`RecorderConfig`, checked once.

The Recorder, the training-framework callbacks and the analyzers all go through this class:
the rules of the settings live here and nowhere else. A run stores the settings that shape its
content (``every``, ``sample``) in its attributes (:meth:`RecorderConfig.to_dict`), and
:meth:`RecorderConfig.from_dict` reads them back. This module does not import torch, so the
offline side can read a run's settings.

Examples
--------
>>> from weightscope.config import RecorderConfig
>>> config = RecorderConfig(every=5, sample=0.1)
>>> config.to_dict()
{'every': 5, 'sample': 0.1}
>>> RecorderConfig.from_dict({"every": 5, "sample": 0.1, "complete": True}) == config
True
>>> RecorderConfig(every=0)
Traceback (most recent call last):
...
weightscope.errors.ConfigError: every must be an int >= 1 (snapshot interval in ...); got 0. ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import schema
from ._validate import check_int, check_real, is_int, is_real
from .errors import ConfigError, WeightscopeError
from .store.codecs import DEFAULT_COMPRESSION, weight_compressors

__all__ = ["RecorderConfig", "Sample", "check_sample"]

#: ``sample=``: ``None`` (every element), a count per parameter, or a fraction in (0, 1].
Sample = int | float | None

#: The fields a run stores in its attributes, by attribute name.
_STORED = {schema.EVERY: "every", schema.SAMPLE: "sample"}


@dataclass(frozen=True)
class RecorderConfig:
    """The settings of a :class:`~weightscope.Recorder`, validated at construction.

    The fields are the Recorder's arguments of the same names; values are normalized to plain
    Python types (``every`` an ``int``, ``flush_seconds`` a ``float``...).

    Parameters
    ----------
    every : int, default 10
        Snapshot interval in optimizer steps.
    sample : None, int or float, optional
        ``None`` = all elements; ``n`` = that many elements per parameter, uniformly at
        random with a seed from the parameter's name; ``f`` in (0, 1] = that fraction.
    track_distance : bool, default True
        Measure ``sum |w(s) - w(s-1)|`` over all elements of each recorded parameter at
        every step (of ``mask * w`` for sparse layers).
    flush_seconds : float, default 10.0
        Age of the oldest buffered snapshot at which a flush starts; it is on disk after
        that plus the time to write and commit it.
    buffer_mb : float, default 256
        Host memory for buffered snapshots (two chunk rows); larger runs get shorter chunks.
    compression : {"none", "lz4", "zstd"}, default "none"
        Codec of stored weights (float32 weights compress little; see
        ``weightscope.store.codecs``).
    overwrite : bool, default False
        Replace an existing run at the Recorder's ``path``.
    resume : bool or int, default False
        Continue an existing run: ``True`` from its last usable snapshot, or from the
        snapshot at the given step. The model must hold that snapshot's weights.

    Raises
    ------
    ConfigError
        A value out of its range, or both ``overwrite`` and ``resume`` set.
    """

    every: int = 10
    sample: Sample = None
    track_distance: bool = True
    flush_seconds: float = 10.0
    buffer_mb: float = 256.0
    compression: str = DEFAULT_COMPRESSION
    overwrite: bool = False
    resume: bool | int = False

    def __post_init__(self) -> None:
        normalized = {
            "every": _check_every(self.every),
            "sample": check_sample(self.sample),
            "track_distance": bool(self.track_distance),
            "flush_seconds": check_real(self.flush_seconds, "flush_seconds must be > 0",
                                        low=0.0, low_open=True, fix="Pass e.g. 10.0."),
            "buffer_mb": check_real(self.buffer_mb, "buffer_mb must be > 0", low=0.0,
                                    low_open=True, fix="Pass e.g. 256."),
            "overwrite": bool(self.overwrite),
            "resume": self.resume if isinstance(self.resume, bool) else check_int(
                self.resume, "resume must be True, False or a step (an int >= 0)", minimum=0,
                fix="Pass resume=True to continue from the run's last snapshot."),
        }
        weight_compressors(self.compression)  # the store owns the codec names
        if normalized["overwrite"] and normalized["resume"] is not False:
            raise ConfigError("overwrite=True and resume= exclude each other: overwrite "
                              "replaces the run, resume continues it. Pass only one.")
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

    @property
    def buffer_bytes(self) -> int:
        """``buffer_mb`` in bytes."""
        return int(self.buffer_mb * 2**20)

    def to_dict(self) -> dict[str, Any]:
        """The run attributes these settings determine (``every``, ``sample``)."""
        return {attr: getattr(self, field) for attr, field in _STORED.items()}

    @classmethod
    def from_dict(cls, attrs: Mapping[str, Any], *,
                  error: type[WeightscopeError] = ConfigError, **settings: Any) -> RecorderConfig:
        """The settings a run was recorded with, from its attributes.

        Parameters
        ----------
        attrs : mapping
            A run's attributes (``ds.attrs``); the keys other than those of :meth:`to_dict`
            are ignored.
        error : type, default ConfigError
            The exception raised when a stored value breaks its rule.
        **settings
            The settings that are not stored (``flush_seconds``...); defaults otherwise.
        """
        _check_every(attrs.get(schema.EVERY), rule=f"the run's '{schema.EVERY}' attribute must "
                     "be an integer >= 1", fix="Open runs with weightscope.open_run.", error=error)
        stored = {field: attrs.get(attr) for attr, field in _STORED.items()}
        try:
            return cls(**stored, **settings)
        except ConfigError as err:
            if error is ConfigError:
                raise
            raise error(f"the run's attributes break a rule: {err}") from err

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the settings (the Recorder arguments they come from)."""
        return tuple(f.name for f in dataclasses.fields(cls))


def _check_every(value: object, *, rule: str = "every must be an int >= 1 (snapshot interval "
                 "in optimizer steps)", fix: str = "Pass e.g. every=10.",
                 error: type[WeightscopeError] = ConfigError) -> int:
    """The one rule of ``every`` (an int >= 1), worded for an argument or a stored attribute."""
    return check_int(value, rule, minimum=1, fix=fix, error=error)


def check_sample(sample: object) -> Sample:
    """Validate a ``sample=`` argument (see :func:`weightscope.record.sample_indices`)."""
    if sample is None:
        return None
    if not is_real(sample):
        raise ConfigError(
            f"sample must be None, an int >= 1 or a float in (0, 1]; got {sample!r}. "
            "Pass e.g. sample=4096 or sample=0.1."
        )
    if is_int(sample):
        return check_int(sample, "sample as an int counts elements per parameter and must be "
                         ">= 1", fix="Pass sample=None to record every element.")
    return check_real(sample, "sample as a float is a fraction of each parameter and must be "
                      "in (0, 1]", low=0.0, low_open=True, high=1.0,
                      fix="Pass e.g. sample=0.1, or an int count.")
