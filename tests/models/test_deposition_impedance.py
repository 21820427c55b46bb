"""deposition impedance (``eis`` steps, SPEC 3.4 / 3.6) against closed forms of a flat electrode.

The flat electrode: ``nucleation.mode = "none"`` (the whole substrate reacts) under a flat
deposit ``h0`` thick, in a box two cells wide (laterally uniform, so effectively 1D), at rest
(uniform salt ``c0``, ``Phi = 0``: the initial state). Its spectrum per m2 follows from the
model's equations in 1D, ``y`` up from the front (``H = ny dx - h0`` of electrolyte in the box):

- salt, ``i w dc = D dc''`` in the box and ``eps i w dc = D_s dc''`` in the separator column
  (``D_s = D eps^1.5``), flux ``N = -D dc'`` continuous at ``y = H``; at the front the Faradaic
  current releases ``N(0) = (1 - t+) di_f / F``; the far end is the counter electrode,
  ``N(H + L) = -(1 - t+) di_f,CE / F``; without a separator the top is held at ``c0``;
- Butler-Volmer at rest, ``di_f = deta / R_ct``, ``R_ct = RT / (F j0)`` (``alpha_a + alpha_c =
  1``; its concentration factor has no effect at zero current), ``eta = V - Phi``;
- the double layer in parallel, ``di_dl = i w C_dl (deta + (RT/F) dc(0) / c0)`` (charged by
  the electrostatic potential ``phi_l = Phi - (RT/F) ln c``);
- the electrolyte potential, ``i = -sigma (Phi' - beta (ln c)')``, ``beta = 2 (1 - t+) RT/F``:
  ``dV = deta + dI H / sigma + beta (dc(0) - dc(y_r)) / c0``, the reference read at
  ``y_r = H - dx/2`` for the concentration term (the transient's potential closes the top face
  for the ``ln c`` term, ``face_divergence``, and its cell voltage reads ``c_top`` in the top
  cells: the reference sits at the top cell's centre for it);
- the symmetric cell, ``dU = dV - d(drop) - deta_CE`` with ``drop = -I L / sigma_s + beta
  ln(c_CE / c_top)`` (``c_CE`` the column's last node, ``y_e = H + L - h/2``) and the counter
  electrode flat with the same kinetics and double layer, carrying ``-dI``.

Without a separator (Dirichlet top), ``dc(0) - dc(y_r) = N(0) [tanh kH - sinh(k dx/2) / cosh kH]
/ (D k)``, ``k = sqrt(i w / D)``, so with ``Z_c = beta (1 - t+) [tanh kH - sinh(k dx/2) /
cosh kH] / (F D c0 k)`` (finite-length diffusion with a transmissive end)

    Z = R_Ohm + (R_ct + Z_c) / (1 + i w C_dl (R_ct + (RT/F) Z_c / beta)),    R_Ohm = H / sigma,

which at ``t+ = 1/2`` (``beta = RT/F``) is the textbook ``R_Ohm + C_dl || (R_ct + Z_c)``.
With the separator the same equations are solved in closed form layer by layer
(:func:`layered_salt`: exponentials in each layer, matched at ``y = H``), leaving three linear
equations per frequency for the two overpotentials and the current (:func:`cell_closed_form`).
"""

from __future__ import annotations

import math
import os
import signal
import tomllib
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from scipy import constants

import fastnai
from fastnai import spectra
from fastnai.case import load_case
from fastnai.cli import main
from fastnai.errors import CaseError, FastnaiError, Interrupted
from fastnai.models import deposition as dep
from fastnai.models.deposition import impedance as imp

F = constants.physical_constants["Faraday constant"][0]
R = constants.R
H0 = 4e-6  # the flat deposit [m]
CASES = Path(__file__).resolve().parents[2] / "cases"


def flat_case(eis, *, then=(), **over):
    """A flat, fully active bare-Na electrode at rest, 2 x 128 cells of 0.2 um: an eis step,
    then the steps ``then``."""
    raw = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "mesh": {"nx": 2, "ny": 128, "dx": "0.2 um"},
           "protocol": [{"step": "eis", **eis}, *then]}
    return load_case(raw, {"nucleation.mode": "none", "initial.deposit_thickness": H0, **over})


