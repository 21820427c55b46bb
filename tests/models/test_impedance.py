"""drift_diffusion impedance (``eis`` steps) against closed forms and the time-domain ``sine``
response (SPEC 3.6).

Closed forms hold for the ideal lattice gas with the electrostatics off (Na+ diffuses with
D = D0, U(theta) = U0 - V_t ln(theta/(1-theta))), a blocking back wall and Butler-Volmer
kinetics of exchange current i0 = i0_ref 2 sqrt(theta (1 - theta)):

    Z = 1 / (i w C_dl + 1 / (R_ct + Z_D)),   R_ct = R T / (F i0),

Z_D = R_D coth(sqrt s) / sqrt s for a slab (s = i w L^2/D, R_D = (-dU/dc) L / (F D)) and
Z_D = R_D tanh(sqrt s) / (sqrt s - tanh sqrt s) for a sphere (s = i w R^2/D, R_D =
(-dU/dc) R / (F D)), Jacobsen and West, Electrochim. Acta 40, 255 (1995),
doi:10.1016/0013-4686(94)E0192-3.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy import constants

import fastnai
from fastnai.errors import CaseError
from fastnai.models import drift_diffusion as dd

F = constants.physical_constants["Faraday constant"][0]
VT = constants.k * 298.15 / constants.e
U0 = 0.75
D0 = 7.9e-16

BASE = {"model": {"kind": "drift_diffusion"}, "semiconductor": {"material": "anatase-TiO2"},
        "contact": {"material": "TiC"}, "mesh": {"n_nodes": 100}}
#: 0.01 mHz to 100 kHz: D / L^2 = 0.32 s-1 of the 50 nm slab sits five decades inside
WIDE = {"step": "eis", "frequency_min": 1e-5, "frequency_max": 1e5, "points_per_decade": 5}


def run(protocol, dotted=None, base=BASE):
    cfg = copy.deepcopy(base)
    cfg["protocol"] = protocol
    return fastnai.run(fastnai.load_case(cfg, dotted or {}), progress=False)


def ideal(theta, geometry, **extra):
    """Overrides of the ideal-lattice-gas electrode at equilibrium site fraction theta."""
    return {"model.electrostatics": False, "model.geometry": geometry,
            "sodium.ocv_interaction": 0.0,
            "initial.voltage": U0 - VT * math.log(theta / (1.0 - theta)), **extra}


def closed_form(freq, theta, *, i0_ref, cdl, length, geometry, alpha_free=True):
    c_max = 4.86e4  # sodium.site_density default [mol m-3]
    w = 2.0 * math.pi * np.asarray(freq)
    r_ct = VT / (i0_ref * 2.0 * math.sqrt(theta * (1.0 - theta)))
    r_d = VT / (c_max * theta * (1.0 - theta)) * length / (F * D0)  # -dU/dc = V_t/(c th (1-th))
    s = np.sqrt(1j * w * length**2 / D0)
    if geometry == "sphere":
        z_d = r_d * np.tanh(s) / (s - np.tanh(s))
    else:
        z_d = r_d / np.tanh(s) / s
    return 1.0 / (1j * w * cdl + 1.0 / (r_ct + z_d))


def spectrum(ds):
    return ds.frequency.values, ds.impedance_real.values + 1j * ds.impedance_imag.values


def surface_spacing(ds):
    """Cell width at the electrolyte node (x = 0 co-located; the outer node otherwise)."""
    depth = np.sort(ds.depth.values)
    geometry = ds.attrs["geometry"]
    return depth[1] - depth[0] if geometry == "co-located" else depth[-1] - depth[-2]


@pytest.mark.parametrize("geometry", ["co-located", "separated", "sphere"])
@pytest.mark.parametrize("theta, i0_ref, cdl", [(0.75, 10.0, 0.1), (0.3, 1e-2, 0.4)])
def test_ideal_lattice_gas_matches_the_closed_form(geometry, theta, i0_ref, cdl):
    ds = run([WIDE], ideal(theta, geometry, **{"interface.exchange_current": i0_ref,
                                               "interface.double_layer_capacitance": cdl,
                                               "mesh.refinement": 4}))
    f, z = spectrum(ds)
    exact = closed_form(f, theta, i0_ref=i0_ref, cdl=cdl, length=50e-9, geometry=geometry)
    # where the mesh resolves the diffusion length sqrt(D/w) by 16 cells at the surface
    resolved = np.sqrt(D0 / (2 * math.pi * f)) >= 16 * surface_spacing(ds)
    w_char = D0 / 50e-9**2 / (2 * math.pi)
    assert f[resolved].min() <= w_char / 100 and f[resolved].max() >= w_char * 100
    err = np.abs(z - exact) / np.abs(exact)
    assert err[resolved].max() < 1e-3, err
    assert float(ds.spectrum_theta) == pytest.approx(theta, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_charge_transfer_resistance_is_rt_over_f_i0_for_any_transfer_coefficient(alpha):
    """With a fast diffusion (a 5 nm slab) and no double layer, Z(f) -> R_ct + R_D/3 as the
    reactance of the intercalation capacitance is removed: Re Z at low frequency."""
    theta = 0.4
    ds = run([{"step": "eis", "frequencies": [1e-4, 1e-3]}],
             ideal(theta, "co-located", **{"interface.transfer_coefficient": alpha,
                                           "semiconductor.thickness": 5e-9,
                                           "mesh.n_nodes": 11}))
    _, z = spectrum(ds)
    r_ct = VT / (1e-3 * 2.0 * math.sqrt(theta * (1.0 - theta)))
    r_d = VT / (4.86e4 * theta * (1.0 - theta)) * 5e-9 / (F * D0)
    np.testing.assert_allclose(z.real, r_ct + r_d / 3.0, rtol=1e-6)
    c_int = F**2 * 5e-9 * 4.86e4 * theta * (1 - theta) / (constants.R * 298.15)
    np.testing.assert_allclose(-z.imag * 2 * math.pi * np.array([1e-4, 1e-3]), 1 / c_int,
                               rtol=1e-6)


def test_series_resistance_adds_to_z_and_the_double_layer_closes_it_at_high_frequency():
    theta, cdl, r_s = 0.5, 0.25, 0.7
    ds = run([{"step": "eis", "frequencies": [1e4, 1e5, 1e6]}],
             ideal(theta, "co-located", **{"interface.double_layer_capacitance": cdl,
                                           "electrode.series_resistance": r_s}))
    f, z = spectrum(ds)
    exact = r_s + closed_form(f, theta, i0_ref=1e-3, cdl=cdl, length=50e-9,
                              geometry="co-located")
    np.testing.assert_allclose(z, exact, rtol=1e-6)
    assert abs(z[-1] - r_s - 1 / (2j * math.pi * 1e6 * cdl)) < 1e-3 * abs(z[-1])


def test_an_ensemble_is_its_particles_in_parallel_per_total_area():
    """Two spheres sharing one voltage: the admittances add (each per its own area)."""
    theta = 0.6
    over = ideal(theta, "sphere", **{"interface.exchange_current": 0.5, "mesh.n_nodes": 40})
    freq = {"step": "eis", "frequencies": [1e-3, 0.1, 10.0]}
    both = run([freq], {**over, "ensemble.n_particles": 2, "ensemble.radius_min": "20 nm",
                        "ensemble.radius_max": "60 nm"})
    radii = both.particle_radius.values
    admittance = 0.0
    for r in radii:
        f, z = spectrum(run([freq], {**over, "semiconductor.thickness": float(r)}))
        admittance = admittance + 4 * math.pi * r**2 / z
    np.testing.assert_allclose(spectrum(both)[1], np.sum(4 * math.pi * radii**2) / admittance,
                               rtol=1e-9)
    # per gram: Z of the interface area that one gram of these spheres holds (rho = 3.89 g cm-3)
    grams = 3.89e6 * np.sum(4 * math.pi * radii**3 / 3)
    np.testing.assert_allclose(both.impedance_mass_real.values,
                               both.impedance_real.values * grams / np.sum(4 * math.pi * radii**2),
                               rtol=1e-3)


SINE_CASES = {
    "full": {"initial.voltage": 1.0},
    "fast-kinetics": {"initial.voltage": 1.0, "interface.exchange_current": 10.0},
    "drift-diffusion-electrons": {"initial.voltage": 1.0, "model.electrons": "drift-diffusion"},
}


@pytest.mark.parametrize("name", list(SINE_CASES))
@pytest.mark.parametrize("frequency", [0.01, 10.0])
def test_linearised_spectrum_equals_the_small_sine_response(name, frequency):
    """The full model (electrostatics, traps, Fermi-Dirac electrons): a 1 mV sine for four
    periods, the current's fundamental fitted over the last two (with a constant and a slope
    for the slow transient, and the second harmonic), against the linearised Z."""
    amplitude = 1e-3
    ds = run([{"step": "eis", "frequencies": [frequency]},
              {"step": "sine", "voltage_amplitude": amplitude, "frequency": frequency,
               "periods": 4, "points_per_period": 200}], {**SINE_CASES[name], "solver.rtol": 1e-6})
    z_lin = complex(ds.impedance_real.item(), ds.impedance_imag.item())
    z_time = sine_impedance(ds, frequency, amplitude, step=1)
    assert abs(z_time - z_lin) < 1e-3 * abs(z_lin), (z_time, z_lin)


def sine_impedance(ds, frequency, amplitude, step):
    """dV/dI of the fundamental of a voltage-sine step's current over its last two periods."""
    in_step = ds.protocol_step.values == step
    t = ds.t.values[in_step]
    tau = t - t[0]
    last = tau >= tau[-1] - 2.0 / frequency
    w = 2 * math.pi * frequency
    tt = tau[last]
    basis = np.column_stack([np.ones_like(tt), tt, np.sin(w * tt), np.cos(w * tt),
                             np.sin(2 * w * tt), np.cos(2 * w * tt)])
    coef, *_ = np.linalg.lstsq(basis, ds.current_density.values[in_step][last], rcond=None)
    return amplitude / (coef[2] + 1j * coef[3])


