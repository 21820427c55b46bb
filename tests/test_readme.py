"""The README's Python example runs as written and its test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    matplotlib.use("Agg")
    text = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace('"cases/', f'"{REPO}/cases/')
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "V m-1" in out
    assert "material TiC" in out
    assert (tmp_path / "out.nc").is_file()


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert command in readme
    assert command in ci.splitlines()
