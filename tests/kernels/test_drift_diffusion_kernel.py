"""Drift-diffusion kernel: interpolation, open-circuit curve, exact Jacobian, galvanostatic
predictor (SPEC 3.2, 4).

Small on purpose: these tests also run as plain Python (NUMBA_DISABLE_JIT=1).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import constants
from scipy.optimize import brentq

import fastnai
from fastnai._kernels import drift_diffusion as kdd
from fastnai.models import drift_diffusion as dd

VT = constants.k * 298.15 / constants.e
U0 = 0.75
JIT_DISABLED = bool(numba.config.DISABLE_JIT)


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
              "contact": {"material": "TiC"}, "mesh": {"n_nodes": 6},
              "protocol": [{"step": "rest", "duration": 1.0}]}


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


# ---------------------------------------------------------------------------------------------
# fast paths that must give the reference's bits


def charge_params(setup, statistics, traps, ionisation=0.0, trap_degeneracy=1.0):
    from fastnai._kernels import poisson

    p = setup.params[0].copy()
    p[poisson.P_STATISTICS] = statistics
    p[poisson.P_NT] = traps * p[poisson.P_NT]
    p[poisson.P_DONOR_IONISATION] = ionisation
    p[poisson.P_GT] = trap_degeneracy
    return poisson.charge_constants(p)


@pytest.mark.parametrize("statistics", [0.0, 1.0], ids=["fermi-dirac", "boltzmann"])
@pytest.mark.parametrize("traps, ionisation, trap_degeneracy", [
    (0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 2.0), (1e3, 0.0, 1.0)],
    ids=["no-traps", "traps", "traps-ionisation-gt2", "trap-dominated"])
def test_electron_level_is_the_bisection_to_the_bit(small_setup, statistics, traps, ionisation,
                                                    trap_degeneracy):
    """The Newton search returns the 53rd-bracket midpoint that the bisection returns: from
    the dilute range through the traps filling (where ln e is flat to round-off over several
    brackets) to degenerate electrons (x = 0.5 V: E_F 20 kT above E_C), and beyond |x| = 15 V
    (the bisection itself)."""
    consts = charge_params(small_setup, statistics, traps, ionisation, trap_degeneracy)
    rng = np.random.default_rng(11)
    xs = np.concatenate([np.linspace(-1.5, 0.5, 301), rng.uniform(-14.0, 14.0, 60),
                         [-15.5, 15.5, -40.0]])
    targets = [kdd._electrons(x, consts)[0] for x in xs] + [1e-300, 1e-200, 1e40]
    if JIT_DISABLED and statistics == 1.0:
        # plain Python raises OverflowError where the compiled exp returns inf: the
        # bisection's probes above x = 18 V are out of its reach
        targets = [kdd._electrons(x, consts)[0] for x in xs if x < 0.0] + [1e-300]
    for target in targets:
        if target > 0.0:  # the callers clamp at 1e-300
            assert (kdd.electron_level(target, consts)
                    == kdd.electron_level_bisection(target, consts))


def test_electron_level_guess_is_exact_for_boltzmann_electrons_and_traps(small_setup):
    consts = charge_params(small_setup, 1.0, 1.0)
    for x in (-1.2, -0.6, -0.3, -0.1):
        target = kdd._electrons(x, consts)[0]
        assert kdd.electron_level_guess(target, consts) == pytest.approx(x, abs=1e-12)


def dd_state(setup, n_nodes=None, seed=3):
    """A drift-diffusion state (psi, c, e) of random unknowns and its scalars."""
    sc = setup.sc[0].copy()
    sc[kdd.S_ELECTRONS] = kdd.ELECTRONS_DRIFT_DIFFUSION
    n = setup.n_nodes if n_nodes is None else n_nodes
    z = random_state(n, 1.0, np.random.default_rng(seed))
    region = np.zeros(n, dtype=np.int64)
    region[1::3] = 1  # both regions' charge laws
    y = np.empty((n, 3))
    kdd.state_from_unknowns(z, region, setup.params, sc, y)
    return y, region, sc


def test_unknowns_depend_on_the_state_alone_and_invert_it(small_setup, numba_threads):
    """Whatever the output buffer held (the previous step, NaN, nothing), the unknowns are the
    bisection's to the bit, the parallel twin's equal the serial ones, and they give the state
    back (e to the bracket, 1e-12)."""
    s = small_setup
    y, region, sc = dd_state(s, n_nodes=50)
    n = y.shape[0]
    results = []
    for fill in (np.nan, 0.0, 1e300):
        z = np.full((n, 3), fill)
        kdd.unknowns_from_state(y, 1.0, region, s.params, sc, z)
        results.append(z)
    twin = np.full((n, 3), np.nan)
    kdd._unknowns_chunks(y, 1.0, region, s.params, sc, twin)
    results.append(twin)
    for z in results[1:]:
        np.testing.assert_array_equal(z, results[0])
    z = results[0]
    from fastnai._kernels import poisson

    for i in range(n):
        consts = poisson.charge_constants(s.params[region[i]])
        assert z[i, 2] == y[i, 0] - kdd.electron_level_bisection(y[i, 2], consts)
    back = np.empty((n, 3))
    kdd.state_from_unknowns(z, region, s.params, sc, back)
    np.testing.assert_array_equal(back[:, 0], y[:, 0])
    np.testing.assert_allclose(back[:, 1:], y[:, 1:], rtol=1e-12)
    chunked = np.empty((n, 3))
    kdd._state_chunks(z, region, s.params, sc, chunked)
    np.testing.assert_array_equal(chunked, back)


@pytest.mark.parametrize("electrostatics", [1.0, 0.0], ids=["poisson", "neutral"])
@pytest.mark.parametrize("galvanostatic", [False, True], ids=["potentiostatic", "galvanostatic"])
@pytest.mark.parametrize("electrons", [kdd.ELECTRONS_QUASI_EQUILIBRIUM,
                                       kdd.ELECTRONS_DRIFT_DIFFUSION], ids=["qe", "dd"])
def test_parallel_assembly_is_the_serial_one_to_the_bit(small_setup, numba_threads, electrons,
                                                        galvanostatic, electrostatics):
    """65 nodes in 64 chunks: almost every face is a chunk boundary; two regions alternate."""
    s = small_setup
    n = 65
    sc = s.sc[0].copy()
    sc[kdd.S_ELECTRONS] = electrons
    sc[kdd.S_ELECTROSTATICS] = electrostatics
    sc[kdd.S_SURFACE] = n - 1
    rng = np.random.default_rng(5)
    z = random_state(n, 1.0, rng)
    region = (np.arange(n) % 3 == 1).astype(np.int64)
    hist = -s.c_max * rng.uniform(0.05, 0.9, (n, 3))
    faces = [np.resize(a, n - 1) for a in (s.area[0], s.h[0], s.g_face[0], s.d0_face[0])]
    args = (z, 1.0, galvanostatic, 1.5, hist, 2e-4, np.resize(s.vol[0], n), *faces,
            np.zeros(n), region, s.params, s.tables, sc)
    outs = []
    for kernel in (kdd.assemble_serial, kdd.assemble_parallel, kdd.assemble):
        out = [np.full((n, 3, 3), np.nan) for _ in range(3)] + [np.full((n, 3), np.nan)
                                                                for _ in range(3)]
        flow = kernel(*args, *out)
        outs.append((flow, out))
    for flow, out in outs[1:]:
        assert flow == outs[0][0]
        for a, b in zip(out, outs[0][1], strict=True):
            np.testing.assert_array_equal(a, b)
    assert kdd.surface_flow(z, region, sc, s.tables, np.zeros(n)) == outs[0][0]


def random_blocks(n, rng, ties=False):
    """A block-diagonally dominant block-tridiagonal system (as a discretised PDE gives) whose
    rows span ten orders of magnitude; ``ties``: equal and zero pivot candidates and Dirichlet
    rows (the pivoting and scaling branches)."""
    scale = 10.0 ** rng.integers(-5, 5, size=(n, 3, 1))
    lower, diag, upper = (rng.normal(size=(n, 3, 3)) * scale for _ in range(3))
    diag += 20.0 * np.eye(3) * scale
    if ties:
        diag[:, 1, 0] = diag[:, 0, 0]
        diag[:, 2, 0] = -diag[:, 0, 0]
        lower[:, :, 2] = 0.0
        upper[::2, 0, :] = 0.0
        diag[::3, 2, :] = 0.0
        diag[::3, 2, 2] = 1.0
        lower[::3, 2, :] = 0.0
        upper[::3, 2, :] = 0.0
    return lower, diag, upper


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
def test_block3_solves_are_the_general_solver_to_the_bit(ties):
    from fastnai._kernels.block_tridiagonal import solve_block_tridiagonal, solve_bordered

    rng = np.random.default_rng(21)
    for n in (1, 2, 7, 30):
        lower, diag, upper = random_blocks(n, rng, ties)
        r, b, c = (rng.normal(size=(n, 3)) for _ in range(3))
        ref = np.empty((n, 3, 2))
        solve_block_tridiagonal(lower, diag, upper, np.stack([r, b], axis=2), ref,
                                np.empty((n, 3, 3)), np.empty((3, 5)))
        ref_one = np.empty((n, 3, 1))
        solve_block_tridiagonal(lower, diag, upper, r[:, :, None].copy(), ref_one,
                                np.empty((n, 3, 3)), np.empty((3, 4)))
        xa, xb, one = np.empty((n, 3)), np.empty((n, 3)), np.empty((n, 3))
        kdd.solve_block3_serial(lower, diag, upper, r, b, True, xa, xb, np.empty((n, 3, 3)))
        kdd.solve_block3_serial(lower, diag, upper, r, r, False, one, one, np.empty((n, 3, 3)))
        np.testing.assert_array_equal(xa, ref[:, :, 0])
        np.testing.assert_array_equal(xb, ref[:, :, 1])
        np.testing.assert_array_equal(one, ref_one[:, :, 0])
        out_ref, out = np.empty((n, 3)), np.empty((n, 3))
        lam_ref = solve_bordered(lower, diag, upper, r, b, c, 0.3, 1.7, out_ref,
                                 np.empty((n, 3, 3)), np.empty((3, 5)), np.empty((n, 3, 2)))
        lam = kdd.solve_bordered3(lower, diag, upper, r, b, c, 0.3, 1.7, out,
                                  np.empty((n, 3, 3)), np.empty((n, 3, 2)))
        assert lam == lam_ref
        np.testing.assert_array_equal(out, out_ref)


def block_residual(lower, diag, upper, x, rhs):
    """Row residuals of the block-tridiagonal system and the sums of their terms' sizes."""
    res = np.einsum("irc,ic->ir", diag, x) - rhs
    size = np.einsum("irc,ic->ir", np.abs(diag), np.abs(x)) + np.abs(rhs)
    res[1:] += np.einsum("irc,ic->ir", lower[1:], x[:-1])
    size[1:] += np.einsum("irc,ic->ir", np.abs(lower[1:]), np.abs(x[:-1]))
    res[:-1] += np.einsum("irc,ic->ir", upper[:-1], x[1:])
    size[:-1] += np.einsum("irc,ic->ir", np.abs(upper[:-1]), np.abs(x[1:]))
    return res, size


