"""Run the docstring examples of the *installed* package.

pytest's ``--doctest-modules`` collects source files by path; when the package
is installed non-editable (``pip install ".[test]"`` as the README says) the
files under ``sklearn_budget/`` in the checkout and the imported modules are
different files and pytest refuses them ("import file mismatch"). Finding the
examples through the imported modules tests exactly what users run, whatever
the install mode.
"""

import doctest
import importlib
import pkgutil

import pytest

import sklearn_budget

OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _modules():
    names = [sklearn_budget.__name__]
    for info in pkgutil.walk_packages(
        sklearn_budget.__path__, prefix=sklearn_budget.__name__ + "."
    ):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    cases = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples and test.name.startswith(name):
                # A test is found once per module that re-exports its object;
                # keep it only under the module that defines it.
                owner = getattr(test, "filename", None)
                if owner is not None and owner != getattr(module, "__file__", None):
                    continue
                cases.append(test)
    return cases


DOCTESTS = _doctests()


def test_docstring_examples_were_found():
    # Guards against the finder silently collecting nothing.
    names = {t.name for t in DOCTESTS}
    assert len(DOCTESTS) >= 10, sorted(names)
    assert any("solve_budget_allocation" in n for n in names), sorted(names)


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test):
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    # Each example gets a fresh copy of its module's globals.
    test.globs = dict(test.globs)
    report = []
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
