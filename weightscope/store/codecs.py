"""Compression of stored weights.

Float32 weights in training are mostly mantissa noise: a fast compressor saves few bytes
while its CPU time competes with training. The Recorder therefore stores weights uncompressed
by default; ``"lz4"`` (blosc lz4, byte shuffle, level 1) and ``"zstd"`` (blosc zstd level 1,
bit shuffle: the best ratio) trade CPU for bytes. Masks always use lz4: booleans compress
extremely well, and so do the integer coordinates ``param_id`` / ``index`` (runs of
consecutive integers), faster and smaller with blosc lz4 and byte shuffle than with zarr's
default zstd. Every array of a run ends its codecs with zarr's ``crc32c`` checksum
(:func:`with_checksum`), after compression, so a damaged chunk is refused before it is
decompressed. Measurements: ``docs/performance.md`` (Store).

Examples
--------
>>> [type(c).__name__ for c in weight_compressors("lz4")]
['BloscCodec']
>>> weight_compressors("none")
()
"""

from __future__ import annotations

from typing import Any

from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from ..errors import ConfigError

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_COMPRESSION",
    "coordinate_compressors",
    "mask_compressors",
    "weight_compressors",
    "with_checksum",
]

COMPRESSIONS = ("none", "lz4", "zstd")
DEFAULT_COMPRESSION = "none"


def weight_compressors(name: str = DEFAULT_COMPRESSION) -> tuple[BloscCodec, ...]:
    """The bytes-to-bytes codecs of the ``w`` array for compression ``name``."""
    if name == "none":
        return ()
    if name == "lz4":
        return (BloscCodec(cname="lz4", clevel=1, shuffle=BloscShuffle.shuffle, typesize=4),)
    if name == "zstd":
        return (BloscCodec(cname="zstd", clevel=1, shuffle=BloscShuffle.bitshuffle,
                           typesize=4),)
    raise ConfigError(f"compression must be one of {COMPRESSIONS}; got {name!r}. "
                      f"Pass compression='{DEFAULT_COMPRESSION}'.")


def mask_compressors() -> tuple[BloscCodec, ...]:
    """The codecs of the boolean ``mask`` array."""
    return (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.noshuffle, typesize=1),)


def coordinate_compressors(typesize: int) -> tuple[BloscCodec, ...]:
    """The codecs of the integer ``param_id`` / ``index`` coordinates (``typesize`` bytes)."""
    return (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle, typesize=typesize),)


def with_checksum(codecs: tuple[Any, ...] | None = ()) -> tuple[Any, ...]:
    """``codecs`` followed by zarr's ``crc32c`` checksum (what every array of a run uses).

    >>> [type(c).__name__ for c in with_checksum(mask_compressors())]
    ['BloscCodec', 'Crc32cCodec']
    """
    return (*(codecs or ()), Crc32cCodec())