def model_spectra(case):
    """Frequencies, Z of the symmetric cell and of the working electrode, and the Setup."""
    res = dep.simulate(case, progress=False)
    sp = res.spectra
    z = (sp["real"] + 1j * sp["imag"])[0]
    ze = (sp["electrode_real"] + 1j * sp["electrode_imag"])[0]
    return sp["frequency"], z, ze, res.setup


def resolved_max(s):
    """The highest frequency at which 16 cells resolve sqrt(D / w) [Hz]."""
    return s.diffusivity / (2.0 * math.pi * (16.0 * s.dx) ** 2)


def electrode_closed_form(s, f, height):
    """Z of the flat working electrode without a separator (module docstring)."""
    w = 2.0 * math.pi * np.asarray(f)
    k = np.sqrt(1j * w / s.diffusivity)
    rt = R * s.temperature / F
    shape = (np.tanh(k * height) - np.sinh(0.5 * k * s.dx) / np.cosh(k * height)) / k
    zc = s.beta * (1.0 - s.t_plus) / (F * s.diffusivity * s.c_ref) * shape
    rct = rt / s.j0
    return height / s.conductivity + (rct + zc) / (
        1.0 + 1j * w * s.capacitance * (rct + rt / s.beta * zc))


def layered_salt(s, w, height):
    """dc/c0 at the front, at the reference y_r and at the column's last node y_e for unit
    fluxes N(0) and N(H + L): rows (front, ref, end), columns (N0, N1).

    c = A e^(-k y) + B e^(-k (H - y)) in the box, P e^(-k_s x) + Q e^(-k_s (L - x)) in the
    column (x = y - H): both terms decay into their layer, so the 4 x 4 system for
    (A, B, P, Q) stays well conditioned at any frequency."""
    eps, length = s.sep_porosity, s.sep_length
    d_b, d_s = s.diffusivity, s.diffusivity * eps**1.5
    k, ks = np.sqrt(1j * w / d_b), np.sqrt(1j * w * eps / d_s)
    eb, es = np.exp(-k * height), np.exp(-ks * length)
    a = np.array([[d_b * k, -d_b * k * eb, 0.0, 0.0],        # N(0)
                  [eb, 1.0, -1.0, -es],                      # c continuous at H
                  [d_b * k * eb, -d_b * k, -d_s * ks, d_s * ks * es],  # N continuous at H
                  [0.0, 0.0, d_s * ks * es, -d_s * ks]])     # N(H + L)
    coef = np.linalg.solve(a, np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
    y_r, x_e = height - 0.5 * s.dx, length - 0.5 * length / s.sep_nodes
    at = np.array([[1.0, eb, 0.0, 0.0],
                   [np.exp(-k * y_r), np.exp(-k * (height - y_r)), 0.0, 0.0],
                   [0.0, 0.0, np.exp(-ks * x_e), np.exp(-ks * (length - x_e))]])
    return at @ coef / s.c_ref


def cell_closed_form(s, f, height):
    """(Z_cell, Z_working) of the flat electrode, separator column and flat counter electrode:
    the module docstring's equations, linear in (deta_W, deta_CE, dI) at dV = 1."""
    rt = R * s.temperature / F
    rct = rt / s.j0
    sig_s = s.conductivity * s.sep_porosity**1.5
    per_eta = (1.0 - s.t_plus) / (F * rct) * np.array([[1.0, 0.0], [0.0, -1.0]])  # N per eta
    out = []
    for w in 2.0 * math.pi * np.asarray(f):
        front, ref, end = layered_salt(s, w, height) @ per_eta  # dc/c0 per (eta_W, eta_CE)
        cdl = 1j * w * s.capacitance
        a = np.zeros((3, 3), dtype=complex)  # unknowns (eta_W, eta_CE, I)
        a[0, :2] = np.array([1.0 / rct + cdl, 0.0]) + cdl * rt * front
        a[0, 2] = -1.0
        a[1, :2] = np.array([0.0, 1.0 / rct + cdl]) + cdl * rt * end
        a[1, 2] = 1.0
        a[2, :2] = np.array([1.0, 0.0]) + s.beta * (front - ref)
        a[2, 2] = height / s.conductivity
        eta_w, eta_ce, current = np.linalg.solve(a, [0.0, 0.0, 1.0])
        drop = -current * s.sep_length / sig_s + s.beta * (end - ref) @ [eta_w, eta_ce]
        out.append(((1.0 - drop - eta_ce) / current, 1.0 / current))
    return np.array(out).T


@pytest.mark.parametrize("t_plus", [0.4, 0.5])
def test_flat_electrode_is_r_ohm_plus_double_layer_over_rct_and_concentration(t_plus):
    """Working electrode without a separator vs the closed form to 1e-3 over 1e-4 Hz .. the
    16-cell limit (4.6 decades around D/(2 pi H^2) = 0.08 Hz). The concentration impedance is
    a tenth of |Z| at low frequency (c0 = 100 mol m-3, j0 = 2 mA cm-2) and the double layer's
    arc reaches into the band (C_dl = 30 F m-2, so that R_ct C_dl = 0.04 s), so every element is
    tested, the double layer's share of the salt's potential too (at t+ = 0.4 the textbook
    Randles form is 1.5e-3 off at the band's top). The diffuse
    interface (width lam = 2 cells) spreads the salt's source and sink over the front, which
    changes Z_c by O(k lam), a few percent of Z_c at the 16-cell limit (measured: proportional
    to lam): at c0 = 100 mol m-3 that is 8e-4 of Z, at 20 mol m-3 4e-3. At t+ = 1/2 the closed
    form is the textbook Randles circuit."""
    over = {"separator.thickness": 0.0, "electrolyte.concentration": 100.0,
            "electrolyte.transference_number": t_plus,
            "substrate.exchange_current_density": 20.0,
            "electrode.double_layer_capacitance": 30.0}
    f, _, ze, s = model_spectra(flat_case({"frequency_min": 1e-4, "frequency_max": 3.8,
                                           "points_per_decade": 4}, **over))
    assert f[-1] <= resolved_max(s)
    exact = electrode_closed_form(s, f, s.ny * s.dx - H0)
    assert np.max(np.abs(ze / exact - 1.0)) <= 1e-3
    zc0 = s.beta * (1.0 - t_plus) * (s.ny * s.dx - H0) / (F * s.diffusivity * s.c_ref)
    assert zc0 > 0.07 * abs(ze[0])
    assert np.max(-ze.imag) > 0.3 * abs(ze[0])  # the double layer's arc is in the band
    if t_plus == 0.5:
        w = 2.0 * math.pi * f
        k = np.sqrt(1j * w / s.diffusivity)
        h = s.ny * s.dx - H0
        zc = zc0 * (np.tanh(k * h) - np.sinh(0.5 * k * s.dx) / np.cosh(k * h)) / (k * h)
        rct = R * s.temperature / (F * s.j0)
        randles = h / s.conductivity + 1.0 / (1j * w * s.capacitance + 1.0 / (rct + zc))
        assert np.max(np.abs(ze / randles - 1.0)) <= 1e-3


def test_symmetric_cell_with_the_separator_column_follows_the_layered_closed_form():
    """Symmetric cell and working electrode with the 260 um separator column (800 nodes),
    bare-Na kinetics and the default double layer, c0 = 20 mol m-3 (the salt's impedance over
    the column is a tenth of |Z|): both to 1e-3 over 1e-5 Hz .. the 16-cell limit, through the
    separator's own relaxation (eps L^2 / D_s = 290 s)."""
    case = flat_case({"frequency_min": 1e-5, "frequency_max": 3.8, "points_per_decade": 3},
                     **{"electrolyte.concentration": 20.0, "separator.n_nodes": 800})
    f, z, ze, s = model_spectra(case)
    cell, electrode = cell_closed_form(s, f, s.ny * s.dx - H0)
    assert np.max(np.abs(z / cell - 1.0)) <= 1e-3
    assert np.max(np.abs(ze / electrode - 1.0)) <= 1e-3
    rct = R * s.temperature / (F * s.j0)
    assert z[0].real > 2.0 * rct * 1.1  # the salt's share is visible


def test_dc_and_high_frequency_limits():
    """Low frequency: Re Z -> R_Ohm + R_ct + Z_c(0) (1e-3). High frequency: with a double
    layer Z -> R_Ohm + 1/(i w C_dl + 1/R_ct) (1e-3 at 10 and 30 kHz), so (Z - R_Ohm) i w C_dl
    -> 1 as the Faradaic leak 1/(w C_dl R_ct) vanishes; without one Z -> R_Ohm + R_ct. (Above
    ~100 kHz the double layer spread over the diffuse interface is reached through its own
    electrolyte, a transmission line of time constant C_dl lam / sigma ~ 0.1 us.)"""
    over = {"separator.thickness": 0.0, "electrolyte.concentration": 20.0}
    eis = {"frequencies": [1e-7, 1e4, 3e4]}
    f, _, ze, s = model_spectra(flat_case(eis, **over))
    h = s.ny * s.dx - H0
    r_ohm = h / s.conductivity
    rct = R * s.temperature / (F * s.j0)
    zc0 = s.beta * (1.0 - s.t_plus) * (h - 0.5 * s.dx) / (F * s.diffusivity * s.c_ref)
    assert ze[0].real == pytest.approx(r_ohm + rct + zc0, rel=1e-3)
    w = 2.0 * math.pi * f[1:]
    limit = r_ohm + 1.0 / (1j * w * s.capacitance + 1.0 / rct)
    assert np.abs(ze[1:] / limit - 1.0).max() <= 1e-3
    leak = np.abs((ze[1:] - r_ohm) * 1j * w * s.capacitance - 1.0)
    assert np.all(leak <= 1.2 / (w * s.capacitance * rct)) and leak[1] < 2e-3
    _, _, bare, _ = model_spectra(flat_case(eis, **over, **{"electrode.double_layer_capacitance": 0}))
    assert bare[1:].real == pytest.approx(r_ohm + rct, rel=1e-4)
    assert np.abs(bare[1:].imag).max() <= 1e-5 * rct


def test_zero_frequency_limit_is_the_transients_steady_polarisation():
    """The linearisation against the transient itself: plating at 1 uA cm-2 until the salt is
    steady through the separator (5000 s, 17 relaxation times), the cell voltage and the
    electrode's potential move by Z(0) dj, Z(0) from an eis step at 1e-7 Hz before (1e-4;
    measured 1e-5)."""
    j = 0.01
    case = flat_case({"frequencies": [1e-7]},
                     then=[{"step": "plate", "current_density": j, "duration": 5000.0}])
    res = dep.simulate(case, progress=False)
    ser, sp = res.series, res.spectra
    for series, part in (("voltage", "real"), ("overpotential", "electrode_real")):
        moved = (ser[series][-1] - ser[series][0]) / -j
        assert moved == pytest.approx(sp[part][0, 0], rel=1e-4), series


def test_zero_frequency_limit_while_plating_is_the_transients_response():
    """Plating at 0.5 mA cm-2: runs at 5 -+ 0.05 A m-2 over the second half of 6000 s (steady
    salt, 10 separator relaxation times) differ by 2 dj Z(0), Z(0) of the steady state at 5
    A m-2 at 6000 s. Central differences cancel Butler-Volmer's curvature (5e-3 one-sided);
    what remains (measured 6e-4 cell, 1e-3 electrode) is the front's own extra motion over 3000
    s, V_m dj t / F = 37 nm through the DC gradient, which a frozen morphology leaves out as
    w -> 0. The concentration factor of Butler-Volmer (dj/dc) changes the electrode's Z(0) by
    1 %, so it is tested."""
    j, dj = 5.0, 0.05

    def plated(j2, *last):
        case = flat_case({"frequencies": [1e-7]}, then=[
            {"step": "plate", "current_density": j, "duration": 3000.0},
            {"step": "plate", "current_density": j2, "duration": 3000.0}, *last],
            **{"initial.deposit_thickness": 3e-6})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 1e-7 Hz: the front "drifts"
            return dep.simulate(case, progress=False)

    low, high = plated(j - dj), plated(j + dj)
    steady = plated(j, {"step": "eis", "frequencies": [1e-7]}).spectra
    for series, part in (("voltage", "real"), ("overpotential", "electrode_real")):
        moved = (high.series[series][-1] - low.series[series][-1]) / (-2.0 * dj)
        assert moved == pytest.approx(steady[part][1, 0], rel=2e-3), series


def test_model_spectrum_passes_kramers_kronig():
    """A spectrum of a plated, nucleated state after a rest is Kramers-Kronig consistent."""
    case = _sites_case([PLATE, {"step": "rest", "duration": 60.0},
                        {"step": "eis", "frequency_min": 1e-2, "frequency_max": 1e5,
                         "points_per_decade": 4}])
    ds = dep.run(case, progress=False)
    assert float(ds.nuclei_count[-1]) > 0 and float(ds.spectrum_drift_ratio) < 0.1
    f = ds.frequency.values
    for part in ("impedance", "electrode_impedance"):
        z = ds[f"{part}_real"].values + 1j * ds[f"{part}_imag"].values
        assert spectra.kramers_kronig(f, z)["valid"], part


def test_a_flat_3d_box_has_the_2d_spectrum_and_threads_do_not_change_the_bits():
    """The laterally uniform state per m2 is the same in a 3D box (4 x 3 columns) as in 2D;
    the frequencies run in parallel, one BLAS thread each, so 1 and 2 threads give the same
    bits."""
    eis = {"frequencies": [1e-3, 1.0, 1e3]}
    _, z2, ze2, _ = model_spectra(flat_case(eis, **{"mesh.nx": 4, "mesh.ny": 40}))
    _, z3, ze3, _ = model_spectra(flat_case(eis, **{"mesh.nx": 4, "mesh.nz": 3, "mesh.ny": 40}))
    np.testing.assert_allclose(z3, z2, rtol=1e-10)
    np.testing.assert_allclose(ze3, ze2, rtol=1e-10)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _, z1, _, _ = model_spectra(flat_case(eis, **{"mesh.nx": 4, "mesh.ny": 40}))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(z1, z2)


# ---------------------------------------------------------------------------------------------
# the run: unchanged by eis steps, checkpointed, refused when malformed

PLATE = {"step": "plate", "current_density": "0.5 mA cm^-2", "capacity": "0.005 mA h cm^-2"}
EIS = {"step": "eis", "frequency_min": 1e-2, "frequency_max": 1e5, "points_per_decade": 2}


def _sites_case(protocol, **over):
    raw = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "mesh": {"nx": 48, "ny": 32, "dx": "0.2 um"}, "protocol": protocol}
    return load_case(raw, over)


