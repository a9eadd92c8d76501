"""Fixtures of the kernel tests."""

from __future__ import annotations

import pytest

from weightscope.kernels import _common, two_four, two_four_2d


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """4096-element chunks whatever the thread count, so that moderate tensors run through
    many chunks and a partial last one."""

    def tiny(device: object, kind: str = "stream") -> int:
        return 1 << 12

    for module in (_common, two_four, two_four_2d):
        monkeypatch.setattr(module, "chunk_elements", tiny)
