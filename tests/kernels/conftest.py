"""Fixtures of the kernel tests."""

from __future__ import annotations

import pytest

from weightscope.kernels import _common


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny chunk sizes, so that moderate tensors run through many chunks and a partial one."""
    monkeypatch.setitem(_common.CPU_CHUNK, "stream", 1 << 12)
    monkeypatch.setitem(_common.CPU_CHUNK, "search", 1 << 12)
