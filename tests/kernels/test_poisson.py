"""Space-charge and Poisson-Newton kernels against plain-numpy twins and exact invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants
from scipy.integrate import quad
from scipy.linalg import solve_banded

from fastnai._kernels import poisson
from fastnai._kernels.fermi_dirac import fermi_dirac

VT = constants.k * 298.15 / constants.e


def make_params(statistics=poisson.STATISTICS_FERMI_DIRAC, *, donor_level=None, traps=0.0):
    p = np.zeros(poisson.N_PARAMS)
    p[poisson.P_VT] = VT
    p[poisson.P_NC] = 7.0e23
    p[poisson.P_NV] = 2.5e25
    p[poisson.P_EG] = 3.2
    p[poisson.P_ND] = 1e24
    p[poisson.P_GD] = 2.0
    p[poisson.P_NA] = 1e23
    p[poisson.P_NT] = traps
    p[poisson.P_ET] = 0.8
    p[poisson.P_GT] = 1.0
    p[poisson.P_STATISTICS] = statistics
    p[poisson.P_HOLES] = 1.0
    if donor_level is not None:
        p[poisson.P_DONOR_IONISATION] = 1.0
        p[poisson.P_ED] = donor_level
    return p


def space_charge_numpy(psi, p):
    """Plain-numpy twin of the space-charge law."""
    vt = p[poisson.P_VT]
    if p[poisson.P_STATISTICS] == poisson.STATISTICS_BOLTZMANN:
        n = p[poisson.P_NC] * np.exp(psi / vt)
        h = p[poisson.P_NV] * np.exp((-psi - p[poisson.P_EG]) / vt)
    else:
        n = p[poisson.P_NC] * fermi_dirac(0.5, psi / vt)
        h = p[poisson.P_NV] * fermi_dirac(0.5, (-psi - p[poisson.P_EG]) / vt)
    nd = p[poisson.P_ND] * np.ones_like(psi)
    if p[poisson.P_DONOR_IONISATION]:
        nd = p[poisson.P_ND] / (1 + p[poisson.P_GD] * np.exp((psi + p[poisson.P_ED]) / vt))
    nt = p[poisson.P_NT] / (1 + np.exp((-psi - p[poisson.P_ET]) / vt) / p[poisson.P_GT])
    return constants.e * (h - n + nd - p[poisson.P_NA] - nt)


@pytest.mark.parametrize("statistics", [poisson.STATISTICS_FERMI_DIRAC, poisson.STATISTICS_BOLTZMANN])
@pytest.mark.parametrize("donor_level", [None, 0.3])
@pytest.mark.parametrize("traps", [0.0, 5e23])
def test_space_charge_matches_numpy_twin_and_its_derivative(statistics, donor_level, traps):
    p = make_params(statistics, donor_level=donor_level, traps=traps)
    psi = np.linspace(-3.5, 1.2, 97)
    rho = np.array([poisson.space_charge(x, p)[0] for x in psi])
    drho = np.array([poisson.space_charge(x, p)[1] for x in psi])
    np.testing.assert_allclose(rho, space_charge_numpy(psi, p), rtol=1e-12, atol=1e-3)
    h = 1e-6
    fd = (space_charge_numpy(psi + h, p) - space_charge_numpy(psi - h, p)) / (2 * h)
    np.testing.assert_allclose(drho, fd, rtol=1e-6, atol=1e-2)
    assert np.all(drho < 0.0)  # monotone: the neutral point is unique


def test_neutral_potential_zeroes_the_space_charge():
    for donor_level in (None, 0.2, 1.0):
        p = make_params(donor_level=donor_level, traps=1e23)
        psi_b = poisson.neutral_potential(p)
        rho, drho = poisson.space_charge(psi_b, p)
        assert abs(rho) < 1e-9 * constants.e * p[poisson.P_ND] or abs(rho / drho) < 1e-12


def test_interface_state_charge_matches_quadrature_and_derivative():
    gap, d_it, cnl = 3.2, 1e17, 2.0

    def numeric(psi0):
        e_f = psi0 + gap

        def f(e):
            return 1.0 / (1.0 + math.exp(min((e - e_f) / VT, 700.0)))

        below = quad(lambda e: 1.0 - f(e), 0.0, cnl, points=[min(max(e_f, 0), cnl)], epsabs=1e-14)[0]
        above = quad(f, cnl, gap, points=[min(max(e_f, cnl), gap)], epsabs=1e-14)[0]
        return constants.e * d_it * (below - above)

    for psi0 in (-3.0, -1.5, -1.2, -0.5, 0.0):
        q_it, dq = poisson.interface_state_charge(psi0, gap, VT, d_it, cnl)
        assert q_it == pytest.approx(numeric(psi0), rel=1e-7, abs=1e-12)
        h = 1e-6
        fd = (poisson.interface_state_charge(psi0 + h, gap, VT, d_it, cnl)[0]
              - poisson.interface_state_charge(psi0 - h, gap, VT, d_it, cnl)[0]) / (2 * h)
        assert dq == pytest.approx(fd, rel=1e-6)
    # neutral when E_F sits at the neutrality level
    assert poisson.interface_state_charge(cnl - gap, gap, VT, d_it, cnl)[0] == pytest.approx(0.0, abs=1e-9)


def test_parallel_and_serial_assembly_are_identical(numba_threads):
    n = 50_000
    rng = np.random.default_rng(3)
    psi = rng.uniform(-0.5, 0.5, n)
    conductance = rng.uniform(1.0, 2.0, n - 1)
    volume = rng.uniform(1e-12, 2e-12, n)
    p = make_params()
    out_s = [np.zeros(n) for _ in range(4)]
    out_p = [np.zeros(n) for _ in range(4)]
    poisson.assemble_serial(psi, conductance, volume, p, *out_s)
    poisson.assemble_parallel(psi, conductance, volume, p, *out_p)
    for a, b in zip(out_s, out_p, strict=True):
        np.testing.assert_array_equal(a, b)


def newton_numpy(psi, conductance, volume, p, psi_c, tol=1e-10):
    """Plain-numpy twin of the Newton kernel (Dirichlet contact, zero far field)."""
    n = psi.size
    for _ in range(200):
        rho = space_charge_numpy(psi, p)
        h = 1e-7
        drho = (space_charge_numpy(psi + h, p) - space_charge_numpy(psi - h, p)) / (2 * h)
        flux = conductance * np.diff(psi)
        res = rho * volume
        res[:-1] += flux
        res[1:] -= flux
        diag = drho * volume
        diag[:-1] -= conductance
        diag[1:] -= conductance
        ab = np.zeros((3, n))
        ab[0, 1:] = conductance
        ab[1] = diag
        ab[2, :-1] = conductance
        res[0] = psi_c - psi[0]
        ab[1, 0] = -1.0
        ab[0, 1] = 0.0
        delta = solve_banded((1, 1), ab, -res)
        large = np.abs(delta) > VT  # logarithmic limiting of large steps, as the kernel does
        step = np.where(large, np.sign(delta) * VT * (1 + np.log(np.maximum(np.abs(delta), VT) / VT)),
                        delta)
        psi = psi + step
        if np.max(np.abs(delta)) <= tol * VT:
            return psi
    raise AssertionError("numpy twin did not converge")


def test_newton_kernel_matches_numpy_twin():
    n = 400
    x = np.linspace(0.0, 60e-9, n)
    eps = 40 * constants.epsilon_0
    conductance = eps / np.diff(x)
    edges = np.concatenate(([x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]))
    volume = np.diff(edges)
    p = make_params()
    psi_b = poisson.neutral_potential(p)
    psi_c = 0.6
    guess = psi_b + (psi_c - psi_b) * np.exp(-x / 5e-9)
    psi = guess.copy()
    contact = np.zeros(poisson.N_CONTACT)
    contact[poisson.C_PSI] = psi_c
    history = np.zeros((100, 2))
    iters = poisson.newton_solve(psi, conductance, volume, 1.0, p, poisson.BC_DIRICHLET, contact,
                                 1e-10, 100, False, history)
    assert iters > 0
    assert history[iters - 1, 0] <= 1e-10
    reference = newton_numpy(guess.copy(), conductance, volume, p, psi_c)
    np.testing.assert_allclose(psi, reference, atol=1e-11)
    # quadratic convergence near the root: each update norm at most ~ the square of the last
    tail = history[:iters, 0]
    tail = tail[(tail < 1e-2) & (tail > 1e-9)]
    for a, b in zip(tail[:-1], tail[1:], strict=False):
        assert b <= 50 * a * a + 1e-12


def test_newton_kernel_reports_failure_with_negative_count():
    n = 200
    x = np.linspace(0.0, 30e-9, n)
    conductance = 40 * constants.epsilon_0 / np.diff(x)
    volume = np.full(n, x[1])
    p = make_params()
    psi = np.zeros(n)
    contact = np.zeros(poisson.N_CONTACT)
    contact[poisson.C_PSI] = 1.5
    history = np.zeros((2, 2))
    assert poisson.newton_solve(psi, conductance, volume, 1.0, p, poisson.BC_DIRICHLET, contact,
                                1e-14, 2, False, history) == -2


def test_newton_kernel_reports_nan_as_failure():
    n = 50
    conductance = np.full(n - 1, np.nan)  # poisons every update
    p = make_params()
    history = np.zeros((10, 2))
    iters = poisson.newton_solve(np.zeros(n), conductance, np.ones(n), 1.0, p,
                                 poisson.BC_DIRICHLET, np.zeros(poisson.N_CONTACT), 1e-10, 10,
                                 False, history)
    assert iters == -1
