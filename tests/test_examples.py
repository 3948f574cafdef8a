"""Run every gallery example (``examples/plot_*.py``) in fast mode.

Each example runs in-process with :func:`runpy.run_path`, with
``SKLEARN_BUDGET_EXAMPLES_FAST=1`` (tiny data, few epochs), the non-interactive
Agg backend and a temporary working directory, so nothing is written to the
repository. The matplotlib figures and settings (causalml changes the global
style when it is imported) are restored after each example.
"""

import ast
import os
import runpy
import warnings
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))

# Optional dependencies an example imports (directly or through
# sklearn_budget.baselines); the test is skipped when one is missing.
REQUIRES = {
    "plot_causalml_comparison.py": ["causalml"],
    "plot_cost_curves.py": ["causalml"],
    "plot_hillstrom.py": ["causalml"],
    "plot_scale_out.py": ["dask"],
}
DATA_ENV = "SKLEARN_BUDGET_DATA"


def _hillstrom_available():
    """Mirror of the example's look-up: env var, then ../shared/data next to the repo."""
    candidates = []
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]).expanduser())
    repo = EXAMPLES_DIR.parent
    candidates += [repo.parent / "shared" / "data", repo / "shared" / "data"]
    return any(c.is_file() or (c / "hillstrom.csv").is_file() for c in candidates)


def test_examples_found():
    assert len(EXAMPLES) >= 6, f"expected the gallery in {EXAMPLES_DIR}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_gallery_style(path):
    """Title docstring, ``# %%`` cells, fast-mode switch, listed in README.txt."""
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, f"{path.name} needs a module docstring (title + explanation)"
    lines = docstring.strip().splitlines()
    assert lines[0].startswith("=") and lines[2].startswith("="), "underlined title first"
    assert "# %%" in source
    assert "SKLEARN_BUDGET_EXAMPLES_FAST" in source
    assert path.name in (EXAMPLES_DIR / "README.txt").read_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    for module in REQUIRES.get(path.name, []):
        pytest.importorskip(module)
    if path.name == "plot_hillstrom.py" and not _hillstrom_available():
        pytest.skip(f"Hillstrom data not found: set {DATA_ENV} to hillstrom.csv or its "
                    "folder, or put it in ../shared/data next to the repository")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SKLEARN_BUDGET_EXAMPLES_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    try:
        with matplotlib.rc_context(), warnings.catch_warnings():
            # plt.show() on Agg only warns that it cannot show anything
            warnings.filterwarnings("ignore", message=".*non-interactive.*")
            try:
                runpy.run_path(str(path), run_name="__main__")
            except SystemExit as exc:  # an example stopping on purpose (missing data)
                if exc.code not in (None, 0):
                    raise
                pytest.skip(f"{path.name} exited early: {exc}")
    finally:
        plt.close("all")
    assert not any(tmp_path.iterdir()), "examples must not write files"
