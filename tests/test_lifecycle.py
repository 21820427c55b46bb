"""The run contract, by fault injection: signals at chosen and at random moments, killed
processes, bad paths, file modes, progress lines (issue 14; SPEC 6 and 8).

In-process tests send real SIGTERM/SIGINT to this process from inside a run (the handler runs
in the main thread at the next bytecode, as it does when a batch scheduler sends it); the
command-line tests run ``fastnai run`` in a subprocess and signal or kill it from outside. A
resumed run must end with the uninterrupted run's data variables and coordinates, bit for
bit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import fastnai
from fastnai import runner
from fastnai.cli import main
from fastnai.errors import CaseError, Interrupted, OutputError
from fastnai.io import read_checkpoint
from fastnai.models import deposition as dep
from fastnai.models import drift_diffusion as dd
from fastnai.models import film_stress as fs

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"

# a multi-segment GITT of drift_diffusion: equilibrium, 4 pulse/rest pairs (9 segments)
GITT = (CASES / "drift_diffusion_ticn_tio2_gitt.toml",
        {"protocol.1.n_pulses": 4, "mesh.n_nodes": 60, "solver.rtol": 1e-3})
# plate / rest / strip / rest on a small deposition box
PLATE_STRIP = (CASES / "deposition_plate_strip.toml",
               {"mesh.nx": 32, "mesh.ny": 24, "protocol.0.capacity": "0.004 mA h cm^-2",
                "protocol.0.cycles": 1, "protocol.0.rest_duration": 5.0})
# film_stress sodiated by diffusion: two GITT pulses with rests
FILM = ({"model": {"kind": "film_stress", "sodiation": "diffusion"},
         "film": {"thickness": 600e-9}, "composition": {"profile": "uniform", "mean": 0.33},
         "bismuth": {"diffusivity": 1e-15}, "antimony": {"diffusivity": 1e-15},
         "initial": {"soc": 0.3}, "mesh": {"film_layers": 30},
         "interface": {"exchange_current": 1e6},
         "protocol": [{"step": "gitt", "c_rate": 1.0, "cutoff_voltage": 0.0,
                       "pulse_duration": 3.6, "rest_duration": 1080.0, "n_pulses": 2}]}, {})
RUNS = {"gitt": GITT, "plate_strip": PLATE_STRIP, "film": FILM}


def data(ds: xr.Dataset) -> xr.Dataset:
    """Data variables and coordinates only (provenance attributes differ between runs)."""
    out = ds.copy()
    out.attrs = {}
    return out


@pytest.fixture(scope="module")
def reference():
    cache = {}

    def get(name):
        if name not in cache:
            case, over = RUNS[name]
            cache[name] = data(fastnai.run(case, over, progress=False))
        return cache[name]

    return get


def run_to_the_end(name, path, **kwargs):
    case, over = RUNS[name]
    return data(fastnai.run(case, over, checkpoint=path, progress=False, **kwargs))


class SignalAt:
    """Wrap ``owner.attr`` so that the ``n``-th call sends ``signum`` to this process (before
    or after the wrapped call)."""

    def __init__(self, monkeypatch, owner, attr, n, signum=signal.SIGTERM, before=False):
        self.calls = 0
        original = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            self.calls += 1
            if before and self.calls == n:
                os.kill(os.getpid(), signum)
            out = original(*args, **kwargs)
            if not before and self.calls == n:
                os.kill(os.getpid(), signum)
            return out

        monkeypatch.setattr(owner, attr, wrapped)


def interrupt_and_resume(tmp_path, monkeypatch, name, owner, attr, n, reference, **kw):
    path = tmp_path / f"{name}.ckpt.npz"
    with monkeypatch.context() as patch:
        SignalAt(patch, owner, attr, n, **kw)
        with pytest.raises(Interrupted) as info:
            run_to_the_end(name, path)
    assert info.value.checkpoint_path == path and path.exists()
    state, meta = read_checkpoint(path)
    resumed = run_to_the_end(name, path, resume=True)
    xr.testing.assert_identical(resumed, reference(name))
    assert not path.exists(), "a successful resume removes its checkpoint"
    return meta


# --------------------------------------------------------------------------------------------
# signals at chosen moments, in process


def test_sigterm_in_set_up_stops_at_once_with_a_start_checkpoint(tmp_path, monkeypatch,
                                                                  reference):
    """Before the first step (here: while the mesh is built) the run stops at once: no
    equilibrium after the signal; the checkpoint says "start from the beginning"."""
    meta = interrupt_and_resume(tmp_path, monkeypatch, "gitt", dd.cell, "build", 1, reference,
                                before=True)
    assert meta["phase"] == "start"


@pytest.mark.parametrize("where", ["inside-a-segment", "between-segments",
                                   "last-step-of-a-segment", "while-writing-the-output"])
def test_sigterm_in_a_gitt_run_resumes_to_the_same_bits(tmp_path, monkeypatch, reference,
                                                        where):
    if where == "inside-a-segment":  # the 5th accepted step of the first pulse
        interrupt_and_resume(tmp_path, monkeypatch, "gitt", dd.Recorder, "record", 6, reference)
    elif where == "between-segments":  # as the third segment (first rest) starts
        interrupt_and_resume(tmp_path, monkeypatch, "gitt", runner, "_enter", 3, reference,
                             before=True)
    elif where == "last-step-of-a-segment":  # the step that ends the first pulse
        path = tmp_path / "gitt.ckpt.npz"
        advance = dd.Cell.advance

        def advance_then_signal(self, *args, **kwargs):
            fired = advance(self, *args, **kwargs)  # the segment's last step is taken
            os.kill(os.getpid(), signal.SIGTERM)
            return fired

        with monkeypatch.context() as patch:
            patch.setattr(dd.Cell, "advance", advance_then_signal)
            with pytest.raises(Interrupted):
                run_to_the_end("gitt", path)
        state, _ = read_checkpoint(path)
        assert int(state["runner"]["segment"]) == 3 and not state["engine"]  # after the pulse
        xr.testing.assert_identical(run_to_the_end("gitt", path, resume=True), reference("gitt"))
    else:  # after the last step: the final state is saved; its resume writes the same file
        out = tmp_path / "gitt.nc"
        path = tmp_path / "gitt.ckpt.npz"
        case, over = GITT
        with monkeypatch.context() as patch:
            SignalAt(patch, fastnai.api, "write_dataset", 1, before=True)
            with pytest.raises(Interrupted, match="after the last step"):
                fastnai.run(case, over, output=out, progress=False)
        assert path.exists()
        fastnai.run(case, over, output=out, resume=True, progress=False)
        xr.testing.assert_identical(data(fastnai.io.read_dataset(out)), reference("gitt"))
        assert not path.exists()


def test_sigint_is_handled_like_sigterm(tmp_path, monkeypatch, reference):
    meta = interrupt_and_resume(tmp_path, monkeypatch, "gitt", dd.Recorder, "record", 9,
                                reference, signum=signal.SIGINT)
    assert meta["phase"] == "running" and meta["model"] == "drift_diffusion"


def test_sigterm_in_a_plate_strip_deposition_run(tmp_path, monkeypatch, reference):
    meta = interrupt_and_resume(tmp_path, monkeypatch, "plate_strip", dep.Stepper, "_step", 25,
                                reference)
    assert meta["phase"] == "running" and meta["model"] == "deposition"


def test_sigterm_in_a_film_stress_diffusion_run(tmp_path, monkeypatch, reference):
    meta = interrupt_and_resume(tmp_path, monkeypatch, "film", fs.FilmCell, "on_accept", 7,
                                reference)
    assert meta["phase"] == "running" and meta["model"] == "film_stress"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_sigterm_at_random_steps_always_resumes_to_the_same_bits(tmp_path, monkeypatch,
                                                                 reference, seed):
    """Random run, random moment: a step record, a segment start, or set-up."""
    rng = random.Random(seed)
    name = rng.choice(sorted(RUNS))
    hooks = {"gitt": [(dd.Recorder, "record", 60)], "plate_strip": [(dep.Stepper, "_step", 150)],
             "film": [(fs.FilmCell, "on_accept", 60)]}[name]
    owner, attr, most = rng.choice(hooks + [(runner, "_enter", 4)])
    n = rng.randint(1, most)
    meta = interrupt_and_resume(tmp_path, monkeypatch, name, owner, attr, n, reference,
                                before=rng.random() < 0.5)
    assert meta["phase"] in ("start", "running")


def test_handlers_are_restored_and_left_alone_outside_the_main_thread():
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    case, over = FILM
    fastnai.run(case, over, progress=False)
    assert {s: signal.getsignal(s) for s in before} == before
    seen = {}

    def worker():  # a Dask worker thread: no handler can (or may) be installed there
        seen["ds"] = fastnai.run(case, over, progress=False)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert "ds" in seen and {s: signal.getsignal(s) for s in before} == before


def test_periodic_checkpoint_clock_runs_over_the_whole_run(tmp_path, monkeypatch):
    """checkpoint_every = 0: a checkpoint after every step and every segment, across the
    segments (the clock does not restart per segment)."""
    path = tmp_path / "gitt.ckpt.npz"
    writes = []
    original = fastnai.lifecycle.Lifecycle.write

    def counting(self, state, phase="running"):
        writes.append(int(state["runner"]["segment"]) if state else -1)
        return original(self, state, phase)

    monkeypatch.setattr(fastnai.lifecycle.Lifecycle, "write", counting)
    case, over = GITT
    fastnai.run(case, over, checkpoint=path, checkpoint_every=0.0, keep_checkpoint=True,
                progress=False)
    # 10 segments (two equilibria, four pulse/rest pairs): every position after one was saved
    assert set(writes) == set(range(1, 11)) and path.exists()


def test_resume_with_an_edited_case_or_no_checkpoint_is_a_case_error(tmp_path, monkeypatch):
    path = tmp_path / "gitt.ckpt.npz"
    case, over = GITT
    with monkeypatch.context() as patch:
        SignalAt(patch, dd.Recorder, "record", 4)
        with pytest.raises(Interrupted):
            fastnai.run(case, over, checkpoint=path, progress=False)
    with pytest.raises(CaseError, match="written for another case"):
        fastnai.run(case, {**over, "solver.rtol": 2e-3}, checkpoint=path, resume=True)
    with pytest.raises(CaseError, match="does not exist"):
        fastnai.run(case, over, checkpoint=tmp_path / "none.npz", resume=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CaseError, match="cannot read checkpoint"):
        fastnai.run(case, over, checkpoint=path, resume=True)


# --------------------------------------------------------------------------------------------
# the command line in a subprocess: real signals and kills from outside


def cli(*args, env=None):
    return [sys.executable, "-m", "fastnai", *map(str, args)]


def gitt_command(out, *extra):
    case, over = GITT
    sets = [x for k, v in {**over, "protocol.1.n_pulses": 40}.items()
            for x in ("--set", f"{k}={v}")]
    return cli("run", case, "-o", out, *sets, *extra)


def test_cli_sigterm_at_a_random_moment_exits_4_and_the_resume_is_bitwise(tmp_path):
    """After the first progress line (set-up done), SIGTERM at a random moment: exit 4, a
    checkpoint; ``--resume`` ends with the uninterrupted file's data; progress lines in the
    batch log, the summary on stdout."""
    ref, out = tmp_path / "ref.nc", tmp_path / "out.nc"
    done = subprocess.run(gitt_command(ref), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "fastnai: t = " in done.stderr and "result: t " in done.stdout
    proc = subprocess.Popen(gitt_command(out), stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    first = proc.stderr.readline()
    assert "fastnai: t = " in first, first
    time.sleep(random.Random(os.getpid()).uniform(0.0, 1.0))
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:  # finished before the signal: nothing to resume
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 4, stderr
    assert "checkpoint written to" in " ".join(stderr.split())
    ckpt = out.with_suffix(".ckpt.npz")
    assert ckpt.exists()  # (the output too, when the signal came while it was being written)
    resumed = subprocess.run(gitt_command(out, "--resume"), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    xr.testing.assert_identical(data(xr.load_dataset(out)), data(xr.load_dataset(ref)))
    assert not ckpt.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_sigkill_leaves_the_periodic_checkpoint_that_resumes(tmp_path):
    ref, out = tmp_path / "ref.nc", tmp_path / "out.nc"
    assert subprocess.run(gitt_command(ref, "-q"), timeout=300).returncode == 0
    ckpt = out.with_suffix(".ckpt.npz")
    proc = subprocess.Popen(gitt_command(out, "--checkpoint-every", "0.2"),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    proc.stderr.readline()  # set-up done
    deadline = time.monotonic() + 60
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=60)
    if proc.returncode == 0 or out.exists():
        pytest.skip("the run finished (its checkpoint removed) before the kill")
    assert ckpt.exists()
    resumed = subprocess.run(gitt_command(out, "--resume", "-q"), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    xr.testing.assert_identical(data(xr.load_dataset(out)), data(xr.load_dataset(ref)))
    assert not list(tmp_path.glob(".*.tmp")), "stale temporaries of the killed run are removed"


# --------------------------------------------------------------------------------------------
# paths, files and numeric options: exit 2 before any work


@pytest.fixture
def deny_work(monkeypatch):
    """Fail the test if a model starts work."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started")

    for module in (dd, dep, fs):
        monkeypatch.setattr(module.cell, "build", refuse)


