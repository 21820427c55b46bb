"""Sweeps and ensembles (fastnai.sweeps): values, grids, failures, resume, Dask workers, batch arrays.

Most sweeps run with scheduler="synchronous" (in-process, no Dask) or "threads" (a Dask
LocalCluster of threads) on a 400-node band-bending case (~15 ms a point); one runs on two
worker processes with an empty Numba cache.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import fastnai
from fastnai import api, schema
from fastnai.errors import CaseError, FastnaiError, Interrupted
from fastnai.io import read_dataset
from fastnai.models import MODEL_KINDS, band_bending, model_module

# the module, also where fastnai/__init__.py exports the function sweep under the same name
fs = importlib.import_module("fastnai.sweeps")
sweep_plan = importlib.import_module("fastnai.sweeps.plan")

REPO = Path(__file__).resolve().parents[1]
CASE = REPO / "cases" / "band_bending_ticn_tio2.toml"
SWEEPS = sorted((REPO / "sweeps").glob("*.toml"))
SMALL = {"mesh.n_nodes": 400}  # 0.01 nm * 399 < 100 nm
GRID = {"semiconductor.donor_density": "1e17 cm^-3:1e19 cm^-3:3:log",
        "contact.work_function": "4.1 eV:4.5 eV:3"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# provenance that differs between two runs of the same sweep (the thread count does not change
# a band-bending result)
VOLATILE_ATTRS = ("created", "wall_time_s", "numba_threads")
REAL_RUN = api.run


def run_cli(*argv: str) -> int:
    """``fastnai sweep ARGV`` through the functions cli.py wires in."""
    parser = argparse.ArgumentParser(prog="fastnai")
    fs.add_parser(parser.add_subparsers(dest="command"))
    return fs.cli_main(parser.parse_args(["sweep", *argv]))


def comparable(ds: xr.Dataset) -> xr.Dataset:
    """Without the provenance that changes from run to run (timings, creation time, threads)."""
    ds = ds.drop_vars([v for v in ds.data_vars
                       if str(v) in ("run_wall_time_s", "run_numba_threads")])
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in VOLATILE_ATTRS}
    return ds


class CountingRun:
    """Stands in for fastnai.api.run: counts the runs and can stop (Ctrl-C) at a given one."""

    def __init__(self, monkeypatch, stop_at: int | None = None):
        self.calls: list[dict] = []
        self.stop_at = stop_at
        monkeypatch.setattr(api, "run", self)

    def __call__(self, case, overrides=None, **kwargs):
        if self.stop_at is not None and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        self.calls.append(dict(overrides))
        return REAL_RUN(case, overrides, **kwargs)


# ---------------------------------------------------------------------------------------------
# values and plans


def test_range_specs_give_lin_log_and_unit_converted_values():
    keys = band_bending.KEYS
    assert fs.values_for(keys["semiconductor.donor_density"],
                         "1e17 cm^-3:1e19 cm^-3:3:log") == [1e23, 1e24, 1e25]
    # bare numbers are in the schema unit (m^-3), as in a case file
    assert fs.values_for(keys["semiconductor.donor_density"], "1e23:1e25:3:log") == [1e23, 1e24,
                                                                                      1e25]
    assert fs.values_for(keys["contact.work_function"], "4.2 eV:4.8 eV:4:lin") == [4.2, 4.4, 4.6,
                                                                                   4.8]
    assert fs.values_for(keys["contact.work_function"], "4.2:4.8:4") == [4.2, 4.4, 4.6, 4.8]
    assert fs.values_for(keys["semiconductor.thickness"], "20 nm:0.1 um:3") == [2e-8, 6e-8, 1e-7]
    assert fs.values_for(keys["mesh.n_nodes"], "100:10000:3:log") == [100, 1000, 10000]
    assert fs.values_for(keys["mesh.n_nodes"], "[200, 400]") == [200, 400]
    assert fs.values_for(keys["model.geometry"], "planar, dot") == ["planar", "dot"]
    assert fs.values_for(keys["semiconductor.holes"], "true,false") == [True, False]
    assert fs.values_for(keys["contact.work_function"], np.array([4.1, 4.3])) == [4.1, 4.3]
    assert fs.values_for(keys["contact.work_function"], "4.1 eV") == [4.1]
    # lognormal quantiles: symmetric in log about the median, at probabilities (k + 1/2)/n
    radii = fs.values_for(keys["semiconductor.thickness"], "lognormal:20 nm:0.3:5")
    assert radii[2] == pytest.approx(2e-8, rel=1e-14)
    assert math.log(radii[0] / 2e-8) == pytest.approx(-math.log(radii[4] / 2e-8), rel=1e-12)
    assert math.log(radii[4] / 2e-8) / 0.3 == pytest.approx(1.2815515655446004, rel=1e-12)


def test_range_hint_of_a_dimensionless_key_has_no_unit():
    keys = band_bending.KEYS
    for name, spec in [("semiconductor.relative_permittivity", "10:20"),
                       ("semiconductor.relative_permittivity", "lognormal:20:0.3"),
                       ("mesh.n_nodes", "100:200")]:
        with pytest.raises(CaseError) as info:
            fs.values_for(keys[name], spec)
        assert "cm^-3" not in str(info.value) and " eV" not in str(info.value), name
    with pytest.raises(CaseError, match="'1 eV:2 eV:5'"):
        fs.values_for(keys["contact.work_function"], "4:5")


@pytest.mark.parametrize(("workers", "threads", "points", "expected"), [
    (None, None, 100, (8, 1)),  # every core a worker, one thread each
    (2, None, 100, (2, 4)),  # the cores divided among the workers given
    (None, None, 2, (2, 4)),  # fewer points than cores: the running points share every core
    (None, 2, 100, (4, 2)),  # --threads N: cores // N workers
    (3, 3, 100, (3, 3)),
])
def test_local_cluster_default_threads_use_all_cores(monkeypatch, workers, threads, points,
                                                     expected):
    import dask.system

    execute = importlib.import_module("fastnai.sweeps.execute")
    monkeypatch.setattr(dask.system, "CPU_COUNT", 8)
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert execute._local_layout(workers, threads, points) == expected


def test_local_cluster_takes_numba_num_threads_per_point_when_it_is_set(monkeypatch):
    import dask.system

    execute = importlib.import_module("fastnai.sweeps.execute")
    monkeypatch.setattr(dask.system, "CPU_COUNT", 8)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "4")
    monkeypatch.setattr(execute, "max_threads", lambda: 4)  # what Numba read at import
    assert execute._local_layout(None, None, 100) == (2, 4)
    assert execute._local_layout(None, 1, 100) == (8, 1)  # --threads wins


@pytest.mark.parametrize("key, spec, expected", [
    ("semiconductor.donor_density", "1e17 cm^-3:1e19 cm^-3", "expected START:STOP:NUM"),
    ("semiconductor.donor_density", "1e17 cm^-3:1e19 cm^-3:0", "NUM = '0'"),
    ("semiconductor.donor_density", "1e17 cm^-3:1e19 cm^-3:2.5", "NUM = '2.5'"),
    ("semiconductor.donor_density", "0:1e19 cm^-3:3:log", "log spacing needs START and STOP > 0"),
    ("semiconductor.donor_density", "1e17 cm^-3:1e19 cm^-3:3:cubic", "expected 'lin' or 'log'"),
    ("semiconductor.donor_density", "1 eV:2 eV:3", "dimension"),
    ("semiconductor.donor_density", "1e17 cm^-3:1e40 cm^-3:3", "out of range"),
    ("semiconductor.donor_density", ":1e19 cm^-3:3", "START is empty"),
    ("semiconductor.donor_density", "1e17 cm^-3,,1e18 cm^-3", "empty item"),
    ("semiconductor.donor_density", "lognormal:1e18 cm^-3:-1:3", "SIGMA"),
    ("contact.work_function", "4.1 eV,banana", "banana"),
    ("mesh.n_nodes", "100:200:4", "takes integers"),
    ("model.geometry", "planar:sphere:2", "a range needs a numeric key"),
    ("model.geometry", "planar,cube", "'cube'"),
])
def test_bad_value_specs_raise_case_error_naming_the_key(key, spec, expected):
    with pytest.raises(CaseError) as err:
        fs.values_for(band_bending.KEYS[key], spec)
    assert key in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("vary, kwargs, expected", [
    ({"semiconductor.donor_densty": "1e23,1e24"}, {}, "did you mean 'semiconductor.donor_density'"),
    ({"model.kind": "band_bending"}, {}, "model.kind cannot be swept"),
    ({"mesh.n_nodes": "400,400"}, {}, "the values repeat"),
    ({"mesh.n_nodes": "300,400", "contact.work_function": "4.1,4.2,4.3"}, {"zip": True},
     "equal numbers of values"),
    ({"mesh.n_nodes": "300,400"}, {"overrides": {"mesh.n_nodes": 400}}, "both set"),
    ({}, {}, "nothing to vary"),
    ({"mesh.n_nodes": "300,400"}, {"seeds": 3}, "has no random seed"),
    # each point is validated as a whole case: 0.01 nm * 19999 nodes exceeds the 100 nm slab
    ({"mesh.n_nodes": "400,20000"}, {}, "sweep point 1 (mesh.n_nodes=20000)"),
])
def test_bad_sweeps_raise_case_error_before_any_run(vary, kwargs, expected, tmp_path,
                                                     monkeypatch):
    runs = CountingRun(monkeypatch)
    with pytest.raises(CaseError) as err:
        fs.sweep(CASE, vary, output_dir=tmp_path / "out", scheduler="synchronous", **kwargs)
    assert expected in str(err.value)
    assert not runs.calls and not (tmp_path / "out").exists()


def test_sweep_settings_are_checked_before_any_run(tmp_path):
    for kwargs, expected in [({"scheduler": "bogus"}, "scheduler = 'bogus'"),
                             ({"n_workers": 0}, "n_workers = 0"),
                             ({"join": "inner"}, "join = 'inner'"),
                             ({"ensemble": "mesh.n_nodes"}, "expected one of the swept keys")]:
        with pytest.raises(CaseError, match=expected.replace("(", r"\(")):
            fs.sweep(CASE, {"contact.work_function": "4.1,4.3"}, overrides=SMALL,
                     output_dir=tmp_path / "out", **kwargs)
        assert not (tmp_path / "out").exists()
    with pytest.raises(CaseError, match="output_dir is required"):
        fs.sweep(CASE, {"contact.work_function": "4.1,4.3"}, scheduler="synchronous")


def test_every_schema_unit_becomes_a_udunits_string_that_cf_xarray_reads():
    from cf_xarray.units import units as cf_units

    from fastnai.case import unit_registry

    ureg = unit_registry()
    units = {k.unit for kind in MODEL_KINDS for k in model_module(kind).KEYS.values() if k.unit}
    units |= {k.unit for kind in MODEL_KINDS
              for steps in getattr(model_module(kind), "TABLE_ARRAYS", {}).values()
              for keys in steps.values() for k in keys.values() if k.unit}
    for unit in sorted(units):
        text = sweep_plan._udunits(unit)
        assert "^" not in text and "/" not in text, (unit, text)
        ratio = cf_units.Quantity(1.0, text).to_base_units().magnitude / ureg.Quantity(
            1.0, unit).to_base_units().magnitude
        assert ratio == pytest.approx(1.0, rel=1e-12), (unit, text)


# ---------------------------------------------------------------------------------------------
# (a) a grid sweep equals point-by-point runs


def test_3x3_grid_has_the_keys_as_dimensions_with_units_and_matches_each_run(tmp_path):
    ds = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path, scheduler="synchronous")
    dims = ("semiconductor.donor_density", "contact.work_function")
    assert ds.band_bending.dims == dims and ds.n.dims == (*dims, "x")
    assert ds["semiconductor.donor_density"].values.tolist() == [1e23, 1e24, 1e25]
    assert ds["contact.work_function"].values.tolist() == [4.1, 4.3, 4.5]
    assert ds["semiconductor.donor_density"].attrs == {"long_name": "donor density",
                                                       "units": "m-3"}
    assert ds["contact.work_function"].attrs["units"] == "eV"
    assert ds.status.values.tolist() == [["ok"] * 3] * 3
    assert ds.error.values.tolist() == [[""] * 3] * 3
    assert ds.attrs["model"] == "band_bending" and ds.attrs["sweep_n_ok"] == 9
    assert fastnai.load_case(CASE).to_toml() != ds.attrs["case"]  # the base case with n_nodes
    assert "n_nodes = 400" in ds.attrs["case"]
    for i, nd in enumerate(ds["semiconductor.donor_density"].values):
        for j, wf in enumerate(ds["contact.work_function"].values):
            direct = fastnai.run(CASE, overrides={**SMALL, "semiconductor.donor_density": nd,
                                                  "contact.work_function": wf})
            point = ds.isel({dims[0]: i, dims[1]: j}).drop_vars(list(dims))
            xr.testing.assert_equal(point[list(direct.data_vars)], direct)
            for name in direct.data_vars:
                assert point[name].attrs == direct[name].attrs, name
            assert point.run_newton_iterations == direct.attrs["newton_iterations"]
    # the merged file on disk is the returned Dataset; the point files are the runs
    xr.testing.assert_identical(read_dataset(tmp_path / "sweep.nc"), ds)
    assert sorted(p.name for p in (tmp_path / "points").iterdir()) == [f"{i:06d}.nc"
                                                                       for i in range(9)]
    with open(tmp_path / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["ok"] * 9
    assert float(rows[5]["semiconductor.donor_density"]) == 1e24
    assert float(rows[5]["contact.work_function"]) == 4.5
    definition = json.loads((tmp_path / "sweep.json").read_text())
    assert definition["n_points"] == 9 and definition["overrides"] == SMALL


def test_zip_pairs_the_keys_along_sweep_point(tmp_path):
    ds = fs.sweep(CASE, ["semiconductor.donor_density=1e17 cm^-3,1e18 cm^-3,1e19 cm^-3",
                         "contact.work_function=4.1 eV:4.5 eV:3"], zip=True, overrides=SMALL,
                  output_dir=tmp_path, scheduler="synchronous")
    assert ds.band_bending.dims == ("sweep_point",)
    assert ds["contact.work_function"].dims == ("sweep_point",)
    assert ds["contact.work_function"].values.tolist() == [4.1, 4.3, 4.5]
    assert ds.sweep_point.attrs["units"] == "1"
    direct = fastnai.run(CASE, overrides={**SMALL, "semiconductor.donor_density": "1e18 cm^-3",
                                          "contact.work_function": "4.3 eV"})
    assert float(ds.band_bending[1]) == float(direct.band_bending)


def test_variables_keeps_only_the_chosen_results_in_the_merged_file(tmp_path):
    ds = fs.sweep(CASE, {"contact.work_function": "4.1,4.3"}, overrides=SMALL,
                  variables=["interface_field", "band_bending"], output_dir=tmp_path,
                  scheduler="synchronous")
    assert sorted(v for v in ds.data_vars if not v.startswith("run_")) == [
        "band_bending", "error", "interface_field", "status"]
    assert "x" not in ds.dims  # no profile kept, so no mesh coordinate
    assert "n" in read_dataset(tmp_path / "points" / "000000.nc")  # the points keep everything
    with pytest.raises(CaseError, match="'interface_feld' not in the results; did you mean "
                                        "'interface_field'"):
        fs.merge(tmp_path, variables="interface_feld", write=False)


# ---------------------------------------------------------------------------------------------
# (b) failed points


def test_a_failing_point_is_recorded_and_the_others_are_kept(tmp_path, capsys):
    # one Newton iteration without continuation cannot converge: a ConvergenceError at run time
    vary = {"solver.max_iterations": "[1, 100]", "contact.work_function": "4.1,4.3"}
    fixed = {**SMALL, "solver.continuation": False}
    ds = fs.sweep(CASE, vary, overrides=fixed, output_dir=tmp_path, scheduler="synchronous")
    assert ds.status.values.tolist() == [["failed", "failed"], ["ok", "ok"]]
    assert ds.error.values[0, 0].startswith("ConvergenceError: band_bending: Newton did not "
                                            "converge")
    assert ds.error.values[1, 1] == ""
    assert np.isnan(ds.band_bending.values[0]).all() and np.isnan(ds.n.values[0]).all()
    assert "failed or was not run" in ds.band_bending.attrs["nan_means"]
    direct = fastnai.run(CASE, overrides={**fixed, "solver.max_iterations": 100,
                                          "contact.work_function": 4.3})
    xr.testing.assert_equal(ds.isel({"solver.max_iterations": 1, "contact.work_function": 1})
                            .drop_vars(list(vary))[list(direct.data_vars)], direct)
    record = json.loads((tmp_path / "points" / "000000.failed.json").read_text())
    assert record["error_type"] == "ConvergenceError" and record["exit_status"] == 3
    xr.testing.assert_identical(read_dataset(tmp_path / "sweep.nc"), ds)
    # the command line says so and exits 3 (no convergence); a resume tries them again
    status = run_cli(str(CASE), "--vary", "solver.max_iterations=[1, 100]", "--vary",
                     "contact.work_function=4.1,4.3", "--set", "solver.continuation=false",
                     "--set", "mesh.n_nodes=400", "--scheduler", "synchronous", "-o",
                     str(tmp_path))
    out = capsys.readouterr().out
    assert status == 3
    assert "2 ok, 2 failed, 0 missing of 4 points" in out
    assert "point 0 (solver.max_iterations=1, contact.work_function=4.1 eV): ConvergenceError" in out


def test_a_point_failing_with_another_error_gives_exit_status_1(tmp_path, monkeypatch, capsys):
    def broken(case, overrides=None, **kwargs):
        if overrides["contact.work_function"] == 4.3:
            raise ZeroDivisionError("a bug in a model")
        return REAL_RUN(case, overrides, **kwargs)

    monkeypatch.setattr(api, "run", broken)
    status = run_cli(str(CASE), "--vary", "contact.work_function=4.1,4.3", "--set",
                     "mesh.n_nodes=400", "--scheduler", "synchronous", "-o", str(tmp_path / "r.nc"))
    assert status == 1
    ds = read_dataset(tmp_path / "r.nc")  # -o FILE.nc: the merged file; points in r_sweep/
    assert ds.status.values.tolist() == ["ok", "failed"]
    assert ds.error.values[1].startswith("ZeroDivisionError: a bug in a model\nTraceback")
    assert (tmp_path / "r_sweep" / "points" / "000001.failed.json").is_file()
    assert "some points failed" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# (c) kill and resume


def test_a_killed_and_resumed_sweep_equals_an_uninterrupted_one_and_reruns_only_missing_points(
        tmp_path, monkeypatch):
    whole = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "whole",
                     scheduler="synchronous")
    # Ctrl-C during the 5th point: 4 points are on disk, no merged file
    runs = CountingRun(monkeypatch, stop_at=4)
    with pytest.raises(KeyboardInterrupt):
        fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "b", scheduler="synchronous")
    assert len(list((tmp_path / "b" / "points").glob("*.nc"))) == 4
    assert not (tmp_path / "b" / "sweep.nc").exists()
    with open(tmp_path / "b" / "manifest.csv", newline="") as fh:
        assert [r["status"] for r in csv.DictReader(fh)] == ["ok"] * 4 + ["missing"] * 5
    # resume: only the 5 missing points run
    runs = CountingRun(monkeypatch)
    resumed = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "b",
                       scheduler="synchronous")
    assert len(runs.calls) == 5
    assert [c["semiconductor.donor_density"] for c in runs.calls] == [1e24, 1e24, 1e25, 1e25, 1e25]
    xr.testing.assert_identical(comparable(resumed), comparable(whole))
    # a lost job: two point files gone; the resume reruns exactly those two
    (tmp_path / "b" / "points" / "000002.nc").unlink()
    (tmp_path / "b" / "points" / "000007.nc").unlink()
    runs = CountingRun(monkeypatch)
    again = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "b",
                     scheduler="synchronous")
    assert [(c["semiconductor.donor_density"], c["contact.work_function"]) for c in runs.calls] \
        == [(1e23, 4.5), (1e25, 4.3)]
    xr.testing.assert_identical(comparable(again), comparable(whole))
    # nothing missing: nothing runs; resume=False runs everything again
    runs = CountingRun(monkeypatch)
    fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "b", scheduler="synchronous")
    assert runs.calls == []
    fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "b", scheduler="synchronous",
             resume=False)
    assert len(runs.calls) == 9


def test_resume_refuses_a_folder_of_another_sweep(tmp_path):
    fs.sweep(CASE, {"contact.work_function": "4.1,4.3"}, overrides=SMALL, output_dir=tmp_path,
             scheduler="synchronous")
    with pytest.raises(CaseError, match="holds a different sweep"):
        fs.sweep(CASE, {"contact.work_function": "4.1,4.5"}, overrides=SMALL, output_dir=tmp_path,
                 scheduler="synchronous")
    ds = fs.sweep(CASE, {"contact.work_function": "4.1,4.5"}, overrides=SMALL,
                  output_dir=tmp_path, scheduler="synchronous", resume=False)
    assert ds["contact.work_function"].values.tolist() == [4.1, 4.5]


def test_cli_interrupt_is_exit_status_4_and_the_same_command_resumes(tmp_path, monkeypatch):
    args = [str(CASE), "--vary", "contact.work_function=4.1,4.3,4.5", "--set", "mesh.n_nodes=400",
            "--scheduler", "synchronous", "-o", str(tmp_path), "-q"]
    CountingRun(monkeypatch, stop_at=1)
    with pytest.raises(Interrupted, match=r"1 of 3 points are finished") as err:
        run_cli(*args)
    assert err.value.exit_status == 4
    runs = CountingRun(monkeypatch)
    assert run_cli(*args) == 0
    assert len(runs.calls) == 2


# ---------------------------------------------------------------------------------------------
# (d) Dask: processes with an empty Numba cache, threads, addresses and cluster objects


def test_two_worker_processes_with_an_empty_numba_cache(tmp_path, monkeypatch):
    cache = tmp_path / "numba_cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # the workers inherit it
    vary = {"contact.work_function": "4.1 eV:4.4 eV:4"}
    ds = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "out", scheduler="local",
                  n_workers=2, n_threads=1)
    assert ds.status.values.tolist() == ["ok"] * 4
    assert ds.run_numba_threads.values.tolist() == [1.0] * 4  # --threads reached the workers
    reference = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "ref",
                         scheduler="synchronous")
    xr.testing.assert_identical(comparable(ds), comparable(reference))
    # the workers compiled into the new cache folder (index and data files)
    assert list(cache.rglob("*.nbi")) and list(cache.rglob("*.nbc"))


def test_a_sweep_from_a_shared_install_caches_kernels_only_in_numba_cache_dir(tmp_path):
    # A shared (read-only) install: the package is a fresh copy, NUMBA_CACHE_DIR a writable
    # folder, and the sweep runs from the command line on 2 worker processes. Every compiled
    # kernel must land in NUMBA_CACHE_DIR and nothing in the package's folders. (Permissions
    # cannot make the copy read-only when the tests run as root, so this checks where the
    # cache goes, which is what makes a read-only install work.)
    install = tmp_path / "shared_install"
    shutil.copytree(REPO / "fastnai", install / "fastnai",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    cache = tmp_path / "numba_cache"
    env = {**os.environ, "PYTHONPATH": str(install), "NUMBA_CACHE_DIR": str(cache),
           "NUMBA_NUM_THREADS": "1"}
    script = ("import sys, fastnai, fastnai.cli; print(fastnai.__file__); "
              "sys.exit(fastnai.cli.main(sys.argv[1:]))")
    proc = subprocess.run(
        [sys.executable, "-c", script, "sweep", str(CASE), "--vary", "contact.work_function=4.1,4.4",
         "--set", "mesh.n_nodes=400", "--workers", "2", "--threads", "1", "-o",
         str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == str(install / "fastnai" / "__init__.py")
    assert "2 ok, 0 failed" in proc.stdout
    # Numba names a cache folder after the source folder's full path: every one is the copy's
    from numba.core.caching import _CacheLocator

    folders = {f.parent.name for f in cache.rglob("*.nbi")}
    copy = {_CacheLocator.get_suitable_cache_subpath(str(d / "x.py"))
            for d in [install / "fastnai", *(install / "fastnai").rglob("*")] if d.is_dir()}
    assert folders and folders <= copy
    assert not [f for f in install.rglob("*") if f.suffix in (".nbi", ".nbc")]
    ds = read_dataset(tmp_path / "out" / "sweep.nc")
    assert ds.status.values.tolist() == ["ok", "ok"]


def test_threads_cluster_address_and_cluster_object_give_the_synchronous_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    vary = {"semiconductor.donor_density": "1e17 cm^-3,1e18 cm^-3",
            "contact.work_function": "4.1,4.3"}
    reference = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "ref",
                         scheduler="synchronous")
    threads = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "threads",
                       scheduler="threads", n_workers=2)
    xr.testing.assert_identical(comparable(threads), comparable(reference))
    # a cluster started elsewhere (as dask-jobqueue does): by object and by its address
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  **fs.LOCAL_CLUSTER_QUIET) as cluster:
        by_object = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "object",
                             scheduler=cluster)
        by_address = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "address",
                              scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            by_client = fs.sweep(CASE, vary, overrides=SMALL, output_dir=tmp_path / "client",
                                 scheduler=client)
            assert client.status == "running"  # a given client is left open
    for ds in (by_object, by_address, by_client):
        xr.testing.assert_identical(comparable(ds), comparable(reference))


# ---------------------------------------------------------------------------------------------
# batch array jobs (SLURM stand-in)


def test_slurm_array_tasks_then_merge_equal_the_dask_sweep(tmp_path, monkeypatch, capsys):
    vary = [f"{k}={v}" for k, v in GRID.items()]
    args = [str(CASE), *sum((["--vary", v] for v in vary), []), "--set", "mesh.n_nodes=400",
            "-o", str(tmp_path / "array"), "--points-per-task", "4"]
    assert run_cli(*args, "--dry-run") == 0
    assert "9 points" in capsys.readouterr().out.splitlines()[0]
    # task 2 first, then 0 and 1, as a scheduler may order them; each reads its index
    for index in ("2", "0", "1"):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", index)
        assert run_cli(*args, "--array-task") == 0
    assert len(list((tmp_path / "array" / "points").glob("*.nc"))) == 9
    with pytest.raises(CaseError, match="tasks 0 to 2"):
        fs.run_array_task(CASE, GRID, overrides=SMALL, index=3, points_per_task=4,
                          output_dir=tmp_path / "array")
    assert run_cli(*args, "--merge") == 0
    merged = read_dataset(tmp_path / "array" / "sweep.nc")
    reference = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path / "ref",
                         scheduler="synchronous")
    xr.testing.assert_identical(comparable(merged), comparable(reference))
    # a rerun of a task skips its finished points
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    records = fs.run_array_task(CASE, GRID, overrides=SMALL, points_per_task=4,
                                output_dir=tmp_path / "array")
    assert [r["status"] for r in records] == ["skipped"] * 4


def test_merge_of_an_unfinished_array_marks_missing_points_and_exits_1(tmp_path, capsys):
    fs.run_array_task(CASE, GRID, overrides=SMALL, index=0, points_per_task=4, output_dir=tmp_path)
    status = run_cli(str(CASE), *sum((["--vary", f"{k}={v}"] for k, v in GRID.items()), []),
                     "--set", "mesh.n_nodes=400", "-o", str(tmp_path), "--merge")
    assert status == 1
    ds = read_dataset(tmp_path / "sweep.nc")
    assert np.ravel(ds.status.values).tolist() == ["ok"] * 4 + ["missing"] * 5
    assert "some points are missing" in capsys.readouterr().out


def test_array_index_comes_from_slurm_or_pbs(monkeypatch):
    for name in fs.ARRAY_INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CaseError, match="no array index"):
        fs.array_index_from_environment()
    monkeypatch.setenv("PBS_ARRAY_INDEX", "7")
    assert fs.array_index_from_environment() == 7
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "x")
    with pytest.raises(CaseError, match="SLURM_ARRAY_TASK_ID = 'x'"):
        fs.array_index_from_environment()


# ---------------------------------------------------------------------------------------------
# ragged dimensions


def test_points_on_different_meshes_merge_padded_outer_or_refused(tmp_path):
    vary = {"semiconductor.thickness": "50 nm,100 nm", "mesh.n_nodes": "300,400"}
    padded = fs.sweep(CASE, vary, output_dir=tmp_path, scheduler="synchronous")
    assert padded.n.dims == ("semiconductor.thickness", "mesh.n_nodes", "x_index")
    assert padded.x.dims == ("semiconductor.thickness", "mesh.n_nodes", "x_index")
    assert padded.sizes["x_index"] == 400
    assert padded.attrs["sweep_ragged_dims"] == "x"
    direct = fastnai.run(CASE, overrides={"semiconductor.thickness": 5e-8, "mesh.n_nodes": 300})
    point = padded.isel({"semiconductor.thickness": 0, "mesh.n_nodes": 0})
    np.testing.assert_array_equal(point.x.values[:300], direct.x.values)
    np.testing.assert_array_equal(point.n.values[:300], direct.n.values)
    assert np.isnan(point.n.values[300:]).all()
    assert "ragged dimension" in padded.n.attrs["nan_means"]
    outer = fs.merge(tmp_path, join="outer", write=False)
    assert outer.n.dims == ("semiconductor.thickness", "mesh.n_nodes", "x")
    np.testing.assert_array_equal(outer.n.sel({"semiconductor.thickness": 5e-8, "mesh.n_nodes": 300})
                                  .sel(x=direct.x.values).values, direct.n.values)
    with pytest.raises(FastnaiError, match="dimension 'x' differs between the points"):
        fs.merge(tmp_path, join="exact", write=False)


# ---------------------------------------------------------------------------------------------
# ensembles


def test_particle_size_ensemble_adds_volume_weighted_mean_and_spread(tmp_path):
    case = {"model": {"kind": "drift_diffusion", "geometry": "sphere", "electrostatics": False},
            "semiconductor": {"material": "anatase-TiO2"}, "contact": {"material": "TiC"},
            "protocol": [{"step": "constant_current", "c_rate": 2.0, "cutoff_voltage": 0.1}]}
    key = "semiconductor.thickness"  # mesh.n_nodes by default: one per hop over each radius
    ds = fs.sweep(case, {key: "lognormal:20 nm:0.3:3"}, ensemble=key, weights="volume",
                  output_dir=tmp_path, scheduler="synchronous")
    radii = ds[key].values
    w = radii**3 / np.sum(radii**3)
    np.testing.assert_allclose(ds.ensemble_weight.values, w, rtol=1e-15)
    assert int(ds.ensemble_count) == 3
    # a scalar per particle: the weighted mean and the weighted (population) spread
    x = ds.one_c_current_density.values
    assert float(ds.one_c_current_density_mean) == pytest.approx(np.sum(w * x), rel=1e-13)
    assert float(ds.one_c_current_density_std) == pytest.approx(
        np.sqrt(np.sum(w * (x - np.sum(w * x)) ** 2)), rel=1e-12)
    # a time series: each member interpolated onto the union of the time steps all cover
    grid = ds.t_ensemble.values
    ends = [np.nanmax(ds.t.values[m]) for m in range(3)]
    assert grid[0] == 0.0 and grid[-1] == min(ends)
    members = []
    for m in range(3):
        t, v = ds.t.values[m], ds.voltage.values[m]
        keep = np.isfinite(t)
        members.append(np.interp(grid, t[keep], v[keep]))
    np.testing.assert_allclose(ds.voltage_mean.values, np.tensordot(w, members, axes=1),
                               rtol=1e-13)
    assert ds.voltage_mean.attrs["units"] == "V"
    assert ds.voltage_mean.attrs["cell_methods"] == f"{key}: mean"
    assert "c_Na" in ds.attrs["ensemble_skipped"]  # (t_profile, r): two ragged dimensions
    xr.testing.assert_identical(read_dataset(tmp_path / "sweep.nc"), ds)


def test_ensemble_over_one_key_of_a_grid_with_ragged_meshes(tmp_path):
    # x differs between thicknesses, not between donor densities: per thickness, the common
    # grid of the members is their own x, so the mean is the plain mean of the profiles
    ds = fs.sweep(CASE, {"semiconductor.thickness": "50 nm,100 nm",
                         "semiconductor.donor_density": "1e23,2e23,4e23"},
                  overrides={"mesh.n_nodes": 300}, ensemble="semiconductor.donor_density",
                  output_dir=tmp_path, scheduler="synchronous")
    assert ds.n_mean.dims == ("semiconductor.thickness", "x_ensemble_index")
    assert ds.x_ensemble.dims == ("semiconductor.thickness", "x_ensemble_index")
    for k in range(2):
        members = ds.n.isel({"semiconductor.thickness": k}).values
        np.testing.assert_allclose(ds.n_mean.values[k, :300], members.mean(axis=0), rtol=1e-14)
        np.testing.assert_allclose(ds.n_std.values[k, :300], members.std(axis=0, ddof=1),
                                   rtol=1e-12)
        np.testing.assert_array_equal(ds.x_ensemble.values[k, :300], ds.x.values[k, 0])
    np.testing.assert_allclose(ds.interface_field_mean.values,
                               ds.interface_field.mean("semiconductor.donor_density").values,
                               rtol=1e-14)
    assert ds.ensemble_count.values.tolist() == [3, 3]
    xr.testing.assert_identical(read_dataset(tmp_path / "sweep.nc"), ds)


def test_seed_ensemble_of_nucleation_gives_mean_and_sample_std(tmp_path):
    overrides = {"mesh.nx": 16, "mesh.ny": 8, "separator.n_nodes": 10,
                 "protocol.0.capacity": "0.0003 mA h cm^-2"}
    ds = fs.sweep(REPO / "cases" / "deposition_na_vn.toml", overrides=overrides, seeds=3,
                  output_dir=tmp_path, scheduler="synchronous")
    assert ds["nucleation.seed"].values.tolist() == [0, 1, 2]
    assert ds.attrs["ensemble_dim"] == "nucleation.seed"
    positions = ds.site_position.values  # the jittered site positions differ between seeds
    assert not np.array_equal(positions[0], positions[1])
    np.testing.assert_allclose(ds.site_position_mean.values, positions.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(ds.site_position_std.values, positions.std(axis=0, ddof=1),
                               rtol=1e-12)
    assert ds.overpotential_mean.dims == ("t_ensemble",)
    assert np.all(np.isfinite(ds.overpotential_mean.values))
    # each seed is the run with that seed
    direct = fastnai.run(REPO / "cases" / "deposition_na_vn.toml",
                         overrides={**overrides, "nucleation.seed": 2})
    np.testing.assert_array_equal(ds.site_position.values[2], direct.site_position.values)
    n = direct.sizes["t"]
    np.testing.assert_array_equal(ds.overpotential.values[2, :n], direct.overpotential.values)


# ---------------------------------------------------------------------------------------------
# sweep files and figures


def test_sweep_files_plan_and_the_band_bending_one_runs_with_figures(tmp_path, capsys):
    assert {p.stem for p in SWEEPS} >= {"band_bending_ticn_tio2_donor_work_function",
                                        "deposition_na_vn_current_density",
                                        "deposition_bare_na_seeds",
                                        "drift_diffusion_tio2_particle_sizes"}
    for path in SWEEPS:
        spec = fs.read_sweep_file(path)
        plan = fs.plan_sweep(spec["case"], spec.get("vary"), overrides=spec.get("overrides"),
                             seeds=spec.get("seeds"))
        assert plan.n_points >= 3, path.name
        assert spec["output_dir"].startswith("results/"), path.name
    path = REPO / "sweeps" / "band_bending_ticn_tio2_donor_work_function.toml"
    status = run_cli(str(path), "--set", "mesh.n_nodes=400", "--scheduler", "synchronous",
                     "-o", str(tmp_path))
    assert status == 0
    ds = read_dataset(tmp_path / "sweep.nc")
    assert dict(ds.sizes)["semiconductor.donor_density"] == 5
    assert dict(ds.sizes)["contact.work_function"] == 4
    for var in ("band_bending", "interface_field", "sheet_electron_density"):
        assert (tmp_path / f"sweep_{var}.png").read_bytes()[:8] == PNG_MAGIC
    # accumulation: the band bending grows with the work-function gap it has to screen
    assert np.all(np.diff(ds.band_bending.values, axis=1) < 0)


def test_inline_sweep_file_and_argument_precedence(tmp_path):
    path = tmp_path / "inline.toml"
    path.write_text('[sweep]\noutput_dir = "ignored"\njoin = "exact"\n'
                    '[sweep.vary]\ncontact.work_function = "4.1 eV,4.3 eV"\n'
                    '[sweep.set]\nmesh.n_nodes = 300\n'
                    '[model]\nkind = "band_bending"\n'
                    '[semiconductor]\nmaterial = "anatase-TiO2"\nthickness = "50 nm"\n'
                    '[contact]\nmaterial = "TiC"\n')
    ds = fs.sweep(path, {"semiconductor.donor_density": "1e23,1e24"},
                  overrides={"mesh.n_nodes": 200}, output_dir=tmp_path / "out",
                  scheduler="synchronous")
    assert ds.attrs["sweep_keys"] == "contact.work_function, semiconductor.donor_density"
    assert ds.attrs["sweep_join"] == "exact" and ds.sizes["x"] == 200
    bad = tmp_path / "bad.toml"
    bad.write_text('[sweep]\ncase = "x.toml"\nvray = {}\n')
    with pytest.raises(CaseError, match="did you mean 'vary'"):
        fs.sweep(bad, output_dir=tmp_path / "bad")


def test_plot_sweep_draws_values_series_and_ensemble_bands(tmp_path):
    ds = fs.sweep(CASE, GRID, overrides=SMALL, output_dir=tmp_path, scheduler="synchronous")
    assert fs.plot_sweep(ds, "interface_field", tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC
    one = ds.isel({"contact.work_function": 0})
    assert fs.plot_sweep(one, "Ec", tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(FastnaiError, match="select them first"):
        fs.plot_sweep(ds.assign(n2=ds.n.expand_dims(extra=2)), "n2", tmp_path / "c.png")
    stats = fs.ensemble_stats(ds, "contact.work_function")
    assert fs.plot_sweep(stats, "band_bending_mean", tmp_path / "d.png").is_file()


def test_array_task_requires_resume_and_modes_exclude_each_other(tmp_path):
    base = [str(CASE), "--vary", "contact.work_function=4.1,4.3", "-o", str(tmp_path)]
    with pytest.raises(CaseError, match="--no-resume with --array-task"):
        run_cli(*base, "--array-task", "0", "--no-resume")
    with pytest.raises(CaseError, match="exclude each other"):
        run_cli(*base, "--merge", "--dry-run")
    with pytest.raises(CaseError, match="--threads = 0"):
        run_cli(*base, "--threads", "0")
    with pytest.raises(CaseError, match="not a sweep folder"):
        run_cli(*base, "--merge")


def test_every_model_kind_has_a_swept_key_unit_or_is_dimensionless():
    # every numeric key a sweep can vary gets a coordinate unit
    for kind in MODEL_KINDS:
        for key in model_module(kind).KEYS.values():
            units = sweep_plan._coord_units(key)
            if key.kind in (schema.QUANTITY, schema.NUMBER, schema.INTEGER):
                assert units, key.name
            else:
                assert units is None, key.name


def test_clean_output_folder_is_left_alone_on_bad_input(tmp_path):
    shutil.copy(CASE, tmp_path / "case.toml")
    with pytest.raises(CaseError):
        run_cli(str(tmp_path / "case.toml"), "--vary", "contact.work_function=4.1:4.3",
                "-o", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
