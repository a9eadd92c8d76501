"""Collection settings of the whole suite (``--doctest-modules`` over ``weightscope/``).

* ``tests/_support`` holds helper modules and subprocess workers, not tests: they are not
  collected (they hold no doctests; the tests that use them import them).
* Modules whose import pulls a heavy optional dependency (:data:`LAZY_DOCTESTS`) keep their
  doctests, but these are found in the source (``ast``) at collection and the module is
  imported only when one of them runs: collecting the suite does not import Lightning,
  transformers or numba. Item names are those of pytest's own doctest items
  (``path::module.Class.method``); a missing framework skips them.
"""

from __future__ import annotations

import ast
import doctest
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weightscope.errors import MissingExtraError

ROOT = Path(__file__).parent
collect_ignore_glob = ["tests/_support/*.py"]

#: doctested modules (relative to the repository root) collected without importing them
LAZY_DOCTESTS = frozenset({
    "weightscope/integrations/__init__.py",  # pytest's dir() of it would import both
    "weightscope/integrations/lightning.py",
    "weightscope/integrations/transformers.py",
    "weightscope/sparse/topk/_band_kernels.py",  # imports numba
})


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    collectors = yield
    if _relative(file_path) not in LAZY_DOCTESTS or not collectors:
        return collectors
    kept = [c for c in collectors if type(c).__name__ != "DoctestModule"]
    if len(kept) == len(collectors):  # --doctest-modules is off
        return collectors
    return [*kept, LazyDoctestModule.from_parent(parent, path=file_path)]


def _relative(path: Path) -> str | None:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None


class LazyDoctestModule(pytest.File):
    """The doctests of one module, listed from its source."""

    def collect(self) -> Iterator[pytest.Item]:
        module = _relative(self.path).removesuffix(".py").removesuffix("/__init__")  # type: ignore
        module = module.replace("/", ".")
        for name in _doctest_names(self.path.read_text(), module):
            yield LazyDoctestItem.from_parent(self, name=name, module=module)


def _doctest_names(source: str, module: str) -> list[str]:
    """DocTestFinder's names of the docstrings holding examples: module, classes, functions
    and methods."""
    names = []

    def visit(node: ast.AST, qualname: str) -> None:
        doc = ast.get_docstring(node, clean=False)  # type: ignore[arg-type]
        if doc and ">>>" in doc:
            names.append(qualname)
        for child in getattr(node, "body", []):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, f"{qualname}.{child.name}")

    visit(ast.parse(source), module)
    return names


class LazyDoctestItem(pytest.Item):
    """One docstring's examples; the module is imported when they run."""

    def __init__(self, *, module: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.module = module

    def runtest(self) -> None:
        try:
            mod = importlib.import_module(self.module)
        except MissingExtraError as err:
            pytest.skip(str(err))
        tests = {t.name: t for t in doctest.DocTestFinder().find(mod, self.module)}
        if self.name not in tests:
            raise LookupError(f"no doctest {self.name!r} in {self.module}")
        flags = 0
        for flag in self.config.getini("doctest_optionflags"):
            flags |= doctest.OPTIONFLAGS_BY_NAME[flag]
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=flags)
        result = runner.run(tests[self.name], out=report.append, clear_globs=True)
        if result.failed:
            raise DoctestFailure("".join(report))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, DoctestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[arg-type]

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"[doctest] {self.name}"


class DoctestFailure(AssertionError):
    """The report of the failed examples of one docstring."""
