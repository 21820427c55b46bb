"""The architecture the run-lifecycle issue asked for, checked on the source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KINDS = ("band_bending", "drift_diffusion", "film_stress", "deposition")


def test_every_model_is_a_package_with_keys_and_output():
    for kind in KINDS:
        package = REPO / "fastnai" / "models" / kind
        assert (package / "__init__.py").is_file() and (package / "keys.py").is_file()
        assert (package / "output.py").is_file()
        assert not (REPO / "fastnai" / "models" / f"{kind}.py").exists()


def test_the_longest_function_of_the_models_is_under_80_lines():
    longest = max(
        ((node.end_lineno - node.lineno + 1, f"{path.relative_to(REPO)}:{node.name}")
         for path in (REPO / "fastnai" / "models").rglob("*.py")
         for node in ast.walk(ast.parse(path.read_text()))
         if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))), default=(0, ""))
    assert longest[0] < 80, longest


@pytest.mark.parametrize("module", ["fastnai.api", "fastnai.case"])
def test_importing_the_api_imports_neither_numba_nor_the_sweeps(module):
    code = (f"import sys, {module}; print('numba' in sys.modules, "
            "'fastnai.sweeps' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    assert out == ["False", "False"]
