"""The README's Python example runs as written and its test command is the one CI runs."""

from __future__ import annotations

import re
import shlex
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


def _block(text: str, language: str, marker: str) -> str:
    """The README code block of ``language`` that contains ``marker``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one ```{language} block with {marker!r}"
    return found[0]


def test_readme_slurm_array_example_runs_with_the_index_from_the_environment(
        tmp_path, monkeypatch, capsys):
    from fastnai.cli import main

    script = _block((REPO / "README.md").read_text(), "bash", "#SBATCH")
    first, last = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)", script).groups())
    task = next(line for line in script.splitlines() if line.startswith("fastnai sweep"))
    merge = re.search(r"#\s+(fastnai sweep .*--merge)", script).group(1)
    argv = [a.replace("sweeps/", f"{REPO}/sweeps/") for a in shlex.split(task)[1:]]
    monkeypatch.chdir(tmp_path)  # the sweep file's output_dir is relative to the working dir
    # the array range in the script is the one --dry-run prints for this sweep
    assert "--array-task" in argv
    assert main([a for a in argv if a != "--array-task"] + ["--dry-run"]) == 0
    assert f"--array={first}-{last}" in capsys.readouterr().out
    for index in range(first, last + 1):  # what SLURM does, one task after another
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(index))
        assert main([*argv, "-q"]) == 0
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    merge_argv = [a.replace("sweeps/", f"{REPO}/sweeps/") for a in shlex.split(merge)[1:]]
    assert main(merge_argv) == 0
    merged = next(tmp_path.glob("results/*/sweep.nc"))
    import xarray as xr

    with xr.open_dataset(merged) as ds:
        assert set(ds.status.values.ravel()) == {"ok"}
        assert ds.status.size == last - first + 1


def test_readme_dask_jobqueue_example_runs_on_a_local_stand_in(tmp_path, monkeypatch, capsys):
    import sys
    import types

    import distributed

    from fastnai.sweeps import LOCAL_CLUSTER_QUIET

    class SLURMCluster(distributed.LocalCluster):
        """dask_jobqueue.SLURMCluster's constructor and scale(jobs=...) on this machine."""

        def __init__(self, **kwargs):
            assert {"cores", "processes", "memory", "walltime"} <= set(kwargs)
            super().__init__(n_workers=2, threads_per_worker=1, processes=True,
                             **LOCAL_CLUSTER_QUIET)

        def scale(self, n=0, jobs=0, **kwargs):
            if jobs:  # the README's call: the two workers are already there
                return None
            return super().scale(n, **kwargs)  # LocalCluster's own calls

    monkeypatch.setitem(sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=SLURMCluster))
    code = _block((REPO / "README.md").read_text(), "python", "SLURMCluster")
    code = code.replace('"cases/', f'"{REPO}/cases/')
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    import xarray as xr

    with xr.open_dataset(tmp_path / "results" / "bb_sweep" / "sweep.nc") as ds:
        assert set(ds.status.values.ravel()) == {"ok"}
        assert ds.interface_field.dims == ("semiconductor.donor_density", "contact.work_function")
    assert "[" in capsys.readouterr().out  # the printed interface fields
