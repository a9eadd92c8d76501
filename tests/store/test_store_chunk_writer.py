"""The ChunkWriter contract: every implementation leaves the chunk files plain zarr writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from weightscope.store.chunk_writer import ChunkWriter, ZarrRows
from weightscope.store.codecs import with_checksum
from weightscope.store.direct import DirectRows, aligned_bytes


def _direct(unbuffered: bool) -> Callable[[zarr.Array], ChunkWriter]:
    def make(array: zarr.Array) -> ChunkWriter:
        writer = DirectRows.for_array(array)
        assert writer is not None  # local and uncompressed: the direct path applies
        writer.unbuffered = unbuffered and writer.unbuffered  # O_DIRECT where there is one
        return writer
    return make


IMPLEMENTATIONS: dict[str, Callable[[zarr.Array], ChunkWriter]] = {
    "zarr": ZarrRows,
    "direct": _direct(unbuffered=True),
    "direct-page-cache": _direct(unbuffered=False),
}


def _array(root: Path, name: str, shape: tuple[int, ...], chunks: tuple[int, ...],
           dtype: str, checksum: bool = False, zero_fill: bool = False) -> zarr.Array:
    fill = 0 if zero_fill else -1 if dtype == "int64" else np.nan
    return zarr.open_group(root / f"{name}.zarr", mode="w").create_array(
        "a", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
        compressors=with_checksum() if checksum else None,
        config={"write_empty_chunks": True})  # the writer's setting for w and mask


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted((root / "a" / "c").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@settings(max_examples=30, deadline=None)
@given(two_d=st.booleans(), steps=st.sampled_from([1, 2, 4, 16]), n=st.integers(1, 130),
       across=st.integers(1, 5), pad=st.integers(0, 3), start=st.integers(0, 2),
       batches=st.lists(st.integers(1, 40), min_size=1, max_size=6),
       dtype=st.sampled_from(["float32", "float64", "int64"]), seed=st.integers(0, 1000),
       checksum=st.booleans(), zero_fill=st.booleans())
# new chunk rows, rows continuing one, rows crossing a chunk row's end, a final partial row
@example(two_d=True, steps=4, n=50, across=3, pad=1, start=0, batches=[4, 2, 2, 3, 2],
         dtype="float32", seed=0, checksum=True, zero_fill=True)
@example(two_d=True, steps=4, n=50, across=3, pad=1, start=0, batches=[4, 2, 2, 3, 2],
         dtype="float32", seed=0, checksum=False, zero_fill=False)
@example(two_d=False, steps=4, n=1, across=1, pad=0, start=1, batches=[4, 2, 2, 3, 2],
         dtype="int64", seed=0, checksum=True, zero_fill=False)
@example(two_d=True, steps=16, n=1024, across=1, pad=0, start=0, batches=[16, 3, 5],
         dtype="float32", seed=0, checksum=True, zero_fill=True)  # whole pages, no copy
def test_writes_leave_the_chunk_files_zarr_writes(
        tmp_path_factory: pytest.TempPathFactory, implementation: str, two_d: bool, steps: int,
        n: int, across: int, pad: int, start: int, batches: list[int], dtype: str,
        seed: int, checksum: bool, zero_fill: bool) -> None:
    root = tmp_path_factory.mktemp("contract")
    total, row = sum(batches), start * steps
    width = min(n, -(-n // across) + pad)  # `across` chunks or fewer, the last one padded
    shape, chunks = ((row + total + steps, n), (steps, width)) if two_d else (
        (row + total + steps,), (steps,))
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((total, *shape[1:])) * 9).astype(dtype)
    aligned = aligned_bytes(values.nbytes).view(dtype).reshape(values.shape)
    aligned[...] = values  # the Recorder's slot memory: whole pages go out without a copy
    values = aligned
    values.flat[0] = -0.0 if dtype != "int64" else values.flat[0]
    ours, theirs = (_array(root, name, shape, chunks, dtype, checksum, zero_fill)
                    for name in ("ours", "theirs"))
    writer = IMPLEMENTATIONS[implementation](ours)
    for size in batches:
        part = values[row - start * steps:][:size]
        writer.write(row, part)
        theirs[row:row + size] = part
        row += size
    assert _files(root / "ours.zarr") == _files(root / "theirs.zarr")
    np.testing.assert_array_equal(ours[start * steps:row], values)
    np.testing.assert_array_equal(ours[:], theirs[:])
