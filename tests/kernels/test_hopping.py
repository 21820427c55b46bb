"""Hopping and Scharfetter-Gummel fluxes: exact limits and derivatives (SPEC 3.2, 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastnai._kernels.fermi_dirac import fd_half
from fastnai._kernels.hopping import (
    bernoulli,
    bernoulli_derivative,
    bernoulli_pair,
    degeneracy_correction,
    hopping_flux,
    sg_electron_flux,
    sinhc,
)

A = 0.48e-9  # hop distance [m] (doi:10.1002/smll.202200694)
D0 = 7.9e-16  # jump diffusivity [m2 s-1]
C_MAX = 2.93e28  # site density [m-3] (4.86e4 mol m-3)
VT = 0.025693


def bernoulli_reference(u: float) -> float:
    if abs(u) < 0.5:  # Taylor series with the Bernoulli numbers, to u^14
        coeff = [1, -1 / 2, 1 / 6, 0, -1 / 30, 0, 1 / 42, 0, -1 / 30, 0, 5 / 66, 0, -691 / 2730, 0,
                 7 / 6]
        return sum(c * u**k / math.factorial(k) for k, c in enumerate(coeff))
    if u > 700:
        return u * math.exp(-u) / -math.expm1(-u)
    return u / math.expm1(u)


@pytest.mark.parametrize("u", [-800.0, -40.0, -1.0, -0.3, -1e-3, -1e-9, 0.0, 1e-12, 5e-3, 0.2, 3.0,
                               60.0, 800.0])
def test_bernoulli_is_accurate_and_finite_everywhere(u):
    assert bernoulli(u) == pytest.approx(bernoulli_reference(u), rel=1e-14, abs=1e-300)
    h = 1e-6
    if abs(u) > 2e-2:
        fd = (bernoulli(u + h) - bernoulli(u - h)) / (2 * h)
        assert bernoulli_derivative(u) == pytest.approx(fd, rel=1e-7, abs=1e-300)
    assert bernoulli(u) / bernoulli(-u) == pytest.approx(math.exp(-u), rel=1e-13) if abs(u) < 600 else True


def test_bernoulli_derivative_is_continuous_across_the_series_switch():
    for u in (1e-2, -1e-2):
        below = bernoulli_derivative(u * (1 - 1e-12))
        above = bernoulli_derivative(u * (1 + 1e-12))
        assert below == pytest.approx(above, rel=1e-12)


def test_sinhc_series_matches_closed_form():
    for x in (1e-6, 9.9e-4, 1.01e-3, 0.5, 3.0):
        value, deriv = sinhc(x)
        assert value == pytest.approx(math.sinh(x) / x, rel=1e-15)
        # the closed-form derivative cancels badly for small x: compare with its series there
        exact = (x / 3 + x**3 / 30 + x**5 / 840 if x < 0.1
                 else (x * math.cosh(x) - math.sinh(x)) / x**2)
        assert deriv == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("u", [-12.0, -1.3, -1e-5, 0.0, 0.7, 9.0])
def test_flux_equals_lattice_hopping_at_h_equal_a(u):
    c_i, c_j = 0.3 * C_MAX, 0.05 * C_MAX
    gamma0 = D0 / A**2
    lattice = A * gamma0 * (c_i * (1 - c_j / C_MAX) * math.exp(u / 2)
                            - c_j * (1 - c_i / C_MAX) * math.exp(-u / 2))
    flux = hopping_flux(u, A, A, D0, c_i, c_j, C_MAX)[0]
    assert flux == pytest.approx(lattice, rel=1e-13)


@pytest.mark.parametrize("h", [0.1e-9, 0.48e-9, 3e-9, 50e-9])
@pytest.mark.parametrize("u", [-30.0, -0.4, 0.0, 2.0, 5.0])
def test_flux_vanishes_in_equilibrium_for_any_spacing(h, u):
    # (theta_j is kept below ~0.6: nearer 1 the vacancy fraction 1 - c/c_max itself loses digits)
    theta_i = 0.01
    odds_j = theta_i / (1 - theta_i) * math.exp(u)  # electrochemical potential equal at i and j
    theta_j = odds_j / (1 + odds_j)
    flux, *_ = hopping_flux(u, h, A, D0, theta_i * C_MAX, theta_j * C_MAX, C_MAX)
    g = sinhc(u * A / (2 * h))[0]
    one_way = D0 * g / h * theta_i * C_MAX * (1 - theta_j) * bernoulli(-u)
    assert abs(flux) <= 1e-14 * one_way


@pytest.mark.parametrize("field", [1e6, 2.2e8, 1e9, -5e8])
def test_uniform_density_drifts_at_the_mott_gurney_velocity(field):
    h = 0.2e-9
    c = 0.01 * C_MAX
    u = field * h / VT  # psi_i - psi_(i+1) = E h
    flux = hopping_flux(u, h, A, D0, c, c, C_MAX)[0]
    gamma0 = D0 / A**2
    mott_gurney = c * (1 - c / C_MAX) * 2 * A * gamma0 * math.sinh(A * field / (2 * VT))
    assert flux == pytest.approx(mott_gurney, rel=1e-6)


def test_flux_is_monotone_and_derivatives_match_finite_differences():
    rng = np.random.default_rng(11)
    for _ in range(200):
        u = rng.uniform(-20, 20)
        h = rng.uniform(0.05e-9, 5e-9)
        c_i, c_j = rng.uniform(0.0, 0.99, 2) * C_MAX
        flux, d_u, d_ci, d_cj = hopping_flux(u, h, A, D0, c_i, c_j, C_MAX)
        assert d_ci >= 0.0 and d_cj <= 0.0
        eps_u = 1e-6 * max(1.0, abs(u))
        fd_u = (hopping_flux(u + eps_u, h, A, D0, c_i, c_j, C_MAX)[0]
                - hopping_flux(u - eps_u, h, A, D0, c_i, c_j, C_MAX)[0]) / (2 * eps_u)
        scale = abs(flux) + abs(d_u) * eps_u + D0 / h * C_MAX * 1e-12
        assert abs(d_u - fd_u) * eps_u <= 1e-6 * scale
        eps_c = 1e-7 * C_MAX
        fd_ci = (hopping_flux(u, h, A, D0, c_i + eps_c, c_j, C_MAX)[0]
                 - hopping_flux(u, h, A, D0, c_i - eps_c, c_j, C_MAX)[0]) / (2 * eps_c)
        assert d_ci == pytest.approx(fd_ci, rel=1e-6, abs=1e-9 * abs(d_ci) + 1e-300)


def test_scharfetter_gummel_zero_for_flat_quasi_fermi_level_boltzmann_and_degenerate():
    n_c = 7.2e23
    for eta_i, eta_j in ((-5.0, -3.0), (2.0, 9.0), (30.0, 38.0)):
        n_i, n_j = n_c * fd_half(eta_i), n_c * fd_half(eta_j)
        d_i = degeneracy_correction(n_i, n_c)[0]
        d_j = degeneracy_correction(n_j, n_c)[0]
        # flat E_Fn: -psi + V_t eta constant, so psi_j - psi_i = V_t (eta_j - eta_i)
        psi_i, psi_j = 0.1, 0.1 + VT * (eta_j - eta_i)
        flux = sg_electron_flux(psi_i, psi_j, d_i, d_j, n_i, n_j, 1e-4 * VT, 1e-10, VT)[0]
        one_way = 1e-4 * VT / 1e-10 * n_i * bernoulli(-(eta_j - eta_i - (d_j - d_i)))
        assert abs(flux) <= 1e-12 * one_way


def test_scharfetter_gummel_pure_diffusion_and_drift_limits():
    d_n, h = 2.6e-6, 1e-9
    flux = sg_electron_flux(0.0, 0.0, 0.0, 0.0, 3e24, 1e24, d_n, h, VT)[0]
    assert flux == pytest.approx(d_n * (3e24 - 1e24) / h, rel=1e-14)
    # uniform n with dpsi/dx = 1e7 V/m (field -1e7 V/m): electrons drift toward higher psi
    # at mu |E| with mu = D / V_t
    slope = 1e7
    flux = sg_electron_flux(0.0, slope * h, 0.0, 0.0, 1e24, 1e24, d_n, h, VT)[0]
    assert flux == pytest.approx((d_n / VT) * 1e24 * slope, rel=1e-12)


def test_degeneracy_correction_limits_and_derivative():
    n_c = 7.2e23
    assert abs(degeneracy_correction(1e-8 * n_c, n_c)[0]) < 1e-8
    n = 50 * n_c
    value, deriv = degeneracy_correction(n, n_c)
    fd = (degeneracy_correction(n * (1 + 1e-6), n_c)[0]
          - degeneracy_correction(n * (1 - 1e-6), n_c)[0]) / (2e-6 * n)
    assert value > 0 and deriv == pytest.approx(fd, rel=1e-6)


def test_bernoulli_pair_is_bernoulli_and_its_derivative_to_the_bit():
    """The fused pair (B evaluated once) used by hopping_flux and the drift-diffusion kernel."""
    for u in np.concatenate([np.linspace(-0.02, 0.02, 81), np.geomspace(1e-6, 800.0, 200),
                             -np.geomspace(1e-6, 800.0, 200), [0.0, 1e-2, -1e-2]]):
        b, db = bernoulli_pair(u)
        assert b == bernoulli(u) and db == bernoulli_derivative(u)