def test_twisted_block3_solve_agrees_to_round_off_whatever_the_threads(numba_threads):
    import numba

    rng = np.random.default_rng(22)
    for n in (3, 4, 9, 40):
        for ties in (False, True):
            lower, diag, upper = random_blocks(n, rng, ties)
            r, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
            ref_a, ref_b = np.empty((n, 3)), np.empty((n, 3))
            kdd.solve_block3_serial(lower, diag, upper, r, b, True, ref_a, ref_b,
                                    np.empty((n, 3, 3)))
            xa, xb, one = np.empty((n, 3)), np.empty((n, 3)), np.empty((n, 3))
            kdd.solve_block3_split(lower, diag, upper, r, b, True, xa, xb, np.empty((n, 3, 3)))
            kdd.solve_block3_split(lower, diag, upper, r, r, False, one, one,
                                   np.empty((n, 3, 3)))
            for x, ref, rhs in ((xa, ref_a, r), (xb, ref_b, b)):
                # backward error (row residual / sizes of its terms): as small as the sweep's,
                # which is the general solver's (1e-16 here, 1e-11 with the ties' growth)
                errors = [np.max(np.abs(res) / size) for res, size in
                          (block_residual(lower, diag, upper, sol, rhs) for sol in (x, ref))]
                assert errors[0] <= max(10.0 * errors[1], 1e-14)
            np.testing.assert_array_equal(one, xa)
            before = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                single = np.empty((n, 3))
                kdd.solve_block3_split(lower, diag, upper, r, r, False, single, single,
                                       np.empty((n, 3, 3)))
            finally:
                numba.set_num_threads(before)
            np.testing.assert_array_equal(single, one)