def _run_recording(case, **kw):
    """Run, returning the Dataset (attrs dropped) and the drift warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        ds = fastnai.run(case, progress=False, **kw)
    ds.attrs = {}
    return ds, [w for w in caught if "drifts" in str(w.message)]


def test_an_eis_step_leaves_the_run_unchanged_and_warns_of_drift_mid_plating():
    """[plate, eis, plate] has the bits of [plate, plate] (the step numbering aside); the
    spectrum mid-plating (nuclei growing, the voltage relaxing) warns that the state drifts."""
    plain, _ = _run_recording(_sites_case([PLATE, PLATE]))
    with_eis, drift = _run_recording(_sites_case([PLATE, EIS, PLATE]))
    spectrum = [name for name in with_eis.data_vars if name not in plain.data_vars]
    assert with_eis.drop_vars(spectrum + ["protocol_step"]).drop_dims("frequency").identical(
        plain.drop_vars("protocol_step"))
    assert with_eis.protocol_step.values.max() == 2
    assert float(with_eis.spectrum_drift_ratio) > imp.DRIFT_WARNING and len(drift) == 1
    assert float(with_eis.spectrum_step) == 1.0
    assert float(with_eis.spectrum_current_density) == pytest.approx(-5.0, rel=0.05)
    assert float(with_eis.spectrum_time) == pytest.approx(0.005 * 3.6e4 / 5.0)
    u = with_eis.voltage.values[with_eis.protocol_step.values == 0][-1]
    assert float(with_eis.spectrum_voltage) == u


def test_a_spectrum_recorded_before_a_kill_survives_the_resume_bitwise(tmp_path, monkeypatch):
    """SIGTERM 10 steps after the eis step: the resumed run has the uninterrupted run's bits,
    the spectrum included."""
    case = _sites_case([PLATE, EIS, PLATE])
    whole, _ = _run_recording(case)
    n_first = int(np.sum(whole.protocol_step.values == 0))
    ckpt = tmp_path / "dep.ckpt.npz"
    step = dep.Stepper._step
    taken = []

    def signalled_step(self, h, stats):
        step(self, h, stats)
        taken.append(h)
        if len(taken) == n_first + 10:
            os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as patch:
        patch.setattr(dep.Stepper, "_step", signalled_step)
        with pytest.raises(Interrupted):
            _run_recording(case, checkpoint=ckpt, checkpoint_every=1e9)
    resumed, _ = _run_recording(case, checkpoint=ckpt, resume=True)
    assert resumed.identical(whole)
    assert "impedance_real" in resumed and resumed.impedance_real.dims == ("frequency",)


def test_bad_eis_steps_are_refused_before_work(tmp_path):
    cfg = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "protocol": [{"step": "eis", "frequency_min": 10.0, "frequency_max": 1.0}]}
    with pytest.raises(CaseError, match="frequency_min < frequency_max"):
        load_case(cfg)
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nkind = "deposition"\n[substrate]\nmaterial = "Na"\n'
                    '[[protocol]]\nstep = "eis"\nfrequency_min = 5.0\nfrequency_max = 5.0\n')
    out = tmp_path / "out.nc"
    assert main(["run", str(path), "-o", str(out)]) == 2
    assert not out.exists()


def test_an_open_circuit_electrode_is_a_clear_error():
    """Before nucleation and without a double layer nothing carries a current."""
    case = _sites_case([EIS], **{"electrode.double_layer_capacitance": 0.0})
    with pytest.raises(FastnaiError, match="open circuit"):
        dep.simulate(case, progress=False)


# ---------------------------------------------------------------------------------------------
# the VN paper's systems


def _paper_case(name, **over):
    with open(CASES / f"{name}.toml", "rb") as fh:
        raw = tomllib.load(fh)
    raw["protocol"] = [{"step": "eis", "frequency_min": 0.1, "frequency_max": 1e5,
                        "points_per_decade": 5}]
    return load_case(raw, {"mesh.nx": 2, "mesh.ny": 64, "nucleation.mode": "none",
                           "initial.deposit_thickness": "3 um", **over})


def test_rct_of_bare_na_and_na_vn_follows_the_exchange_currents():
    """Randles fits of flat bare Na and Na/VN electrodes at 298 K: R_ct = RT/(F j0) (2e-3) and
    their ratio is 0.215 / 0.068 (1e-3)."""
    rct = {}
    for name in ("deposition_bare_na", "deposition_na_vn"):
        f, _, ze, s = model_spectra(_paper_case(name))
        rct[name] = spectra.charge_transfer_resistance(f, ze).value
        assert rct[name] == pytest.approx(R * s.temperature / (F * s.j0), rel=2e-3)
    ratio = rct["deposition_bare_na"] / rct["deposition_na_vn"]
    assert ratio == pytest.approx(0.215 / 0.068, rel=1e-3)


def test_activation_energy_round_trip_of_the_temperature_series():
    """E_a from T / R_ct of Randles fits at 283-328 K recovers the model's input (the VN
    paper's 72.96 kJ mol-1 for bare Na) to 1e-3: a round trip, labelled so."""
    out = imp.rct_temperature_series(_paper_case("deposition_bare_na"))
    assert out["activation_energy"] == pytest.approx(72960.0, rel=1e-3)
    assert out["rct_electrode"] == pytest.approx(out["rct_closed_form"], rel=2e-3)
    assert out["rct"] == pytest.approx(2.0 * out["rct_closed_form"], rel=2e-2)
    assert "input recovered" in out["basis"]
