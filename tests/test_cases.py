"""Every case in cases/ loads, runs (on a shrunk mesh) and is used by a test or validation."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import fastnai

REPO = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((REPO / "cases").glob("*.toml"))


def test_there_are_cases_for_the_seed_system():
    names = {p.stem for p in CASE_FILES}
    assert {"band_bending_ticn_tio2", "band_bending_ticn_tio2_dot",
            "band_bending_ticn_tio2_xps_bulk", "band_bending_tio2_pristine",
            "band_bending_schottky_depletion", "band_bending_cowley_sze",
            "drift_diffusion_heterostructure_cv", "drift_diffusion_pristine_cv",
            "drift_diffusion_ticn_tio2_discharge"} <= names


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case_runs_on_a_shrunk_mesh(path):
    raw = tomllib.loads(path.read_text())
    assert path.stem.startswith(raw["model"]["kind"] + "_"), "cases are named <kind>_<system>.toml"
    case = fastnai.load_case(path)
    if case.kind == "film_stress":
        shrunk = {"mesh.film_layers": min(case["mesh.film_layers"], 60)}
    elif case.kind == "deposition":
        shrunk = {"mesh.nx": min(case["mesh.nx"], 48), "mesh.ny": min(case["mesh.ny"], 40)}
        if case["mesh.nz"] > 1:
            shrunk = {"mesh.nx": 16, "mesh.nz": 8, "mesh.ny": 24}
        for k, st in enumerate(case["protocol"]):
            if st.get("capacity") is not None:
                shrunk[f"protocol.{k}.capacity"] = "0.005 mA h cm^-2"
            elif st.get("duration") is not None:
                shrunk[f"protocol.{k}.duration"] = min(st["duration"], 20.0)
            if st.get("rest_duration"):
                shrunk[f"protocol.{k}.rest_duration"] = 5.0
    elif case["mesh.n_nodes"] is not None:
        shrunk = {"mesh.n_nodes": min(case["mesh.n_nodes"], 600)}
    else:
        shrunk = {}
    ds = fastnai.run(path, overrides=shrunk)
    for name, var in ds.data_vars.items():
        if "nan_means" not in var.attrs:
            assert np.all(np.isfinite(var.values)), name
    if case.kind == "band_bending":
        assert ds.attrs["newton_iterations"] > 0
        assert math.isfinite(float(ds.interface_field))
    elif case.kind == "film_stress":
        assert ds.attrs["newton_iterations"] > 0
        if case["model.mechanics"] == "laminate":
            assert ds.attrs["max_scaled_residual"] < 1e-9
    elif case.kind == "deposition":
        assert ds.attrs["solver_n_steps"] > 0
        assert float(np.abs(ds.deposited_charge).max()) > 0.0
    else:
        assert ds.attrs["solver_n_equilibrium_iterations"] > 0
        if "impedance_real" in ds:  # equilibria and spectra: no time steps
            assert np.all(np.isfinite(ds.impedance_real.values))
            assert np.all(ds.impedance_real.values > 0.0)
        else:
            assert ds.attrs["solver_n_steps"] > 0


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_every_case_is_used_by_a_test_or_by_validation(path):
    sources = [REPO / "fastnai" / "validation.py", *sorted((REPO / "tests").rglob("test_*.py"))]
    users = [s for s in sources if path.stem in s.read_text() and s.name != "test_cases.py"]
    assert users, f"{path.name} is run by no test and no validation row"