@pytest.mark.parametrize("current", [-0.3, 0.0, 2e-3, 5.0, 1e30, -1e30])
def test_rigid_shift_is_the_bisection_to_the_bit(current):
    """Newton on the bracket grid returns the bisection's midpoint; currents no shift within
    +-10 V reaches (1e30 A) fall back to the bisection itself."""
    rng = np.random.default_rng(9)
    for n_p in (1, 3, 64):
        sc = np.stack([ocv_scalars(omega) for omega in rng.choice([-0.6, 0.0], n_p)])
        sc[:, kdd.S_AREA_S] = rng.uniform(0.5, 4.0, n_p)
        sc[:, kdd.S_I0] = 10.0 ** rng.uniform(-4.0, -1.0, n_p)
        sc[:, kdd.S_ALPHA] = rng.uniform(0.3, 0.7, n_p)
        etas = rng.normal(0.0, 0.1, n_p)
        u_locs = rng.uniform(0.3, 1.2, n_p)
        assert (kdd.rigid_shift(etas, u_locs, sc, current)
                == kdd._shift_bisection(etas, kdd._exchange_currents(u_locs, sc), sc, current))


@pytest.mark.parametrize("galvanostatic", [False, True], ids=["potentiostatic", "galvanostatic"])
def test_ensemble_newton_is_the_single_domain_newton_whatever_the_threads(
        small_setup, numba_threads, galvanostatic):
    """One implicit step of 0.1 ms from a random state (to 10 mV lower, or at 1.5 times its
    own current): every particle of an ensemble of identical particles (sharing the current
    equally) takes the single-domain Newton's path to the bit, and the converged flows are
    what assemble returns there."""
    s = small_setup
    n = s.n_nodes
    sc = s.sc[0].copy()  # electroneutral, electrons transported: a random state is a fair start
    sc[kdd.S_ELECTROSTATICS] = 0.0
    sc[kdd.S_ELECTRONS] = kdd.ELECTRONS_DRIFT_DIFFUSION
    z0 = random_state(n, 1.0, np.random.default_rng(17))
    z0[:, 0] = 1.0
    y = np.empty((n, 3))
    kdd.state_from_unknowns(z0, s.region[0], s.params, sc, y)
    hist = -y
    dt = 1e-4
    geometry = (s.vol[0], s.area[0], s.h[0], s.g_face[0], s.d0_face[0], s.site_energy[0],
                s.region[0], s.params, s.tables, sc)
    current = 1.5 * kdd.surface_flow(z0, s.region[0], sc, s.tables, s.site_energy[0])
    voltage = 1.0 if galvanostatic else 0.99
    n_p = 3

    def work(p):
        shapes = [(n, 3, 3)] * 3 + [(n, 3)] * 3 + [(n, 3, 3), (3, 5), (n, 3, 2), (n, 3)]
        return [np.zeros((p, *shape)) for shape in shapes]

    z1 = z0.copy()
    v1 = np.array([voltage])
    out = np.zeros(1)
    its = kdd.newton(z1, v1, galvanostatic, current, 1.0, hist, dt, *geometry, 1e-9, 30,
                     *[a[0] for a in work(1)], out)
    assert its >= 3  # a few iterations, each compared

    def stack(a):
        return np.ascontiguousarray(np.broadcast_to(a, (n_p, *np.shape(a))))

    zp = stack(z0)
    vp = np.array([voltage])
    flows = np.zeros(n_p)
    its_p = kdd.newton_ensemble(zp, vp, galvanostatic, n_p * current, 1.0, stack(hist), dt,
                                *[stack(a) for a in geometry[:7]], s.params, s.tables, stack(sc),
                                1e-9, 30, *work(n_p), flows, np.zeros((n_p, 2)))
    assert its_p == its
    assert vp[0] == v1[0]
    for p in range(n_p):
        np.testing.assert_array_equal(zp[p], z1)
        assert flows[p] == out[0]
    assert out[0] == kdd.surface_flow(z1, s.region[0], sc, s.tables, s.site_energy[0])