def test_an_eis_step_leaves_the_state_and_the_run_unchanged():
    rest = {"step": "rest", "duration": 5.0}
    plain = run([{"step": "constant_current", "c_rate": 1.0, "cutoff_voltage": 0.3,
                  "max_duration": 20.0}, rest], {"initial.voltage": 1.0})
    with pytest.warns(RuntimeWarning, match="drifts"):  # measured right after a pulse
        with_eis = run([{"step": "constant_current", "c_rate": 1.0, "cutoff_voltage": 0.3,
                         "max_duration": 20.0}, {"step": "eis"}, rest, {"step": "eis"}],
                       {"initial.voltage": 1.0})
    for name in ("t", "voltage", "current_density", "na_inventory"):
        np.testing.assert_array_equal(with_eis[name].values, plain[name].values, err_msg=name)
    assert with_eis.impedance_real.dims == ("spectrum", "frequency")
    drift = with_eis.spectrum_drift_ratio.values
    assert drift[0] > 0.1 > drift[1]  # relaxing after the pulse, then more steady


def test_current_sine_oscillates_about_its_offset():
    ds = run([{"step": "sine", "current_amplitude": "1e-3 A m^-2", "frequency": 1.0,
               "periods": 2, "points_per_period": 64}], {"initial.voltage": 1.0})
    j = ds.current_density.values[ds.protocol_step.values == 0]
    t = ds.t.values[ds.protocol_step.values == 0]
    np.testing.assert_allclose(j[1:], 1e-3 * np.sin(2 * math.pi * t[1:]), atol=1e-9)


