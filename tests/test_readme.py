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

    script = _block((REPO / "README.md").read_text(), "bash", "#SBATCH --array")
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


def test_readme_slurm_signal_idiom_checkpoints_on_sigterm_and_the_same_script_resumes(tmp_path):
    """The batch script of the run-lifecycle section, run by bash as SLURM would: SIGTERM to the
    batch shell (``--signal=B:TERM``) reaches fastnai through ``exec``: exit 4 and a checkpoint;
    the same script submitted again resumes it to the end and the checkpoint goes."""
    import os
    import signal
    import subprocess

    script = _block((REPO / "README.md").read_text(), "bash", "#SBATCH --signal=B:TERM")
    assert "exec fastnai run" in script
    script = script.replace("cases/", f"{REPO}/cases/")
    # a longer GITT than the case's 3 pulses, so that the signal finds it running
    script = script.replace(" -o gitt.nc", " -o gitt.nc --set protocol.1.n_pulses=40")
    (tmp_path / "job.sh").write_text(script)
    env = {**os.environ, "SLURM_CPUS_PER_TASK": "1"}
    job = subprocess.Popen(["bash", "job.sh"], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, text=True)
    assert "fastnai: t = " in job.stderr.readline()  # set-up done, the protocol is running
    job.send_signal(signal.SIGTERM)  # what --signal=B:TERM@120 does: to the batch shell
    _, err = job.communicate(timeout=120)
    assert job.returncode == 4, err
    assert (tmp_path / "gitt.ckpt.npz").exists() and not (tmp_path / "gitt.nc").exists()
    again = subprocess.run(["bash", "job.sh"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "gitt.nc").exists() and not (tmp_path / "gitt.ckpt.npz").exists()