def test_ensemble_conversions_are_the_per_particle_ones(small_setup, numba_threads):
    """The one-call ensemble kernels (parallel over particles) give each particle's result of
    the single-particle kernels, and the flow of a state is what assemble returns there."""
    s = small_setup
    n, n_p = s.n_nodes, 4
    rng = np.random.default_rng(8)
    sc = np.stack([s.sc[0]] * n_p)
    sc[:, kdd.S_ELECTRONS] = [0, 1, 1, 0]
    sc[:, kdd.S_AREA_S] = rng.uniform(0.5, 2.0, n_p)
    region = np.stack([s.region[0]] * n_p)
    site = np.stack([s.site_energy[0]] * n_p)
    z = np.stack([random_state(n, 1.0, rng) for _ in range(n_p)])
    y = np.empty((n_p, n, 3))
    kdd.state_from_unknowns_ensemble(z, region, s.params, sc, y)
    z_back = np.full((n_p, n, 3), np.nan)
    kdd.unknowns_from_state_ensemble(y, 1.0, region, s.params, sc, z_back)
    etas, u_locs = np.empty(n_p), np.empty(n_p)
    kdd.surface_overpotential_ensemble(z, region, sc, s.tables, site, etas, u_locs)
    flows = np.empty(n_p)
    kdd.flow_from_state_ensemble(y, 1.0, region, s.params, sc, s.tables, site,
                                 np.empty((n_p, n, 3)), flows)
    for p in range(n_p):
        y_p, z_p = np.empty((n, 3)), np.empty((n, 3))
        kdd.state_from_unknowns(z[p], region[p], s.params, sc[p], y_p)
        np.testing.assert_array_equal(y[p], y_p)
        kdd.unknowns_from_state(y[p], 1.0, region[p], s.params, sc[p], z_p)
        np.testing.assert_array_equal(z_back[p], z_p)
        assert (etas[p], u_locs[p]) == kdd.surface_overpotential(z[p], region[p], sc[p],
                                                                  s.tables, site[p])
        out = [np.empty((n, 3, 3)) for _ in range(3)] + [np.empty((n, 3)) for _ in range(3)]
        flow = kdd.assemble(z_p, 1.0, False, 0.0, np.zeros((n, 3)), 1.0, s.vol[0], s.area[0],
                            s.h[0], s.g_face[0], s.d0_face[0], site[p], region[p], s.params,
                            s.tables, sc[p], *out)
        assert flows[p] == flow


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("edge_from, edge_to", [(1e-54, 1e-16), (1e-30, 0.3), (1e-40, 1e-12)])
def test_large_logit_steps_from_the_edges_are_newtons_steps_in_the_concentration(
        full, edge_from, edge_to):
    """On a balance linear in theta, Newton in c lands on the root in one step; the logit's
    linearised step d = (theta - theta_root) / (dtheta / d ell) is 1e38 in the first case, and
    ``_ell_step`` turns it into exactly that landing (the plain limiter moved 15). ``edge`` is
    theta (dilute) or 1 - theta (``full``)."""
    sign = -1.0 if full else 1.0
    ell = sign * (math.log(edge_from) - math.log1p(-edge_from))
    theta, vacancy = kdd.logistic(ell), kdd.logistic(-ell)
    # theta - theta_root, computed from the small side
    gap = (edge_from - edge_to) if not full else (edge_to - edge_from)
    d = gap / (theta * vacancy)
    step = kdd._ell_step(ell, d)
    landed = kdd.logistic(-(ell - step)) if full else kdd.logistic(ell - step)
    assert landed == pytest.approx(edge_to, rel=1e-9)
    assert abs(step) > kdd.CAP_ELL  # beyond what the limiter allows


@pytest.mark.parametrize("ell, d", [(-125.0, 3.0), (-125.0, 4.9), (40.0, -4.9), (-3.0, 7.0),
                                    (3.0, -7.0), (0.5, -40.0)])
def test_other_logit_steps_keep_the_logarithmic_limiter(ell, d):
    """Small steps, and steps away from the middle, are the plain limited steps."""
    assert kdd._ell_step(ell, d) == kdd._limit(d, kdd.LIMIT_ELL, kdd.CAP_ELL)