@pytest.mark.parametrize("step, match", [
    ({"step": "eis", "frequency_min": 10.0, "frequency_max": 1.0}, "frequency_min"),
    ({"step": "eis", "frequency_min": 0.0}, "frequency_min"),
    ({"step": "eis", "frequencies": [1.0, -2.0]}, "frequencies"),
    ({"step": "eis", "frequency_max": float("inf")}, "frequency_max"),
    ({"step": "sine", "frequency": 1.0}, "exactly one"),
    ({"step": "sine", "frequency": 1.0, "voltage_amplitude": 1e-3, "current_amplitude": 1.0},
     "exactly one"),
])
def test_bad_eis_and_sine_steps_are_refused_before_work(step, match):
    cfg = copy.deepcopy(BASE)
    cfg["protocol"] = [step]
    with pytest.raises(CaseError, match=match):
        fastnai.load_case(cfg)


def test_eis_steps_must_share_their_frequencies():
    cfg = copy.deepcopy(BASE)
    cfg["protocol"] = [{"step": "eis"}, {"step": "eis", "points_per_decade": 5}]
    with pytest.raises(CaseError, match="same frequencies"):
        fastnai.load_case(cfg)


def test_a_large_sine_is_allowed_with_a_warning():
    cfg = copy.deepcopy(BASE)
    cfg["protocol"] = [{"step": "sine", "frequency": 1.0, "voltage_amplitude": 0.1}]
    with pytest.warns(UserWarning, match="linear regime"):
        assert fastnai.load_case(cfg)


def test_eis_of_the_linearisation_is_the_model_jacobian():
    """dd.Linearisation's blocks at a state equal the Newton Jacobian at alpha0 = 0."""
    c = fastnai.load_case({**BASE, "protocol": [{"step": "rest", "duration": 1.0}]})
    s = dd.build(c)
    state, _ = dd.equilibrium(s, 1.0)
    lin = dd.Linearisation(s, state, 1.0)
    assert lin.mass[0, :, 1, 1].min() > 0.0
    assert np.all(lin.bcol[0][:, 2] == -1.0)  # quasi-equilibrium electrons: phi = V everywhere
    assert np.count_nonzero(lin.brow) == 3  # the electrolyte node's Butler-Volmer derivatives


@pytest.mark.parametrize("electrons", ["quasi-equilibrium", "drift-diffusion"])
def test_spectra_of_the_full_model_pass_the_kramers_kronig_test(electrons):
    """Electrostatics, traps and Fermi-Dirac electrons, with a double layer: 1 mHz to 1 MHz."""
    from fastnai import spectra

    ds = run([{"step": "eis", "frequency_min": 1e-3, "frequency_max": 1e6}],
             {"initial.voltage": 0.9, "model.electrons": electrons,
              "interface.double_layer_capacitance": 0.2, "electrode.series_resistance": 1e-3})
    f, z = spectrum(ds)
    kk = spectra.kramers_kronig(f, z)
    assert kk["valid"] and kk["max_residual"] < 1e-4, kk["max_residual"]
