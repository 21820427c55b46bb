"""Drift-diffusion kernel: interpolation, open-circuit curve, exact Jacobian, galvanostatic
predictor (SPEC 3.2, 4).

Small on purpose: these tests also run as plain Python (NUMBA_DISABLE_JIT=1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants
from scipy.optimize import brentq

import fastnai
from fastnai._kernels import drift_diffusion as kdd
from fastnai.models import drift_diffusion as dd

VT = constants.k * 298.15 / constants.e
U0 = 0.75


def ocv_scalars(omega: float) -> np.ndarray:
    sc = np.zeros(kdd.N_SCALARS)
    sc[kdd.S_VT] = VT
    sc[kdd.S_U0] = U0
    sc[kdd.S_OMEGA] = omega
    sc[kdd.S_I0] = 1e-3
    sc[kdd.S_ALPHA] = 0.5
    sc[kdd.S_AREA_S] = 1.0
    return sc


def ocv_closed_form(theta: float, omega: float, vacancy: float | None = None) -> float:
    """U(theta) = U0 - (kT/q) ln(theta/(1-theta)) - Omega (1 - 2 theta) (SPEC 3.2);
    ``vacancy`` = 1 - theta where it is known more accurately than from theta."""
    vacancy = 1.0 - theta if vacancy is None else vacancy
    return U0 - VT * (math.log(theta) - math.log(vacancy)) - omega * (1.0 - 2.0 * theta)


# ---------------------------------------------------------------------------------------------
# cubic Hermite table


def sine_table(h: float, lo: float = -3.0, hi: float = 3.0):
    m = int(round((hi - lo) / h)) + 1
    grid = lo + h * np.arange(m)
    table = np.column_stack((np.sin(grid), np.cos(grid)))
    return table, grid


def hermite_errors(h: float) -> tuple[float, float]:
    table, grid = sine_table(h)
    # off-grid points at fixed fractions of every cell inside [-2.5, 2.5]
    cells = np.flatnonzero((grid[:-1] >= -2.5) & (grid[1:] <= 2.5))
    err_f = err_d = 0.0
    for k in cells:
        for frac in (0.1, 0.3, 0.5, 0.77, 0.93):
            x = grid[k] + frac * h
            f, df = kdd.table_value(table, grid[0], h, x)
            err_f = max(err_f, abs(f - math.sin(x)))
            err_d = max(err_d, abs(df - math.cos(x)))
    return err_f, err_d


def test_hermite_table_is_fourth_order_in_value_and_third_in_derivative():
    e1 = hermite_errors(0.1)
    e2 = hermite_errors(0.05)
    # cubic Hermite error bounds with max|f''''| = 1 for sin: h^4/384 for the value and
    # sqrt(3)/216 h^3 for the derivative (de Boor, A Practical Guide to Splines, ch. IV)
    for h, (ef, ed) in ((0.1, e1), (0.05, e2)):
        assert ef <= h**4 / 384.0 * 1.0001
        assert ed <= math.sqrt(3.0) / 216.0 * h**3 * 1.0001
    # halving h divides the errors by 2^4 and 2^3 (the leading term dominates at these h:
    # the observed ratios are 15.9 and 7.9; +-10 % leaves room for the higher-order terms)
    assert e1[0] / e2[0] == pytest.approx(16.0, rel=0.1)
    assert e1[1] / e2[1] == pytest.approx(8.0, rel=0.1)


def test_hermite_table_reproduces_nodes_and_extrapolates_linearly():
    h = 0.1
    table, grid = sine_table(h)
    for k in (0, 7, len(grid) - 2):
        f, df = kdd.table_value(table, grid[0], h, grid[k])
        assert f == pytest.approx(table[k, 0], abs=1e-15)
        assert df == pytest.approx(table[k, 1], abs=1e-14)
    lo, hi = grid[0], grid[-1]
    for x in (lo - 0.01, lo - 5.0):  # below: tangent at the first node
        f, df = kdd.table_value(table, lo, h, x)
        assert f == pytest.approx(math.sin(lo) + (x - lo) * math.cos(lo), rel=1e-14)
        assert df == math.cos(lo)
    for x in (hi + 0.02, hi + 7.0):  # above: tangent at the last node
        f, df = kdd.table_value(table, lo, h, x)
        assert f == pytest.approx(math.sin(hi) + (x - hi) * math.cos(hi), rel=1e-12, abs=1e-14)
        assert df == pytest.approx(math.cos(hi), rel=1e-15)


# ---------------------------------------------------------------------------------------------
# open-circuit curve


@pytest.mark.parametrize("omega", [-0.6, 0.0])
def test_ocv_matches_closed_form_and_inverts_to_1e12(omega):
    sc = ocv_scalars(omega)
    for ell in np.linspace(-100.0, 30.0, 131):
        theta, vacancy = 1.0 / (1.0 + math.exp(-ell)), 1.0 / (1.0 + math.exp(ell))
        u, du = kdd.ocv(ell, sc)
        assert u == pytest.approx(ocv_closed_form(theta, omega, vacancy), rel=1e-12, abs=1e-12)
        # derivative by central differences (step 1e-4: truncation ~1e-9 relative)
        step = 1e-4
        fd = (kdd.ocv(ell + step, sc)[0] - kdd.ocv(ell - step, sc)[0]) / (2 * step)
        assert du == pytest.approx(fd, rel=1e-7)
        # the inverse from guesses on both sides and far away; the kernel stops Newton at a
        # 1e-13 relative step, so 1e-12 in ell (relative beyond |ell| = 1) is its promise
        for guess in (0.0, ell + 3.0, -200.0, 200.0):
            back = kdd.ocv_inverse(u, sc, guess)
            assert abs(back - ell) <= 1e-12 * max(1.0, abs(ell))


# ---------------------------------------------------------------------------------------------
# exact Jacobian of the assembled system

RTOL_J = 1e-5
SMALL_CASE = {"model": {"kind": "drift_diffusion"},
              "semiconductor": {"material": "anatase-TiO2", "thickness": "4 nm"},
              "contact": {"material": "TiC"}, "mesh": {"n_nodes": 6}}


@pytest.fixture(scope="module")
def small_setup():
    """Kernel inputs of a 6-node slab from the model's own builder (built once: the mu_e
    table takes seconds without JIT)."""
    return dd.build(fastnai.load_case(SMALL_CASE))


def assemble(setup, z, voltage, galvanostatic, sc, alpha0, hist, dt):
    n = z.shape[0]
    out = {k: np.zeros((n, 3, 3)) for k in ("lower", "diag", "upper")}
    out.update({k: np.zeros((n, 3)) for k in ("res", "bcol", "brow")})
    s = setup
    flow = kdd.assemble(z, voltage, galvanostatic, alpha0, hist, dt, s.vol[0], s.area[0], s.h[0],
                        s.g_face[0], s.d0_face[0], s.site_energy[0], s.region[0], s.params,
                        s.tables, sc, out["lower"], out["diag"], out["upper"], out["res"],
                        out["bcol"], out["brow"])
    return flow, out


def random_state(n, voltage, rng):
    """A non-equilibrium state: psi around V, theta from 2 % to 95 %, E_F - E_C between
    -0.45 and -0.1 eV (the traps 0.3 eV below E_C partly filled)."""
    z = np.empty((n, 3))
    x = rng.uniform(-0.45, -0.1, n)  # psi - phi [V]
    z[:, 2] = voltage + rng.uniform(-0.03, 0.03, n)
    z[:, 0] = z[:, 2] + x
    z[:, 1] = rng.uniform(-4.0, 3.0, n)
    return z


@pytest.mark.parametrize("electrostatics", [1.0, 0.0], ids=["poisson", "neutral"])
@pytest.mark.parametrize("surface", ["far", "contact"])
@pytest.mark.parametrize("galvanostatic", [False, True], ids=["potentiostatic", "galvanostatic"])
@pytest.mark.parametrize("electrons", [kdd.ELECTRONS_QUASI_EQUILIBRIUM,
                                       kdd.ELECTRONS_DRIFT_DIFFUSION], ids=["qe", "dd"])
def test_assembled_jacobian_equals_finite_differences(small_setup, electrons, galvanostatic,
                                                      surface, electrostatics):
    s = small_setup
    n = s.n_nodes
    sc = s.sc[0].copy()
    sc[kdd.S_ELECTRONS] = electrons
    sc[kdd.S_SURFACE] = n - 1 if surface == "far" else 0
    sc[kdd.S_ELECTROSTATICS] = electrostatics
    sc[kdd.S_I0] = 10.0  # a Butler-Volmer term comparable to the hopping terms
    rng = np.random.default_rng(7 + electrons + 2 * galvanostatic)
    voltage = 1.0
    z = random_state(n, voltage, rng)
    hist = np.zeros((n, 3))
    hist[:, 1] = -s.c_max * rng.uniform(0.05, 0.9, n)
    hist[:, 2] = -s.c_max * rng.uniform(0.05, 0.9, n)
    alpha0, dt = 1.5, 2e-4  # dt D0 / h^2 ~ 1: storage and hopping terms of one size
    _, jac = assemble(s, z, voltage, galvanostatic, sc, alpha0, hist, dt)

    def residual(zz, v):
        flow, out = assemble(s, zz, v, galvanostatic, sc, alpha0, hist, dt)
        return out["res"].copy(), flow

    # dense Jacobian by central differences, step 1e-5 (potentials in V: 4e-4 kT/q; ell in 1)
    step = 1e-5
    dense_fd = np.zeros((n, 3, n, 3))
    flow_fd = np.zeros((n, 3))
    for k in range(n):
        for r in range(3):
            zp, zm = z.copy(), z.copy()
            zp[k, r] += step
            zm[k, r] -= step
            rp, fp = residual(zp, voltage)
            rm, fm = residual(zm, voltage)
            dense_fd[:, :, k, r] = (rp - rm) / (2 * step)
            flow_fd[k, r] = (fp - fm) / (2 * step)
    rp, fp = residual(z, voltage + step)
    rm, fm = residual(z, voltage - step)
    bcol_fd = (rp - rm) / (2 * step)
    dflow_dv = (fp - fm) / (2 * step)

    dense = np.zeros((n, 3, n, 3))
    for i in range(n):
        dense[i, :, i, :] = jac["diag"][i]
        if i > 0:
            dense[i, :, i - 1, :] = jac["lower"][i]
        if i < n - 1:
            dense[i, :, i + 1, :] = jac["upper"][i]
    # entries are compared to 1e-5 relative above a floor of 1e-7 of their row's largest
    # entry: the differences are good to ~1e-7 relative (truncation (step/V_t)^2 ~ 2e-7;
    # rounding ~1e-16 |residual terms| / step reaches 3e-6 only on entries 1e-7 of their row's
    # largest, where the hopping terms cancel), far below an error in a derivative formula
    for i in range(n):
        for r in range(3):
            row_fd = dense_fd[i, r].ravel()
            floor = 1e-7 * max(np.max(np.abs(row_fd)), np.max(np.abs(dense[i, r])))
            np.testing.assert_allclose(dense[i, r].ravel(), row_fd, rtol=RTOL_J, atol=floor,
                                       err_msg=f"row ({i}, {r})")
    # dR/dV (Dirichlet rows and quasi-equilibrium electrons) is the border column
    np.testing.assert_allclose(jac["bcol"], bcol_fd, rtol=1e-7, atol=1e-12)
    if galvanostatic:
        floor = 1e-7 * np.max(np.abs(flow_fd))
        np.testing.assert_allclose(jac["brow"], flow_fd, rtol=RTOL_J, atol=floor)
        assert np.max(np.abs(flow_fd)) > 0.0
    else:
        assert not np.any(jac["brow"])
    # the interface current depends on V only through the state (phi), never directly
    assert dflow_dv == 0.0


# ---------------------------------------------------------------------------------------------
# galvanostatic predictor


def butler_volmer_total(etas, u_locs, sc, shift):
    """sum_p A_s,p i0_p [exp((1-a) f eta) - exp(-a f eta)] written out, with theta_eq from the
    closed-form U(theta) inverted by Brent's method (independent of ocv_inverse)."""
    total = 0.0
    for p in range(len(etas)):
        row = sc[p]
        omega = row[kdd.S_OMEGA]
        target = u_locs[p]
        theta_eq = brentq(lambda th, om=omega, u=target: ocv_closed_form(th, om) - u, 1e-300,
                          1 - 1e-16, xtol=1e-300, rtol=1e-15, maxiter=500)
        i0 = 2.0 * row[kdd.S_I0] * math.sqrt(theta_eq * (1.0 - theta_eq))
        a = row[kdd.S_ALPHA]
        eta = etas[p] + shift
        total += row[kdd.S_AREA_S] * i0 * (math.exp((1 - a) * eta / VT) - math.exp(-a * eta / VT))
    return total


