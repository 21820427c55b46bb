"""fastnai.analysis against closed forms and against numerically simulated experiments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import solve_banded

from fastnai import analysis
from fastnai.analysis import F, R
from fastnai.errors import FastnaiError

T = 298.15
f = F / (R * T)


def reversible_lsv(*, diffusivity, scan_rate, concentration=10.0, n_steps=4000):
    """Linear sweep of a reversible couple O + e -> R (equal D), simulated by backward Euler.

    Returns (potential - E0, cathodic current density [A m-2]); the sweep starts 0.3 V positive
    of E0, where O is the only species.
    """
    e_start, e_end = 0.3, -0.25
    t_end = (e_start - e_end) / scan_rate
    dt = t_end / n_steps
    length = 6.0 * math.sqrt(diffusivity * t_end)
    h0 = 2e-3 * math.sqrt(diffusivity * t_end)
    ratio = 1.03
    n_cells = int(math.log(1 + length * (ratio - 1) / h0) / math.log(ratio)) + 1
    x = np.concatenate(([0.0], np.cumsum(h0 * ratio ** np.arange(n_cells))))
    h = np.diff(x)
    n = x.size
    # box method: vol_i dc/dt = D [(c_i+1 - c_i)/h_i - (c_i - c_i-1)/h_i-1]
    vol = np.empty(n)
    vol[1:-1] = 0.5 * (h[1:] + h[:-1])
    vol[0] = vol[-1] = 0.5 * h[0]
    c = np.full(n, concentration)
    ab = np.zeros((3, n))
    ab[0, 2:] = -dt * diffusivity / h[1:]
    ab[2, 1:-2] = -dt * diffusivity / h[1:-1]
    ab[1, 1:-1] = vol[1:-1] + dt * diffusivity * (1 / h[1:] + 1 / h[:-1])
    ab[2, 0] = -dt * diffusivity / h[0]  # row 1, column 0
    ab[1, 0] = ab[1, -1] = 1.0
    ab[0, 1] = 0.0
    ab[2, -2] = 0.0
    potentials = e_start - scan_rate * dt * np.arange(1, n_steps + 1)
    currents = np.empty(n_steps)
    for k, e in enumerate(potentials):
        theta = math.exp(f * e)
        rhs = vol * c
        rhs[0] = concentration * theta / (1 + theta)  # Nernst at the surface
        rhs[-1] = concentration
        c = solve_banded((1, 1), ab, rhs)
        # flux into the surface from the box balance of the first half cell
        currents[k] = F * (diffusivity * (c[1] - c[0]) / h[0])
    return potentials, currents


def test_randles_sevcik_recovers_diffusivity_from_simulated_reversible_cvs():
    d_true = 1e-9
    rates = np.array([0.01, 0.05, 0.2])
    peaks = []
    for v in rates:
        e, i = reversible_lsv(diffusivity=d_true, scan_rate=v)
        peak = analysis.find_cv_peaks(e, i)["anodic"]  # cathodic current taken positive here
        peaks.append(peak.current)
        # the reversible peak sits 28.5 mV past E0 at 25 C (1.109 RT/F)
        assert peak.potential == pytest.approx(-1.109 / f, abs=1.5e-3)
    fit = analysis.randles_sevcik_diffusivity(rates, peaks, area=1.0, concentration=10.0)
    assert fit.value == pytest.approx(d_true, rel=0.01)  # 0.4463 to ~0.5 % in the peak


def test_randles_sevcik_exact_data_and_error_propagation():
    rng = np.random.default_rng(5)
    v = np.geomspace(2e-4, 1e-2, 6)
    d, area, conc = 7.9e-16, 2e-4, 4.86e4
    k = analysis.RANDLES_SEVCIK * F * area * conc * math.sqrt(f * d)
    exact = analysis.randles_sevcik_diffusivity(v, k * np.sqrt(v), area=area, concentration=conc)
    assert exact.value == pytest.approx(d, rel=1e-12)
    noisy = k * np.sqrt(v) * (1 + 0.02 * rng.standard_normal(v.size))
    fit = analysis.randles_sevcik_diffusivity(v, noisy, area=area, concentration=conc)
    assert abs(fit.value - d) < 4 * fit.stderr
    assert fit.stderr == pytest.approx(2 * fit.value * fit.details["slope_stderr"] / fit.details["slope"])


def test_diffusivity_ratio_reproduces_the_papers_arithmetic():
    ratio = analysis.diffusivity_ratio(1.59, 0.68)
    assert ratio.value == pytest.approx(5.467, rel=1e-3)  # the paper's "5.5"


def test_b_value_is_half_for_diffusion_and_one_for_capacitive_current():
    v = np.geomspace(2e-4, 1e-2, 6)
    assert analysis.b_value(v, 3e-3 * np.sqrt(v)).value == pytest.approx(0.5, abs=1e-12)
    assert analysis.b_value(v, 0.2 * v).value == pytest.approx(1.0, abs=1e-12)
    mixed = analysis.b_value(v, 0.2 * v + 3e-3 * np.sqrt(v))
    assert 0.5 < mixed.value < 1.0
    assert mixed.stderr > 0


def test_capacitive_split_recovers_k1_k2_and_fraction():
    rng = np.random.default_rng(2)
    v = np.array([2e-4, 5e-4, 1e-3, 2e-3, 5e-3])
    k1 = rng.uniform(0.1, 1.0, 50)
    k2 = rng.uniform(1e-3, 1e-2, 50)
    i = v[:, None] * k1[None, :] + np.sqrt(v)[:, None] * k2[None, :]
    out = analysis.capacitive_split(v, i)
    np.testing.assert_allclose(out["k1"], k1, rtol=1e-9)
    np.testing.assert_allclose(out["k2"], k2, rtol=1e-9)
    expected = (k1.sum() * v) / (k1.sum() * v + k2.sum() * np.sqrt(v))
    np.testing.assert_allclose(out["capacitive_fraction"], expected, rtol=1e-9)
    assert np.all(np.diff(out["capacitive_fraction"]) > 0)  # capacitive share grows with v
    with pytest.raises(FastnaiError):
        analysis.capacitive_split(v[:1], i[:1])


def gitt_pulse(tau_d_over_l2, *, slope=-0.5, n_terms=4000):
    """Surface-concentration rise of a slab under a constant flux (exact series), linear OCV.

    Dimensionless: L = D = 1, flux J = 1 into x = L, blocked at x = 0; U = slope * c.
    Returns (Delta E_s, Delta E_t): relaxed and transient potential changes over the pulse.
    """
    tau = tau_d_over_l2
    k = np.arange(1, n_terms + 1)
    series = np.sum(2.0 * (-1.0) ** k / (k * math.pi) ** 2 * np.cos(k * math.pi)
                    * np.exp(-((k * math.pi) ** 2) * tau))
    c_surface = tau + 1.0 / 3.0 - series  # Crank, Mathematics of Diffusion, Eq. 4.52 at x = L
    c_surface -= 1.0 / 3.0 - np.sum(2.0 / (k * math.pi) ** 2)  # value at tau = 0 is exactly 0
    return slope * tau, slope * c_surface


def test_gitt_recovers_diffusivity_only_for_short_pulses():
    short = analysis.gitt_pulse_diffusivity(tau=0.01, thickness=1.0, delta_Es=gitt_pulse(0.01)[0],
                                            delta_Et=gitt_pulse(0.01)[1])
    assert short == pytest.approx(1.0, rel=0.03)
    assert analysis.gitt_validity(diffusivity=1.0, tau=0.01, thickness=1.0)["valid"]
    long = analysis.gitt_pulse_diffusivity(tau=0.8, thickness=1.0, delta_Es=gitt_pulse(0.8)[0],
                                           delta_Et=gitt_pulse(0.8)[1])
    assert abs(long - 1.0) > 0.15  # about -21 % at tau D / L^2 = 0.8
    assert not analysis.gitt_validity(diffusivity=1.0, tau=0.8, thickness=1.0)["valid"]


def test_gitt_paper_pulses_are_outside_validity():
    # 600 s pulses on 630 nm with the paper's two D values (doi:10.1002/advs.202201209)
    for d_cm2, expected in ((5.44e-12, 0.82), (1.90e-12, 0.29)):
        check = analysis.gitt_validity(diffusivity=d_cm2 * 1e-4, tau=600.0, thickness=630e-9)
        assert check["tau_D_over_L2"] == pytest.approx(expected, rel=0.02)
        assert not check["valid"]


def test_gitt_equation_1_equals_the_pulse_form():
    current, vm, area, thickness, tau = 1e-5, 1.8e-5, 1e-4, 6e-7, 60.0
    moles_host = area * thickness / vm
    dx = current * tau / (F * moles_host)
    de_dx, de_dsqrt = -0.4, -0.01
    eq1 = analysis.gitt_diffusivity(current=current, molar_volume=vm, area=area, dE_dx=de_dx,
                                    dE_dsqrt_t=de_dsqrt)
    pulse = analysis.gitt_pulse_diffusivity(tau=tau, thickness=thickness, delta_Es=de_dx * dx,
                                            delta_Et=de_dsqrt * math.sqrt(tau))
    assert eq1 == pytest.approx(pulse, rel=1e-12)


def test_activation_energy_from_arrhenius_rct():
    rng = np.random.default_rng(7)
    t = np.array([273.15, 288.15, 298.15, 313.15, 328.15])
    for ea in (61.42e3, 72.96e3):  # the VN paper's two values
        rct = t / (3e8 * np.exp(-ea / (R * t)))
        assert analysis.activation_energy(t, rct).value == pytest.approx(ea, rel=1e-10)
        fit = analysis.activation_energy(t, rct * (1 + 0.03 * rng.standard_normal(t.size)))
        assert abs(fit.value - ea) < 4 * fit.stderr


def butler_volmer(eta, i0, alpha=0.5):
    return i0 * (np.exp((1 - alpha) * f * eta) - np.exp(-alpha * f * eta))


def test_exchange_current_from_micropolarization():
    eta = np.linspace(-5e-3, 5e-3, 11)
    fit = analysis.exchange_current_micropolarization(eta, butler_volmer(eta, 2.15))
    assert fit.value == pytest.approx(2.15, rel=2e-3)  # linearisation error (f eta)^2 / 24


def test_exchange_current_and_transfer_coefficient_from_tafel():
    eta = -np.linspace(0.2, 0.35, 14)  # cathodic Tafel branch, anodic term < 1e-3
    fit = analysis.exchange_current_tafel(eta, butler_volmer(eta, 0.68, alpha=0.4))
    assert fit.value == pytest.approx(0.68, rel=2e-3)
    assert fit.details["transfer_coefficient"] == pytest.approx(0.4, rel=1e-3)


def test_read_csv_with_named_columns_and_scaling(tmp_path):
    path = tmp_path / "cv.csv"
    path.write_text("time/s, Ewe/V, I/mA\n0, 0.5, 1.0\n1, 0.6, 2.5\n")
    data = analysis.read_csv(path, {"potential": "Ewe/V", "current": "I/mA"},
                             scale={"current": 1e-3})
    np.testing.assert_allclose(data["current"], [1e-3, 2.5e-3])
    np.testing.assert_allclose(data["potential"], [0.5, 0.6])
    with pytest.raises(FastnaiError, match="no column 'I/A'"):
        analysis.read_csv(path, {"current": "I/A"})
    with pytest.raises(FastnaiError, match="does not exist"):
        analysis.read_csv(tmp_path / "missing.csv", {"current": "I/A"})


def test_fits_reject_bad_input():
    with pytest.raises(FastnaiError):
        analysis.b_value([1e-3], [1.0])
    with pytest.raises(FastnaiError):
        analysis.b_value([1e-3, np.nan], [1.0, 2.0])
    with pytest.raises(FastnaiError):
        analysis.activation_energy([300.0, -1.0], [1.0, 2.0])