def bad_path_cases(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text((CASES / "drift_diffusion_ticn_tio2_gitt.toml").read_text())
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    return case, {
        "a directory": (tmp_path / "folder", "existing folder"),
        "a parent that is a file": (tmp_path / "file" / "out.nc", "not a folder"),
        "the input case": (case, "input"),
        "a name too long": (tmp_path / ("x" * 300 + ".nc"), "bytes long"),
        "a device": (Path("/dev/full"), "regular file"),
    }


@pytest.mark.parametrize("what", ["a directory", "a parent that is a file", "the input case",
                                  "a name too long", "a device"])
def test_bad_output_paths_are_exit_2_before_any_work(tmp_path, capsys, deny_work, what):
    case, bad = bad_path_cases(tmp_path)
    path, words = bad[what]
    before = case.read_bytes()
    status = main(["run", str(case), "-o", str(path)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "OutputError" in err and words in " ".join(err.lower().split()), err
    assert case.read_bytes() == before
    if what == "a device":
        assert Path("/dev/full").is_char_device()


def test_unwritable_folder_is_exit_2(tmp_path, capsys, deny_work, monkeypatch):
    """As root chmod does not stop writes; the probe file's PermissionError stands in."""
    case, _ = bad_path_cases(tmp_path)
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert main(["run", str(case), "-o", str(tmp_path / "out.nc")]) == 2
    assert "Permission denied" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_checkpoint_every_must_be_finite_seconds(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["run", str(CASES / "drift_diffusion_ticn_tio2_gitt.toml"), "--checkpoint-every",
              value, "-o", str(tmp_path / "o.nc")])
    assert info.value.code == 2
    assert "finite number of seconds" in capsys.readouterr().err or value == "soon"


def test_file_modes_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        case, over = GITT
        out = tmp_path / "out.nc"
        fastnai.run(case, over, output=out, checkpoint_every=0.0, keep_checkpoint=True,
                    progress=False)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o640
    assert out.with_suffix(".ckpt.npz").stat().st_mode & 0o777 == 0o640


def test_a_model_that_would_not_fit_in_memory_is_exit_2(tmp_path, capsys, deny_work):
    status = main(["run", str(CASES / "deposition_bare_na.toml"), "--set", "mesh.nx=100000",
                   "--set", "mesh.ny=100000", "-o", str(tmp_path / "o.nc")])
    err = capsys.readouterr().err
    assert status == 2 and "GiB" in err and "mesh.nx" in err


def test_more_nodes_than_fit_is_exit_2_naming_the_maximum(tmp_path, capsys, deny_work):
    status = main(["run", str(CASES / "drift_diffusion_heterostructure_cv.toml"), "--set",
                   "mesh.n_nodes=200", "-o", str(tmp_path / "o.nc")])
    err = capsys.readouterr().err
    assert status == 2 and "at most 23 nodes fit" in err


def test_a_drift_diffusion_case_without_protocol_is_a_case_error():
    case, _ = GITT
    raw = __import__("tomllib").loads(case.read_text())
    del raw["protocol"]
    with pytest.raises(CaseError, match="at least one \\[\\[protocol\\]\\] step"):
        fastnai.load_case(raw)


def test_summary_line_names_the_first_quantities(reference):
    from fastnai.variables import summary_line

    line = summary_line(fastnai.run(*GITT, progress=False))
    assert line.startswith("t ") and "final voltage" in line and "mA h g-1" in line
    assert np.isfinite(float(line.split("final voltage ")[1].split()[0]))


def test_output_error_is_raised_by_the_api_before_work(tmp_path, deny_work):
    case, over = GITT
    with pytest.raises(OutputError):
        fastnai.run(case, over, output=tmp_path)