@pytest.mark.parametrize("current", [-0.3, 0.0, 2e-3, 5.0])
def test_rigid_shift_makes_the_summed_butler_volmer_current_equal_the_applied_one(current):
    sc = np.stack([ocv_scalars(-0.6), ocv_scalars(-0.6), ocv_scalars(0.0)])
    sc[:, kdd.S_AREA_S] = [1.0, 4.0, 2.5]
    sc[:, kdd.S_I0] = [1e-3, 1e-3, 0.2]
    sc[:, kdd.S_ALPHA] = [0.5, 0.5, 0.3]
    etas = np.array([0.02, -0.05, 0.1])
    u_locs = np.array([0.9, 0.7, 0.55])
    shift = kdd.rigid_shift(etas, u_locs, sc, current)
    total = butler_volmer_total(etas, u_locs, sc, shift)
    # the bisection stops at a 1e-12 V bracket: the shift is within 1e-12 V of the root, so the
    # current is exact to dI/dV x 1e-12 V (2e-12 allowed: the slope is a central difference)
    slope = (butler_volmer_total(etas, u_locs, sc, shift + 1e-7)
             - butler_volmer_total(etas, u_locs, sc, shift - 1e-7)) / 2e-7
    assert abs(total - current) <= 2e-12 * slope + 1e-13 * abs(current)
    if current == 0.0:
        # one particle alone at zero current: the shift cancels its overpotential
        alone = kdd.rigid_shift(etas[:1], u_locs[:1], sc[:1], 0.0)
        assert alone == pytest.approx(-etas[0], abs=2e-12)
