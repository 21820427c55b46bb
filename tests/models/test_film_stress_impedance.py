"""film_stress impedance (``eis`` steps in diffusion mode) against closed forms, the model's own
equilibrium and its run contracts (SPEC 3.3, 3.6).

Closed form: a uniform film with no swelling (so no stress coupling and no moving frame), the
ideal OCV U = U0 - V_t ln(theta/(1-theta)), a blocking substrate and Butler-Volmer kinetics of
exchange current i0 = i0_ref 2 sqrt(theta (1 - theta)) behind a double layer:

    Z = 1 / (i w C_dl + 1 / (R_ct + R_D coth(sqrt s) / sqrt s)),
    s = i w L^2 / D,   R_D = (-dU/dc) L / (F D),   R_ct = R T / (F i0).

The film's Butler-Volmer current sees the top cell's theta (its centre, h/2 below the surface),
a first-order surface error of R_D h / (2L) in Re Z (1e-5 ohm m2 on 240 cells): the closed-form
check runs 1000 cells, where it is below 5e-4 of |Z|.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import constants

import fastnai
from fastnai import spectra
from fastnai._kernels import film_diffusion as kfd
from fastnai._kernels import film_impedance as kfi
from fastnai.errors import CaseError
from fastnai.io import read_checkpoint
from fastnai.lifecycle import Lifecycle
from fastnai.models import film_stress as fs
from fastnai.models.film_stress import impedance as fsi

F = constants.physical_constants["Faraday constant"][0]
L = 600e-9
REPO = Path(__file__).resolve().parents[2]


def film(protocol, dotted=None, **sections):
    """A diffusion-mode film case (uniform Bi0.33Sb0.67 unless told)."""
    cfg = {"model": {"kind": "film_stress", "sodiation": "diffusion"},
           "composition": {"profile": "uniform", "mean": 0.33}, "protocol": protocol}
    for name, table in sections.items():
        cfg.setdefault(name, {}).update(table)
    return fastnai.load_case(copy.deepcopy(cfg), dotted or {})


def spectrum(ds, k=None):
    z = ds.impedance_real.values + 1j * ds.impedance_imag.values
    return ds.frequency.values, (z if k is None else z[k])


# ---------------------------------------------------------------------------------------------
# the closed form


@pytest.mark.parametrize("theta, i0_ref, cdl, n, d", [(0.3, 5.0, 20.0, 1000, 1e-15),
                                                      (0.7, 2.0, 50.0, 1000, 1e-15),
                                                      (0.5, 10.0, 5.0, 2000, 1e-15)])
def test_uniform_film_without_stress_matches_the_closed_form(theta, i0_ref, cdl, n, d):
    """The spectrum equals C_dl || (R_ct + R_D coth(sqrt s)/sqrt s) within 1e-3 wherever the
    mesh resolves sqrt(D/w) by 16 cells at the surface, over >= 4 decades around D/L^2."""
    f_char = d / L**2 / (2 * math.pi)
    c = film([{"step": "eis", "frequency_min": f_char * 1e-4, "frequency_max": f_char * 1e6,
               "points_per_decade": 5}],
             {"model.stress_coupling": False, "initial.soc": theta,
              "interface.exchange_current": i0_ref, "interface.double_layer_capacitance": cdl,
              "mesh.film_layers": n},
             bismuth={"diffusivity": d, "swelling": 0.0},
             antimony={"diffusivity": d, "swelling": 0.0})
    ds = fastnai.run(c, progress=False)
    f, z = spectrum(ds)
    sc = fs.build_transport(c, fs.build(c))
    c_max, vt = float(sc.c_max[-1]), float(sc.sc[kfd.S_VT])
    # -dU/dc from the model's own OCV at the DC state (central difference in theta)
    e = 1e-6
    du_dtheta = (kfd.ocv(theta + e, sc.sc[kfd.S_U0], sc.sc[kfd.S_OMEGA_U], vt)
                 - kfd.ocv(theta - e, sc.sc[kfd.S_U0], sc.sc[kfd.S_OMEGA_U], vt)) / (2 * e)
    r_d = -du_dtheta / c_max * L / (F * d)
    r_ct = vt / (i0_ref * 2.0 * math.sqrt(theta * (1.0 - theta)))
    w = 2 * math.pi * f
    s = np.sqrt(1j * w * L**2 / d)
    exact = 1.0 / (1j * w * cdl + 1.0 / (r_ct + r_d / np.tanh(s) / s))
    resolved = np.sqrt(d / w) >= 16 * L / n
    assert f[resolved].min() <= f_char / 100 and f[resolved].max() >= f_char * 100
    err = np.abs(z - exact) / np.abs(exact)
    assert err[resolved].max() < 1e-3, err[resolved].max()
    assert float(ds.spectrum_theta) == pytest.approx(theta, rel=1e-12)
    assert float(ds.spectrum_drift_ratio) == 0.0  # a uniform state at open circuit is steady
    assert float(ds.impedance_phase[-1]) < -80.0  # the double layer shorts the top frequencies


def test_admittance_kernel_matches_a_dense_complex_solve():
    """Tridiagonal plus rank 2 (Sherman-Morrison-Woodbury) against numpy.linalg.solve."""
    rng = np.random.default_rng(7)
    n = 12
    lower, upper = -rng.uniform(0.5, 1, n), -rng.uniform(0.5, 1, n)
    diag = 3.0 + rng.uniform(0, 1, n)
    mass, rhs = rng.uniform(0.5, 2, n), rng.normal(size=n)
    rank_u, rank_v = 0.1 * rng.normal(size=(2, n)), 0.1 * rng.normal(size=(2, n))
    omegas = np.array([1e-3, 0.7, 40.0])
    out = np.empty(3, dtype=complex)
    kfi.admittance(lower, diag, upper, mass, rank_u, rank_v, rhs, 0.3, omegas, out)
    for w, y in zip(omegas, out, strict=True):
        a = np.diag(diag + 1j * w * mass) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
        x = np.linalg.solve(a + rank_u.T @ rank_v, rhs)
        assert y == pytest.approx(-1j * w * F * np.sum(mass * x) + 1j * w * 0.3, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# with the stress coupling: the model's own equilibrium


#: an anodic pulse and a long rest: every film point unloads elastically inside its yield
#: surface (from compressive flow at -Y(0.3)), so perturbations of 0.2 mV stay elastic
PULSE_AND_REST = [{"step": "constant_current", "c_rate": 0.1, "direction": "charge",
                   "cutoff_voltage": 2.0, "max_duration": 100.0},
                  {"step": "rest", "duration": 20 * L**2 / 1e-16}]
COUPLED = {"composition.profile": "process", "mesh.film_layers": 30, "initial.soc": 0.3,
           "solver.rtol": 1e-5}


def test_coupled_low_frequency_limit_is_the_equilibrium_capacitance():
    """dQ/dV of the film's own equilibrium (two long constant-voltage holds at V -+ 0.2 mV,
    plastic strain unchanged) equals the spectrum's low-frequency capacitance
    1 / (w (-Im Z)) within 1e-3 (2.5e-6 measured); the spectrum passes the Kramers-Kronig test."""
    eis = {"step": "eis", "frequency_min": 1e-9, "frequency_max": 1e3, "points_per_decade": 6}
    ds = fastnai.run(film(PULSE_AND_REST + [eis], COUPLED), progress=False)
    assert fs.coupled(film(PULSE_AND_REST, COUPLED))
    f, z = spectrum(ds)
    c_eis = -1.0 / (2 * math.pi * f[0] * z.imag[0])
    v1, delta = float(ds.spectrum_voltage), 2e-4
    hold = 20 * L**2 / 1e-16
    fd = fastnai.run(film(PULSE_AND_REST + [
        {"step": "constant_voltage", "voltage": v1 + delta, "duration": hold},
        {"step": "constant_voltage", "voltage": v1 - delta, "duration": hold}], COUPLED),
        progress=False)
    step = fd.protocol_step.values
    last = [int(np.nonzero(step == k)[0][-1]) for k in (1, 2, 3)]
    inventory = fd.na_inventory.values[last]
    assert inventory[0] == float(ds.na_inventory[-1])  # the same rested state
    plastic = fd.plastic_strain.values
    np.testing.assert_array_equal(plastic[last[2]], plastic[last[0]])  # elastic perturbations
    c_fd = -F * (inventory[1] - inventory[2]) / (2 * delta)
    assert c_eis == pytest.approx(c_fd, rel=1e-3)
    kk = spectra.kramers_kronig(f, z)
    assert kk["valid"], kk["max_residual"]
    assert float(ds.spectrum_drift_ratio) < 1e-3


def test_linearisation_is_the_jacobian_of_the_film_equations_at_frozen_plastic_strain():
    """T + u v^T and -dK/dV of the linearisation against central differences of the model's
    residual (film_diffusion.assemble) with sigma_h from the laminate balanced at each theta
    from the committed history with the yield switched off (plastic strain frozen)."""
    from fastnai._kernels import laminate as lam

    c = film([{"step": "rest", "duration": 1.0}], {"mesh.film_layers": 8, "initial.soc": 0.3,
                                                    "composition.profile": "process"})
    stack, tr = fs.build(c), fs.build_transport(c, fs.build(c))
    cell = fs.FilmCell(c, stack, tr)
    y = np.linspace(0.28, 0.33, 8)
    cell.record(0.0, y)  # commits the plastic state at y
    lin = fsi.Linearisation(cell, y, cell.voltage(y, 0.0) + 1e-3)
    n, n_layers = y.size, stack.z_faces.size - 1
    elastic = np.full(n_layers, np.inf)
    form, frame, mode = cell._mech

    def residual(theta, voltage):
        layers = np.zeros((1, n_layers))
        layers[0, stack.film] = theta
        stress, result = np.empty((1, 2 * n_layers)), np.zeros((1, lam.N_RESULT))
        lam.laminate_sweep(stack.z_faces, layers, stack.beta, stack.modulus0, stack.modulus1,
                           elastic, elastic, stack.hardening, form, frame, mode, 1, 1e-15, 100,
                           cell.history.copy(), stress, np.empty_like(stress), result)
        points = stress[0, stack.film_points]
        sc = lin.sc.copy()
        sc[kfd.S_VALUE] = voltage
        res = np.zeros(n)
        kfd.assemble(theta, np.zeros(n), 0.0, 1.0, tr.h, tr.c_max, tr.d_cell, tr.beta,
                     (points[0::2] + points[1::2]) / 3.0, sc, np.zeros(n), np.zeros(n),
                     np.zeros(n), res, np.zeros(n))
        return res

    jac = (np.diag(lin.diag) + np.diag(lin.lower[1:], -1) + np.diag(lin.upper[:-1], 1)
           + lin.rank_u.T @ lin.rank_v)
    e = 1e-6
    fd = np.column_stack([(residual(y + e * np.eye(n)[k], lin.voltage)
                           - residual(y - e * np.eye(n)[k], lin.voltage)) / (2 * e)
                          for k in range(n)])
    assert np.abs(jac - fd).max() < 1e-5 * np.abs(fd).max()
    assert np.abs(lin.rank_u).max() > 0.0 and lin.sigma_mismatch < 1e-12
    dv = (residual(y, lin.voltage + e) - residual(y, lin.voltage - e)) / (2 * e)
    np.testing.assert_allclose(-lin.rhs, dv, rtol=1e-6, atol=1e-12 * np.abs(dv).max())


# ---------------------------------------------------------------------------------------------
# the run: unchanged by eis, resumable


RUN = [{"step": "constant_current", "c_rate": 1.0, "cutoff_voltage": 0.0, "max_duration": 300.0},
       {"step": "eis", "frequency_min": 1e-3, "frequency_max": 1e3, "points_per_decade": 3},
       {"step": "rest", "duration": 3000.0},
       {"step": "eis", "frequency_min": 1e-3, "frequency_max": 1e3, "points_per_decade": 3}]
SMALL = {"mesh.film_layers": 20, "initial.soc": 0.1}


def test_an_eis_step_leaves_the_run_unchanged(tmp_path):
    """The same trajectory with and without the eis steps (the first after a current step: its
    state drifts, and a warning says so); the spectra survive netCDF."""
    with pytest.warns(RuntimeWarning, match="drifts"):
        with_eis = fastnai.run(film(RUN, SMALL), progress=False)
    without = fastnai.run(film([RUN[0], RUN[2]], SMALL), progress=False)
    for name in ("t", "voltage", "current_density", "theta", "sigma_xx", "plastic_strain",
                 "na_inventory", "substrate_curvature"):
        np.testing.assert_array_equal(with_eis[name].values, without[name].values, err_msg=name)
    assert with_eis.impedance_real.dims == ("spectrum", "frequency")
    np.testing.assert_array_equal(with_eis.spectrum_step.values, [1.0, 3.0])
    assert with_eis.spectrum_drift_ratio.values[0] > fsi.DRIFT_WARNING
    assert with_eis.spectrum_drift_ratio.values[1] < fsi.DRIFT_WARNING
    np.testing.assert_array_equal(with_eis.spectrum_time.values, [300.0, 3300.0])
    with_eis.to_netcdf(tmp_path / "eis.nc")
    with xr.open_dataset(tmp_path / "eis.nc") as back:
        xr.testing.assert_identical(back.load(), with_eis)
    # the DC current of the first spectrum is the step's
    assert float(with_eis.spectrum_current_density[0]) == pytest.approx(
        float(with_eis.current_density[with_eis.t.values <= 300.0][-1]), rel=1e-9)


class Killed(Exception):
    """Stands in for a hard kill in the middle of a run."""


def run_checkpointed(c, path, resume=False):
    life = Lifecycle(c, checkpoint=path, checkpoint_every=0.0, resume=resume, progress=False)
    with life:
        return fs.cell.simulate_transport(c, lifecycle=life)


def test_a_run_with_spectra_resumes_bitwise(tmp_path, monkeypatch):
    """Killed in the rest after the first spectrum, resumed from the checkpoint left behind:
    the same states and spectra, bit for bit."""
    c = film(RUN, SMALL)
    with pytest.warns(RuntimeWarning, match="drifts"):
        reference = run_checkpointed(c, tmp_path / "ref.ckpt")
    rest_rows = np.nonzero(reference.step == 2)[0]
    kill_at = int(rest_rows[len(rest_rows) // 2]) + 1
    record = fs.cell.FilmCell.record
    calls = []

    def crashing_record(self, t, y):
        record(self, t, y)
        calls.append(t)
        if len(calls) == kill_at:
            raise Killed

    path = tmp_path / "run.ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(fs.cell.FilmCell, "record", crashing_record)
        with pytest.raises(Killed), pytest.warns(RuntimeWarning, match="drifts"):
            run_checkpointed(c, path)
    saved, _ = read_checkpoint(path)
    assert saved["cell"]["spectra"]["real"].shape == (1, 19)  # the first spectrum is saved
    resumed = run_checkpointed(c, path, resume=True)
    for name in ("theta", "stress", "plastic", "results", "step"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(reference, name), name)
    for name in ("t", "voltage", "current", "inventory"):
        np.testing.assert_array_equal(resumed.series[name], reference.series[name], name)
    for name, values in reference.spectra.items():
        np.testing.assert_array_equal(resumed.spectra[name], values, name)
    assert resumed.stats == reference.stats


# ---------------------------------------------------------------------------------------------
# case errors


def test_a_quasi_static_case_refuses_an_eis_step():
    with pytest.raises(CaseError, match="eis step .* needs model.sodiation = 'diffusion'"):
        fastnai.load_case({"model": {"kind": "film_stress"},
                           "protocol": [{"step": "sodiate", "soc": 0.5},
                                        {"step": "eis", "frequency_min": 1e-3}]})


@pytest.mark.parametrize("f_min, f_max", [(10.0, 10.0), (100.0, 1.0)])
def test_frequency_min_must_be_below_frequency_max(f_min, f_max):
    with pytest.raises(CaseError, match="frequency_min < frequency_max"):
        film([{"step": "eis", "frequency_min": f_min, "frequency_max": f_max}])


# ---------------------------------------------------------------------------------------------
# graded vs solid-solution films


def test_graded_and_solid_solution_spectra_at_several_states_of_charge():
    """The validation's numbers: R_ct from a Randles fit of each rested film's spectrum agrees
    with RT/(F i0) at its surface theta within 5 %, the spectra pass Kramers-Kronig and their
    states are steady."""
    out = fsi.graded_vs_solid_solution(f"{REPO}/cases/film_stress_bisb_graded.toml",
                                       f"{REPO}/cases/film_stress_bisb_solid_solution.toml",
                                       socs=(0.2, 0.4), rest_diffusion_times=5.0)
    for rows in out.values():
        assert [r["soc"] for r in rows] == pytest.approx([0.2, 0.4], abs=2e-3)
        for r in rows:
            assert r["charge_transfer_resistance"] == pytest.approx(
                r["charge_transfer_resistance_model"], rel=0.05)
            assert r["randles_residual"] < 0.05 and r["kramers_kronig_residual"] < 0.01
            assert r["drift_ratio"] < 1e-3 and r["diffusion_resistance"] > 0.0
