"""Compression of stored weights.

Float32 weights are mostly mantissa noise: byte shuffling groups the low-entropy sign and
exponent bytes so a fast compressor saves about a fifth of the bytes. The choice below is the
measured trade-off of ``bench/codecs.py`` (bytes saved versus writer time on 2 cores).

Examples
--------
>>> [type(c).__name__ for c in weight_compressors()]
['BloscCodec']
"""

from __future__ import annotations

from zarr.codecs import BloscCodec, BloscShuffle

__all__ = ["weight_compressors"]


def weight_compressors() -> tuple[BloscCodec, ...]:
    """The bytes-to-bytes codecs of the ``w`` array (blosc lz4 with byte shuffle)."""
    return (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.shuffle, typesize=4),)
