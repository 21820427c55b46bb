"""The film-diffusion kernel: exact Jacobian, conservation, equilibrium, Butler-Volmer inverse."""

from __future__ import annotations

import numpy as np
import pytest

from fastnai._kernels import film_diffusion as kfd


def setup(n=12, seed=3, control=0.0, value=-2.0, stress=True):
    rng = np.random.default_rng(seed)
    h = rng.uniform(5e-9, 15e-9, n)
    c_max = rng.uniform(1.4e5, 1.7e5, n)
    d = rng.uniform(1e-16, 1e-15, n)
    beta = rng.uniform(2.4, 3.0, n)
    sigma_h = rng.uniform(-0.4e9, 0.1e9, n) if stress else np.zeros(n)
    sc = np.zeros(kfd.N_SCALARS)
    sc[kfd.S_VT] = 0.025693
    sc[kfd.S_OMEGA_MECH] = 1.78e-5 / (8.314 * 298.15) if stress else 0.0
    sc[kfd.S_I0] = 1.0
    sc[kfd.S_ALPHA] = 0.4
    sc[kfd.S_U0] = 0.6
    sc[kfd.S_OMEGA_U] = -0.02
    sc[kfd.S_CONTROL] = control
    sc[kfd.S_VALUE] = value
    theta = rng.uniform(0.1, 0.8, n)
    return theta, h, c_max, d, beta, sigma_h, sc


@pytest.mark.parametrize("control, value", [(0.0, -2.0), (1.0, 0.45)])
def test_jacobian_matches_finite_differences(control, value):
    theta, h, c_max, d, beta, sigma_h, sc = setup(control=control, value=value)
    n = theta.size
    hist = -theta * 0.97
    bands = [np.empty(n) for _ in range(4)]
    kfd.assemble(theta, hist, 1.5, 7.0, h, c_max, d, beta, sigma_h, sc, *bands, np.empty(n))
    lower, diag, upper, res = bands
    jac = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    fd = np.empty((n, n))
    for j in range(n):
        eps = 1e-7 * max(1e-3, theta[j])
        tp, tm = theta.copy(), theta.copy()
        tp[j] += eps
        tm[j] -= eps
        rp, rm = [np.empty(n) for _ in range(2)]
        kfd.assemble(tp, hist, 1.5, 7.0, h, c_max, d, beta, sigma_h, sc, np.empty(n),
                     np.empty(n), np.empty(n), rp, np.empty(n))
        kfd.assemble(tm, hist, 1.5, 7.0, h, c_max, d, beta, sigma_h, sc, np.empty(n),
                     np.empty(n), np.empty(n), rm, np.empty(n))
        fd[:, j] = (rp - rm) / (2 * eps)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-9 * np.abs(jac).max())


def test_an_implicit_step_changes_the_inventory_by_the_current():
    """BDF1: sum h c_max (theta_new - theta_old) = -dt i / F exactly (fluxes cancel in pairs)."""
    theta, h, c_max, d, beta, sigma_h, sc = setup(value=-3.0)
    old = theta.copy()
    ws = kfd.workspace(theta.size)
    its = kfd.newton(theta, -old, 1.0, 20.0, h, c_max, d, beta, sigma_h, sc, 1e-13, 50, *ws)
    assert its > 0
    change = kfd.inventory(theta, h, c_max) - kfd.inventory(old, h, c_max)
    assert change == pytest.approx(3.0 * 20.0 / kfd.FARADAY, rel=1e-11)
    assert np.all((theta > 0) & (theta < 1))


def test_uniform_state_at_open_circuit_stays_put():
    """No current and no stress gradient: a uniform theta is an equilibrium for any D, beta."""
    theta, h, c_max, d, beta, _, sc = setup(value=0.0, stress=False)
    theta[:] = 0.37
    ws = kfd.workspace(theta.size)
    its = kfd.newton(theta, -theta.copy(), 1.0, 1e3, h, c_max, d, beta, np.zeros(theta.size), sc,
                     1e-14, 20, *ws)
    assert its > 0
    np.testing.assert_allclose(theta, 0.37, rtol=0, atol=1e-15)


def test_flux_with_a_stress_gradient_drives_na_toward_tension():
    """Uniform theta, sigma_h rising upward: J = D c theta (1-theta) Omega/RT dsigma_h/dz > 0."""
    theta, h, c_max, d, beta, _, sc = setup(stress=True, value=0.0)
    theta[:] = 0.5
    sigma_h = np.linspace(-0.3e9, 0.0, theta.size)
    n = theta.size
    res = np.empty(n)
    kfd.assemble(theta, -theta.copy(), 1.0, 1.0, h, c_max, d, beta, sigma_h, sc, np.empty(n),
                 np.empty(n), np.empty(n), res, np.empty(n))
    # the bottom cell loses Na upward (residual = dt J > 0), the top cell gains it
    assert res[0] > 0 > res[-1]
    assert abs(res.sum()) < 1e-12 * np.abs(res).max()


@pytest.mark.parametrize("alpha", [0.5, 0.3])
@pytest.mark.parametrize("current", [-5.0, -0.01, 0.0, 0.2, 40.0])
def test_galvanostatic_voltage_inverts_butler_volmer(alpha, current):
    *_, sc = setup()
    sc[kfd.S_ALPHA] = alpha
    theta_s = 0.42
    v = kfd.cell_voltage_galvanostatic(theta_s, -2e8, current, sc)
    i, _ = kfd.butler_volmer(v, theta_s, -2e8, sc)
    assert i == pytest.approx(current, rel=1e-12, abs=1e-14)
