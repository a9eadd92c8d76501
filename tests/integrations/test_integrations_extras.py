"""The integrations are optional extras: imported lazily, a clear error when missing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import weightscope.integrations as integrations
from weightscope.errors import MissingExtraError

FRAMEWORKS = [("lightning", ["lightning", "lightning.pytorch"], "lightning"),
              ("transformers", ["transformers"], "hf")]


def test_importing_the_package_imports_no_framework():
    code = ("import sys, weightscope.integrations; "
            "print(sorted(m for m in ('lightning', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "hidden", "extra"), FRAMEWORKS)
def test_missing_framework_names_the_extra(monkeypatch, module, hidden, extra):
    for name in hidden:  # simulate an environment without the framework
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, f"weightscope.integrations.{module}", raising=False)
    monkeypatch.delitem(vars(integrations), module, raising=False)  # the cached submodule
    pattern = rf"needs the '{hidden[0]}' package.*pip install 'weightscope\[{extra}\]'"
    with pytest.raises(MissingExtraError, match=pattern):
        importlib.import_module(f"weightscope.integrations.{module}")
    with pytest.raises(ImportError, match=pattern):  # MissingExtraError is an ImportError
        getattr(integrations, module)  # the package's lazy attribute


@pytest.mark.parametrize(("module", "hidden", "extra"), FRAMEWORKS)
def test_callback_is_importable_with_the_framework(module, hidden, extra):
    pytest.importorskip(hidden[-1])
    callback = getattr(integrations, module).WeightscopeCallback
    assert callback.__module__ == f"weightscope.integrations.{module}"


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="has no attribute 'keras'"):
        integrations.keras  # noqa: B018
