"""The offline side never imports torch; importing weightscope is cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["weightscope", "weightscope.store", "weightscope.analyze",
                                    "weightscope.plot", "weightscope.schema",
                                    "weightscope.testing", "weightscope_cli.follow"])
def test_offline_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_public_names_resolve():
    import weightscope as ws

    for name in ws.__all__:
        assert getattr(ws, name) is not None
