"""2D phase-field kernels (SPEC 3.4) against closed forms and exact invariants.

The equilibrium profile ``xi = [1 - tanh(n / (2 lam))]/2`` and its identities (``xi'' =
f(xi)/lam^2``, ``int xi (1 - xi) dn = lam``, ``int h'(xi) dn = 5 lam``), the Allen-Cahn area law
``dA/dt = -2 pi D``, the Gibbs-Thomson shift ``gamma V_m / (F R)`` of a disc, the Butler-Volmer
law and the Poisson activation probability ``1 - exp(-k dt)``.

Small grids on purpose: these tests also run as plain Python (``NUMBA_DISABLE_JIT=1``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numba
import numpy as np
import pytest
from numpy.polynomial import Polynomial
from scipy import constants

from fastnai._kernels import phase_field as pf

JIT_OFF = bool(numba.config.DISABLE_JIT)
PP, CHEN = pf.PROFILE_PRESERVING, pf.CHEN2015
FORMULATIONS = pytest.mark.parametrize("formulation", [PP, CHEN], ids=["profile-preserving", "chen2015"])

F = constants.physical_constants["Faraday constant"][0]
F_RT = F / (constants.R * 298.15)  # [V-1]
SPEED = 23.78e-6 / F  # V_m / F of Na [m3 C-1]
J0 = 10.0  # exchange current density [A m-2]
C_REF = 1000.0  # reference salt concentration [mol m-3]
C_FLOOR = 1e-9
C_S = 4.2e4  # molar density of Na metal [mol m-3]
DX = 10e-9  # cell size [m]
MOBILITY = 1e-12  # profile mobility D_xi [m2 s-1]


def tanh_profile(n, lam):
    """The equilibrium profile across an interface at normal coordinate ``n`` (metal at n < 0)."""
    return 0.5 * (1.0 - np.tanh(n / (2.0 * lam)))


def flat_front(ny, nx, lam, height, dx=DX):
    """A flat metal deposit of thickness ``height`` on the wall: xi(y), the same in every column."""
    y = (np.arange(ny) + 0.5) * dx
    return np.ascontiguousarray(np.repeat(tanh_profile(y - height, lam)[:, None], nx, axis=1))


def disc(n, radius, lam, centre=(0.23, -0.17), dx=DX):
    """A metal disc in an ``n x n`` box, centred off the grid's symmetry lines: (xi, x, y)."""
    j, i = np.mgrid[0:n, 0:n]
    x = (i - (n / 2 - 0.5 + centre[0])) * dx
    y = (j - (n / 2 - 0.5 + centre[1])) * dx
    return tanh_profile(np.hypot(x, y) - radius, lam), x, y


def wavy_front(ny, nx, lam, amplitude, dx=DX):
    """A front at height ``ny dx / 2 + amplitude sin(2 pi x / (nx dx))``, one period in x."""
    x = (np.arange(nx) + 0.5) * dx
    y = (np.arange(ny) + 0.5) * dx
    h = 0.5 * ny * dx + amplitude * np.sin(2.0 * np.pi * x / (nx * dx))
    return tanh_profile(y[:, None] - h[None, :], lam)


def profile(xi, *, formulation, lam, r, dx=DX, mobility=MOBILITY, wall_active=None, cos_theta=0.0,
            mask=None, gt_coeff=0.0, anisotropy=0.0, noise=0.0, seed=0, step=0):
    """One ``profile_step`` at ``r = mobility dt / dx^2``: (xi_star, geom, geom2, eta_shift)."""
    ny, nx = xi.shape
    wall_active = np.zeros(nx, np.uint8) if wall_active is None else wall_active
    mask = np.ones((ny, nx), np.uint8) if mask is None else mask
    outs = [np.zeros((ny, nx)) for _ in range(4)]
    dt = r * dx * dx / mobility
    pf.profile_step(xi, wall_active, cos_theta, dx, lam, mobility, dt, formulation, mask, gt_coeff,
                    anisotropy, noise, seed, step, *outs)
    return tuple(outs)


def relax(xi, n_steps, **kw):
    """``n_steps`` profile steps; also the smallest and largest value met on the way."""
    lo, hi = xi.min(), xi.max()
    for _ in range(n_steps):
        xi = profile(xi, **kw)[0]
        lo, hi = min(lo, xi.min()), max(hi, xi.max())
    return xi, lo, hi


def bv_current(eta, conc=C_REF, alpha_a=0.5, alpha_c=0.5):
    """NumPy twin of the concentration-dependent Butler-Volmer law, anodic positive [A m-2]."""
    cf = np.maximum(np.asarray(conc) / C_REF, C_FLOOR) ** alpha_a
    return J0 * cf * (np.exp(alpha_a * F_RT * eta) - np.exp(-alpha_c * F_RT * eta))


def growth(voltage, xi_star, geom, geom2, dt, *, phi=None, conc=None, eta_shift=None,
           alpha_a=0.5, alpha_c=0.5):
    """``growth_sum`` with an electrolyte at rest (Phi = 0, c = c_ref) unless given."""
    shape = xi_star.shape
    phi = np.zeros(shape) if phi is None else phi
    conc = np.full(shape, C_REF) if conc is None else conc
    use_shift = eta_shift is not None
    eta_shift = np.zeros(shape) if eta_shift is None else eta_shift
    return pf.growth_sum(voltage, xi_star, geom, geom2, phi, conc, eta_shift, use_shift, J0,
                         1.0 / C_REF, alpha_a, alpha_c, F_RT, SPEED, dt, C_FLOOR,
                         np.zeros((pf.N_CHUNKS, 2)))


def apply(voltage, xi, xi_star, geom, geom2, dt, *, phi=None, conc=None, eta_shift=None,
          alpha_a=0.5, alpha_c=0.5):
    """``apply_growth`` with the same defaults as :func:`growth`: (xi_new, source)."""
    shape = xi.shape
    phi = np.zeros(shape) if phi is None else phi
    conc = np.full(shape, C_REF) if conc is None else conc
    use_shift = eta_shift is not None
    eta_shift = np.zeros(shape) if eta_shift is None else eta_shift
    xi_new, source = np.empty(shape), np.empty(shape)
    pf.apply_growth(voltage, xi, xi_star, geom, geom2, phi, conc, eta_shift, use_shift, J0,
                    1.0 / C_REF, alpha_a, alpha_c, F_RT, SPEED, dt, C_FLOOR, C_S, xi_new, source)
    return xi_new, source


@contextmanager
def numba_thread_count(n):
    """Run a block on ``n`` Numba threads (at most the configured number), then restore."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def crossing(column, dx=DX):
    """Height where a decreasing column profile crosses 1/2 (linear interpolation) [m]."""
    j = np.flatnonzero((column[:-1] >= 0.5) & (column[1:] < 0.5))[0]
    return (j + 0.5 + (column[j] - 0.5) / (column[j] - column[j + 1])) * dx


# -- the profile terms --------------------------------------------------------------------------
def fourth_derivative(xi, lam):
    """The fourth derivative of the equilibrium profile in n, as a polynomial in xi: with
    ``g = xi (1 - xi)``, ``d/dn = -(g/lam) d/dxi`` and ``xi'' = f/lam^2``, it is
    ``(f' g)' g / lam^4``."""
    x = Polynomial([0.0, 1.0])
    g = x - x**2
    f = g * (1.0 - 2.0 * x)
    return ((f.deriv() * g).deriv() * g)(xi) / lam**4


@FORMULATIONS
def test_tanh_profile_is_a_fixed_point_to_second_order_in_dx(formulation):
    """The sampled equilibrium profile of a flat front is steady up to the truncation error of
    the 3-point second difference: the increment of one step is ``D dt (dx^2/12) d4xi/dn4`` to
    leading order (within 5 % at dx/lam = 1/2, 1.5 % at 1/4), and so falls at second order in
    dx/lam (observed order within 0.2 of 2)."""
    lam = 40e-9
    errors = []
    for cells_per_lam, tolerance in ((2, 0.05), (4, 0.015)):
        dx = lam / cells_per_lam
        ny = 12 * cells_per_lam
        height = (ny / 2 + 0.3) * dx  # off the cell centres and faces
        xi = flat_front(ny, 3, lam, height, dx=dx)
        # r << 1: the point-implicit divisor 1 + O(r) is 1 to 4e-4, below the tolerances
        r = 1e-4
        dt = r * dx * dx / MOBILITY
        xi_star = profile(xi, formulation=formulation, lam=lam, r=r, dx=dx)[0]
        # a flat front stays flat: every column the same
        np.testing.assert_allclose(xi_star, xi_star[:, :1] * np.ones((1, 3)), rtol=0, atol=1e-15)
        y = (np.arange(ny) + 0.5) * dx
        near = np.abs(y - height) < 4.0 * lam  # one step is local: the box edges stay out of it
        rate = (xi_star - xi)[near, 0] / (MOBILITY * dt)  # (d xi/dt) / D [m-2]
        leading = dx**2 / 12.0 * fourth_derivative(xi[near, 0], lam)
        # the next term, (dx^4/360) d6xi/dn6, is 2 % of the leading one at dx/lam = 1/2
        assert np.linalg.norm(rate - leading) < tolerance * np.linalg.norm(leading)
        errors.append(np.linalg.norm(rate) * math.sqrt(dx))
    assert math.log2(errors[0] / errors[1]) == pytest.approx(2.0, abs=0.2)


@FORMULATIONS
def test_too_wide_profile_relaxes_to_the_equilibrium_width_in_place(formulation):
    """A tanh 1.6 times too wide relaxes to the equilibrium width, measured by the closed form
    ``int xi (1 - xi) dn = lam``, while its 1/2-crossing stays put (the profile terms restore
    the profile without moving a flat interface)."""
    lam, ny = 2 * DX, 40
    xi = flat_front(ny, 3, 1.6 * lam, (20 + 0.3) * DX)
    start = crossing(xi[:, 0])
    xi, lo, hi = relax(xi, 200, formulation=formulation, lam=lam, r=0.5)
    width = np.sum(xi * (1.0 - xi), axis=0) * DX
    # the discrete equilibrium is the sampled tanh to O((dx/lam)^2): 0.4 % in width at dx/lam = 1/2
    np.testing.assert_allclose(width, lam, rtol=0.01)
    assert abs(crossing(xi[:, 0]) - start) < 0.02 * DX  # observed: 1e-3 dx, a lattice effect
    assert lo >= 0.0 and hi <= 1.0  # relaxation toward the profile does not overshoot


@FORMULATIONS
def test_point_implicit_step_is_stable_and_keeps_its_fixed_point_at_large_r(formulation):
    """At ``r = D dt / dx^2 = 100`` (explicit Euler is stable only for r <= 1/4 in 2D) the
    field stays in [0, 1] and relaxes to the same steady profile as at r = 1/2: the point-
    implicit divisor changes the path, not the fixed point."""
    lam = 2 * DX
    wide = flat_front(40, 3, 1.6 * lam, (20 + 0.3) * DX)
    slow = relax(wide, 300, formulation=formulation, lam=lam, r=0.5)[0]
    fast, lo, hi = relax(wide, 300, formulation=formulation, lam=lam, r=100.0)
    assert lo >= -1e-12 and hi <= 1.0 + 1e-12
    # after 300 steps both are within 2e-5 of the fixed point (the initial distance is 0.1)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    # a wavy front in 2D (mixed derivatives, curvature): bounded as well
    _, lo, hi = relax(wavy_front(32, 16, 1.5 * lam, 3 * DX), 40, formulation=formulation, lam=lam,
                      r=100.0)
    assert lo >= -1e-9 and hi <= 1.0 + 1e-9


def coalescing_nuclei():
    """Two touching discs: the saddle between them and their centres have grad xi = 0 with xi
    inside the interface band (0.21 < xi < 0.79, where the double well's f'(xi) < 0)."""
    ny, nx, lam = 24, 16, 2 * DX
    j, i = np.mgrid[0:ny, 0:nx]

    def one(ic):
        d = np.hypot(np.minimum(abs(i - ic), nx - abs(i - ic)), j - 12) * DX
        return tanh_profile(d - 3 * DX, lam)

    return np.maximum(one(3), one(11)), lam


@pytest.mark.parametrize("formulation", [
    pytest.param(PP, id="profile-preserving"),
    pytest.param(CHEN, id="chen2015"),
])
def test_large_step_stays_bounded_where_the_gradient_vanishes(formulation):
    """At r = 100 one step from two coalescing nuclei keeps xi_star within [0, 1] up to a few
    per cent (the point-implicit step is meant to be unconditionally stable)."""
    xi, lam = coalescing_nuclei()
    assert 0.21 < xi[12, 7] < 0.79  # the saddle is inside the band where f' < 0
    xi_star = profile(xi, formulation=formulation, lam=lam, r=100.0)[0]
    assert xi_star.min() > -0.05 and xi_star.max() < 1.05


def test_profile_preserving_keeps_a_disc_while_allen_cahn_shrinks_it_at_2_pi_d():
    """The curvature part of the Laplacian is what moves a curved interface: Allen-Cahn
    (chen2015) shrinks a disc at the sharp-interface rate ``dA/dt = -2 pi D``, the profile-
    preserving form keeps its area."""
    n, radius, n_steps = 20, 5 * DX, 130
    lam, r = DX, 0.01
    xi0 = disc(n, radius, lam)[0]
    dt = r * DX * DX / MOBILITY
    rates = {}
    for formulation in (PP, CHEN):
        xi, area = xi0, []
        for _ in range(n_steps):
            xi = profile(xi, formulation=formulation, lam=lam, r=r)[0]
            area.append(xi.sum() * DX * DX)
        t = np.arange(n_steps) * dt
        rates[formulation] = np.polyfit(t[n_steps // 4:], area[n_steps // 4:], 1)[0]
    # the point-implicit divisor 1 + 4 r slows the flow (by 4 %); lam/R = 1/5 and dx = lam add
    # corrections to the sharp-interface law (2 % here): 5 %
    assert rates[CHEN] == pytest.approx(-2 * np.pi * MOBILITY / (1 + 4 * r), rel=0.05)
    assert abs(rates[PP]) < 0.02 * 2 * np.pi * MOBILITY  # observed 0.5 %


# -- growth geometry ----------------------------------------------------------------------------
@FORMULATIONS
def test_geometric_factor_integrates_to_one_across_a_flat_front(formulation):
    """Across a flat front ``sum G dx = 1``: for the profile-preserving ``G = |grad xi|`` the
    central differences telescope to ``xi[0] - xi[-1]`` exactly; for chen2015 ``G = h'(xi) /
    (5 lam)`` integrates to 1 (``int xi^2 (1 - xi)^2 dn = lam/6``). ``G2 = d2xi/dn2 / 2`` sums
    to zero (a telescoping second difference): it moves no Na."""
    lam, ny = 2 * DX, 48  # 24 lam: the tails beyond the box are exp(-12) ~ 6e-6
    xi = flat_front(ny, 3, lam, 24.3 * DX)
    _, geom, geom2, _ = profile(xi, formulation=formulation, lam=lam, r=0.5)
    total = geom.sum(axis=0) * DX
    if formulation == PP:
        np.testing.assert_allclose(total, xi[0] - xi[-1], rtol=1e-13)
        np.testing.assert_allclose(total, 1.0, atol=2e-5)  # the tails
        # the 1/|grad xi|^2 regularisation (1e-6 / lam) spoils the telescoping only in the far
        # tails, where |grad xi| lam < 1e-6
        assert np.all(np.abs(geom2.sum(axis=0)) < 1e-6 * np.abs(geom2).sum(axis=0))
        assert np.any(geom2 > 0.0) and np.any(geom2 < 0.0)
    else:
        # the midpoint rule is exponentially accurate for this analytic, decaying integrand
        np.testing.assert_allclose(total, 1.0, atol=1e-9)
        assert np.all(geom2 == 0.0)


@FORMULATIONS
def test_growth_factors_vanish_outside_the_mask_and_nothing_else_changes(formulation):
    """``mask`` only selects the reacting cells: geom and geom2 are 0 where it is 0 and equal
    the unmasked values where it is 1; xi_star and the Gibbs-Thomson shift do not see it."""
    lam = 2 * DX
    xi = wavy_front(24, 8, lam, 2 * DX)
    mask = np.random.default_rng(5).integers(0, 2, xi.shape).astype(np.uint8)
    kw = {"formulation": formulation, "lam": lam, "r": 0.5, "gt_coeff": 1e-10, "anisotropy": 0.02}
    full = profile(xi, **kw)
    part = profile(xi, mask=mask, **kw)
    for a, b in zip(full[1:3], part[1:3], strict=True):
        np.testing.assert_array_equal(b[mask == 0], 0.0)
        np.testing.assert_array_equal(b[mask == 1], a[mask == 1])
    np.testing.assert_array_equal(part[0], full[0])
    np.testing.assert_array_equal(part[3], full[3])
    assert np.all(full[1][mask == 0] > 0.0)  # the masked cells did have a growth factor


def test_gibbs_thomson_shift_of_a_disc_is_gt_coeff_over_radius():
    """A circular metal disc of radius R has ``div(grad xi/|grad xi|) = -1/R``, so ``eta_GT =
    +gamma V_m / (F R)``: the disc's equilibrium potential ``Phi - eta_GT`` lies below that of a
    flat electrode, and at the flat electrode's potential the disc dissolves."""
    n, radius, lam = 40, 12 * DX, 1.5 * DX  # R = 8 lam
    xi, x, y = disc(n, radius, lam)
    gt = 1e-10  # gamma V_m / F [V m]
    _, geom, geom2, shift = profile(xi, formulation=PP, lam=lam, r=0.5, gt_coeff=gt)
    band = (xi > 0.1) & (xi < 0.9)
    assert np.all(shift[band] > 0.0)
    # interface average, weighted by |grad xi| (int |xi'| rho d rho = R): 1/R up to the
    # discretisation of the curvature (0.3 % here)
    mean = np.sum(shift * geom) / np.sum(geom)
    assert mean == pytest.approx(gt / radius, rel=0.03)
    # each level set is a circle: cell by cell 1/rho, to the O(dx^2) error of the 9-point stencil
    rho = np.hypot(x, y)
    np.testing.assert_allclose(shift[band] * rho[band] / gt, 1.0, atol=0.2)
    # the disc at rest dissolves at V = Phi and is near equilibrium at V = Phi - gt/R
    dt = 1e-3
    at_flat = growth(0.0, xi, geom, geom2, dt, eta_shift=shift)[0]
    at_disc = growth(-gt / radius, xi, geom, geom2, dt, eta_shift=shift)[0]
    assert growth(0.0, xi, geom, geom2, dt)[0] == 0.0
    assert at_flat < 0.0
    assert abs(at_disc) < 0.1 * abs(at_flat)


def test_anisotropy_modulates_the_shift_as_one_minus_15_eps4_cos_4phi():
    """With a 4-fold surface energy ``gamma (1 + eps4 cos 4 phi)`` the shift scales with the
    stiffness ``1 - 15 eps4 cos 4 phi``, phi the angle of the normal."""
    n, radius, lam, eps4 = 40, 12 * DX, 1.5 * DX, 0.02
    xi, x, y = disc(n, radius, lam)
    iso = profile(xi, formulation=PP, lam=lam, r=0.5, gt_coeff=1e-10)[3]
    aniso = profile(xi, formulation=PP, lam=lam, r=0.5, gt_coeff=1e-10, anisotropy=eps4)[3]
    band = (xi > 0.1) & (xi < 0.9)
    phi = np.arctan2(y, x)  # the normal of a disc is radial (cos 4 phi is blind to its sign)
    expected = 1.0 - 15.0 * eps4 * np.cos(4.0 * phi[band])
    # the discrete gradient's direction is radial to O(dx^2): 10 % of the 0.3 modulation
    np.testing.assert_allclose(aniso[band] / iso[band], expected, atol=0.1 * 15 * eps4)
    assert np.ptp(aniso[band] / iso[band]) > 1.8 * 15 * eps4  # the modulation is all there


# -- noise ----------------------------------------------------------------------------------------
def test_noise_is_keyed_on_seed_and_step_and_absent_when_off():
    """noise = 0: xi_star does not depend on the key. noise > 0: the same (seed, step) gives
    the same bits, another step or seed another field."""
    lam = 2 * DX
    xi = wavy_front(24, 8, lam, 2 * DX)
    kw = {"formulation": PP, "lam": lam, "r": 0.5}
    quiet = profile(xi, seed=1, step=3, **kw)[0]
    np.testing.assert_array_equal(profile(xi, seed=2, step=9, **kw)[0], quiet)
    loud = profile(xi, noise=10.0, seed=1, step=3, **kw)[0]
    np.testing.assert_array_equal(profile(xi, noise=10.0, seed=1, step=3, **kw)[0], loud)
    assert np.any(loud != quiet)
    for other in ({"seed": 1, "step": 4}, {"seed": 2, "step": 3}):
        kicked = profile(xi, noise=10.0, **other, **kw)[0]
        # the kicks of another key are unrelated: they differ in nearly every kicked cell
        assert np.mean(kicked != loud) > 0.9


def test_noise_kick_is_uniform_with_zero_mean_and_scales_with_sqrt_dt():
    """The kick is ``noise sqrt(dt) (2u - 1) lam |grad xi|`` with u uniform: normalised by
    ``noise sqrt(dt) lam |grad xi|`` (|grad xi| = geom for the profile-preserving form) it lies
    in [-1, 1] with mean 0 and variance 1/3, and at a 4 times longer step the same key gives
    the same kick times 2."""
    lam, noise = 2 * DX, 10.0
    xi = flat_front(24, 8, lam, 12.3 * DX)
    kw = {"formulation": PP, "lam": lam, "seed": 11}
    samples = []
    for step in range(6):
        quiet, geom, _, _ = profile(xi, r=0.25, step=step, **kw)
        kick = profile(xi, r=0.25, noise=noise, step=step, **kw)[0] - quiet
        long_kick = (profile(xi, r=1.0, noise=noise, step=step, **kw)[0]
                     - profile(xi, r=1.0, step=step, **kw)[0])
        # relative round-off of a difference of O(1) numbers over kicks >= 1e-6
        big = np.abs(kick) > 1e-6
        np.testing.assert_allclose(long_kick[big], 2.0 * kick[big], rtol=1e-8)
        dt = 0.25 * DX * DX / MOBILITY
        steep = geom * lam > 1e-3  # away from the tails, where the kick is below round-off
        samples.append(kick[steep] / (noise * math.sqrt(dt) * lam * geom[steep]))
    u = np.concatenate(samples)
    n = u.size
    assert n > 300
    assert np.all(np.abs(u) <= 1.0 + 1e-9)
    # uniform on [-1, 1]: sd 1/sqrt(3); the variance of u^2 is 1/5 - 1/9 = 4/45; 4 standard errors
    assert abs(u.mean()) < 4.0 * math.sqrt(1.0 / 3.0 / n)
    assert abs(np.mean(u**2) - 1.0 / 3.0) < 4.0 * math.sqrt(4.0 / 45.0 / n)


def test_profile_step_is_the_same_bits_on_one_and_two_threads():
    """Each cell is a function of its stencil alone: the thread count changes nothing."""
    lam = 2 * DX
    xi = wavy_front(24, 8, lam, 2 * DX)
    kw = {"formulation": PP, "lam": lam, "r": 0.5, "gt_coeff": 1e-10, "anisotropy": 0.02,
          "noise": 5.0, "seed": 3, "step": 8, "wall_active": np.array([1, 0] * 4, np.uint8),
          "cos_theta": 0.3}
    with numba_thread_count(1):
        one = profile(xi, **kw)
    with numba_thread_count(2):
        two = profile(xi, **kw)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


# -- Faradaic growth ----------------------------------------------------------------------------
def electrode_state(formulation=PP):
    """A wavy, partly masked front with a non-uniform electrolyte and a Gibbs-Thomson shift."""
    lam = 2 * DX
    xi = wavy_front(24, 8, lam, 2 * DX)
    rng = np.random.default_rng(17)
    mask = (rng.random(xi.shape) < 0.8).astype(np.uint8)
    xi_star, geom, geom2, shift = profile(xi, formulation=formulation, lam=lam, r=0.5, mask=mask,
                                          gt_coeff=2e-10)
    phi = rng.uniform(-0.01, 0.01, xi.shape)
    conc = rng.uniform(0.3, 2.0, xi.shape) * C_REF
    return xi, xi_star, geom, geom2, {"phi": phi, "conc": conc, "eta_shift": shift}


def test_growth_derivative_is_the_voltage_derivative_and_thread_independent():
    """d(total)/dV returned by growth_sum equals a centred difference of the total (its own
    truncation error is (F/RT h)^2 ~ 1e-9), and both are the same bits on 1 and 2 threads."""
    _, xi_star, geom, geom2, state = electrode_state()
    dt = 5e-3
    for voltage in (-0.04, 0.02):
        total, deriv = growth(voltage, xi_star, geom, geom2, dt, **state)
        assert 0.0 < abs(total) and deriv < 0.0  # more anodic: less Na
        h = 1e-6
        fd = (growth(voltage + h, xi_star, geom, geom2, dt, **state)[0]
              - growth(voltage - h, xi_star, geom, geom2, dt, **state)[0]) / (2 * h)
        assert deriv == pytest.approx(fd, rel=1e-6)
        with numba_thread_count(1):
            one = growth(voltage, xi_star, geom, geom2, dt, **state)
        with numba_thread_count(2):
            two = growth(voltage, xi_star, geom, geom2, dt, **state)
        assert one == two  # exact: the same bits


@FORMULATIONS
@pytest.mark.parametrize("voltage", [-0.03, -0.4, 0.3], ids=["cathodic", "clipped-at-1", "clipped-at-0"])
def test_growth_sum_is_the_change_apply_growth_makes(formulation, voltage):
    """apply_growth writes ``clip(xi_star + a G + a^2 G2, 0, 1)``, ``a = -dt (V_m/F) j_BV``
    (NumPy twin); growth_sum's total is ``sum(xi_new - xi_star)``, also where xi_new is
    clipped; the source is ``c_s (xi_new - xi) / dt``, the whole change of the step."""
    xi, xi_star, geom, geom2, state = electrode_state(formulation)
    courant = 0.05 if voltage == -0.03 else 3.0  # front Courant number dt |v_n| / dx: 3 clips
    dt = courant * DX / (SPEED * abs(bv_current(voltage)))
    total, _ = growth(voltage, xi_star, geom, geom2, dt, **state)
    xi_new, source = apply(voltage, xi, xi_star, geom, geom2, dt, **state)
    reacting = geom != 0.0
    eta = voltage - state["phi"] + state["eta_shift"]
    a = -dt * SPEED * bv_current(eta, state["conc"])
    twin = np.clip(np.where(reacting, xi_star + a * (geom + a * geom2), xi_star), 0.0, 1.0)
    # exp in NumPy and in the kernel may differ by an ulp: 1e-16 relative of increments <= 1
    np.testing.assert_allclose(xi_new, twin, rtol=0.0, atol=1e-14)
    # kernel sums the increments; xi_new - xi_star rounds each to 1e-16 of xi: relative 1e-12
    assert total == pytest.approx(math.fsum((xi_new - xi_star).ravel()), rel=1e-12)
    if voltage == -0.4:
        assert np.any(xi_new[reacting] == 1.0) and total > 0.0
    elif voltage == 0.3:
        assert np.any(xi_new[reacting] == 0.0) and total < 0.0
    np.testing.assert_allclose(source, C_S * (xi_new - xi) / dt, rtol=1e-14, atol=0.0)


@FORMULATIONS
def test_flat_front_growth_adds_a_over_dx_to_each_column(formulation):
    """Growth alone moves a flat front by ``a = dt v_n``, ``v_n = -(V_m/F) j_BV``: the column sum
    of xi grows by ``a/dx`` (``sum G dx = 1``; the second-order term ``a^2 G2`` sums to 0)."""
    lam, ny = 2 * DX, 48
    xi = flat_front(ny, 3, lam, 24.3 * DX)
    _, geom, geom2, _ = profile(xi, formulation=formulation, lam=lam, r=0.5)
    eta = -0.05
    v_n = -SPEED * bv_current(eta)
    assert v_n > 0.0  # cathodic: plating
    for courant in (1e-3, 0.05):
        dt = courant * DX / v_n
        xi_new, _ = apply(eta, xi, xi, geom, geom2, dt)
        change = np.sum(xi_new - xi, axis=0)
        assert np.all(xi_new < 1.0)  # no clipping
        a = dt * v_n
        if formulation == PP:
            # sum |grad xi| dx telescopes to xi[0] - xi[-1] (1 - 1e-5: the tails); the rest is
            # a^2 sum G2 (2e-9 of it: test_geometric_factor_...), to the round-off of 48
            # differences of O(1) numbers (1e-13 of a/dx)
            np.testing.assert_allclose(change, a / DX * (xi[0] - xi[-1]) + a * a * geom2.sum(axis=0),
                                       rtol=1e-12)
            assert np.all(np.abs(a * a * geom2.sum(axis=0)) < 1e-7 * a / DX)
        else:
            np.testing.assert_allclose(change, a / DX, rtol=1e-8)  # sum G dx = 1 to 1e-9


@pytest.mark.parametrize("formulation, expected", [(PP, 1.0), (CHEN, 1.2)],
                         ids=["profile-preserving", "chen2015"])
def test_flat_front_moves_at_the_faraday_speed_in_the_full_step(formulation, expected):
    """Profile terms and growth together: the profile-preserving front moves at ``v_n`` (its
    discretisation error falls at second order in dx/lam); chen2015 at ``6/5 v_n``, the
    projection ``int h' xi' dn / int xi'^2 dn = (1/(5 lam)) / (1/(6 lam))`` of its source on the
    translation mode (Peclet number v_n lam / D = 5e-3)."""
    eta, r, peclet = -0.05, 5.0, 5e-3
    v_n = -SPEED * bv_current(eta)
    errors = []
    for cells_per_lam in (2, 3):
        lam = cells_per_lam * DX
        dt = peclet * r * DX * DX / (lam * v_n)
        mobility = r * DX * DX / dt
        n_steps = 40 * cells_per_lam**2  # several relaxation times (lam/dx)^2 (1 + 4r)/r of AC
        xi = flat_front(20 * cells_per_lam, 1, lam, 8 * lam)
        heights = []
        for _ in range(n_steps):
            xi_star, geom, geom2, _ = profile(xi, formulation=formulation, lam=lam, r=r,
                                              mobility=mobility)
            xi = apply(eta, xi, xi_star, geom, geom2, dt)[0]
            heights.append(xi.sum() * DX)
        half = n_steps // 2
        speed = (heights[-1] - heights[half]) / ((n_steps - 1 - half) * dt)
        errors.append(speed / v_n - expected)
    # discretisation: 0.8 % (pp) and 1.1 % (chen) at dx/lam = 1/2; chen also lags its transient
    assert errors[0] == pytest.approx(0.0, abs=0.02 * expected)
    assert errors[1] == pytest.approx(0.0, abs=0.01 * expected)
    if formulation == PP:
        assert math.log(errors[0] / errors[1]) / math.log(1.5) == pytest.approx(2.0, abs=0.3)


# -- Butler-Volmer ------------------------------------------------------------------------------
def single_cells(etas, conc):
    """A row of cells with G = 1/dx, G2 = 0 and xi_star = 1/2 at overpotentials ``etas``."""
    n = len(etas)
    xi_star = np.full((1, n), 0.5)
    geom, geom2 = np.full((1, n), 1.0 / DX), np.zeros((1, n))
    phi = -np.asarray(etas, dtype=float).reshape(1, n)  # eta = V - Phi at V = 0
    return xi_star, geom, geom2, phi, np.asarray(conc, dtype=float).reshape(1, n)


@pytest.mark.parametrize("alpha_a, alpha_c", [(0.5, 0.5), (0.3, 0.7)])
def test_butler_volmer_law_sign_and_concentration_factor(alpha_a, alpha_c):
    """Cell by cell ``xi_new - xi_star = a G`` with ``a = -dt (V_m/F) j_BV``: j_BV is zero at
    eta = 0, anodic positive (a < 0: the metal dissolves), and scales with
    ``max(c/c_ref, c_floor)^alpha_a``."""
    etas = np.array([-0.12, -0.03, -1e-4, 0.0, 1e-4, 0.03, 0.12] + [-0.05] * 5)
    conc = np.array([1.0] * 8 + [4.0, 0.01, 0.0, -5.0]) * C_REF
    xi_star, geom, geom2, phi, conc2 = single_cells(etas, conc)
    dt = 1e-2  # |a G| < 0.1: no clipping
    kw = {"phi": phi, "conc": conc2, "alpha_a": alpha_a, "alpha_c": alpha_c}
    xi_new, _ = apply(0.0, xi_star, xi_star, geom, geom2, dt, **kw)
    increment = (xi_new - xi_star)[0]
    assert np.all(np.abs(increment) < 0.1)
    j_bv = -increment * DX / (dt * SPEED)
    # xi_new - 1/2 carries the round-off of 1/2 (1e-16) over increments >= 1e-7
    np.testing.assert_allclose(j_bv, bv_current(etas, conc, alpha_a, alpha_c), rtol=1e-8)
    assert j_bv[3] == 0.0
    np.testing.assert_array_equal(np.sign(j_bv[:7]), np.sign(etas[:7]))
    ref = j_bv[7]  # eta = -0.05 at c_ref; then at 4, 0.01, 0 and -5 times c_ref
    assert j_bv[8] / ref == pytest.approx(4.0**alpha_a, rel=1e-8)
    assert j_bv[9] / ref == pytest.approx(0.01**alpha_a, rel=1e-8)
    assert j_bv[10] / ref == pytest.approx(C_FLOOR**alpha_a, rel=1e-6)
    assert j_bv[11] == j_bv[10]  # below the floor nothing changes
    # growth_sum agrees: its total is the sum of the same increments, its slope that of j_BV
    total, deriv = growth(0.0, xi_star, geom, geom2, dt, **kw)
    scale = -dt * SPEED / DX
    assert total == pytest.approx(scale * math.fsum(bv_current(etas, conc, alpha_a, alpha_c)),
                                  rel=1e-12)
    slope = J0 * F_RT * np.maximum(conc / C_REF, C_FLOOR) ** alpha_a * (
        alpha_a * np.exp(alpha_a * F_RT * etas) + alpha_c * np.exp(-alpha_c * F_RT * etas))
    assert deriv == pytest.approx(scale * math.fsum(slope), rel=1e-12)


def test_no_current_at_zero_overpotential():
    """V = Phi (and eta_GT = 0) everywhere: no current, no growth, no front speed."""
    _, xi_star, geom, geom2, state = electrode_state()
    phi = np.full(xi_star.shape, -0.02)
    total, deriv = growth(-0.02, xi_star, geom, geom2, 1.0, phi=phi, conc=state["conc"])
    assert total == 0.0 and deriv < 0.0
    speed = pf.max_speed(-0.02, geom, phi, state["conc"], np.zeros_like(phi), False, J0, 1 / C_REF,
                         0.5, 0.5, F_RT, SPEED, C_FLOOR)
    assert speed == 0.0


@pytest.mark.parametrize("use_shift", [False, True])
def test_max_speed_is_the_largest_faradaic_speed_on_reacting_cells(use_shift):
    """max_speed = max over cells with G != 0 of ``|V_m/F j_BV(V - Phi + eta_GT, c)|``; the
    cells outside the mask (the largest currents here) do not count."""
    _, _, geom, _, state = electrode_state()
    phi, conc, shift = state["phi"], state["conc"], state["eta_shift"]
    phi = phi.copy()
    phi[geom == 0.0] = -0.3  # strongly anodic, but not reacting
    voltage = -0.02
    speed = pf.max_speed(voltage, geom, phi, conc, shift, use_shift, J0, 1 / C_REF, 0.5, 0.5,
                         F_RT, SPEED, C_FLOOR)
    eta = voltage - phi + (shift if use_shift else 0.0)
    expected = np.max(np.abs(SPEED * bv_current(eta, conc))[geom != 0.0])
    assert speed == pytest.approx(expected, rel=1e-13)
    assert speed < np.max(np.abs(SPEED * bv_current(eta, conc)))


# -- deterministic reductions -------------------------------------------------------------------
@pytest.mark.parametrize("ny", [1, 5, 64, 130])
def test_field_and_difference_sums_are_exact_sums_on_any_thread_count(ny):
    """field_sum is sum(a) and difference_sum is sum(a - b) to round-off, over every row (fewer,
    as many and more rows than chunks), and the same bits on 1 and 2 threads. difference_sum
    keeps the digits of a small change that two field sums would lose to cancellation."""
    rng = np.random.default_rng(ny)
    a = rng.random((ny, 7))
    b = a + 1e-12 * rng.standard_normal(a.shape)  # a - b is exact (Sterbenz)
    results = []
    for n in (1, 2):
        with numba_thread_count(n):
            results.append((pf.field_sum(a, np.zeros((pf.N_CHUNKS, 2))),
                            pf.difference_sum(a, b, np.zeros((pf.N_CHUNKS, 2)))))
    assert results[0] == results[1]  # exact
    total, change = results[0]
    # recursive summation of n terms: error <= n eps sum|terms|
    assert total == pytest.approx(math.fsum(a.ravel()), rel=0, abs=a.size * 2.3e-16 * a.sum())
    exact_change = math.fsum((a - b).ravel())
    assert change == pytest.approx(exact_change, rel=0, abs=a.size * 2.3e-16 * np.abs(a - b).sum())
    assert abs(exact_change) > 0.0


# -- site activation ----------------------------------------------------------------------------
KT = constants.k * 298.15
F_THETA = 0.5


def site_setup(n_sites, eta_by_site, *, barrier_kt=3.0, eta_ref=-0.1, p_ref=0.4):
    """One-cell sites at overpotential ``eta_by_site`` (V = 0, Phi = -eta); the barrier is
    ``barrier_kt`` kT at ``eta_ref``, and the step makes the activation probability ``p_ref``
    there. Returns the kernel's arguments and the rate law ``p(eta)``."""
    barrier_coeff = barrier_kt * KT * eta_ref**2 / F_THETA
    prefactor = 1e4
    dt = -math.log(1.0 - p_ref) / (prefactor * math.exp(-barrier_kt))

    def probability(eta):
        return 1.0 - math.exp(-prefactor * math.exp(-F_THETA * barrier_coeff / eta**2 / KT) * dt)

    args = {"phi_wall": -np.asarray(eta_by_site, dtype=float),
            "site_ptr": np.arange(n_sites + 1, dtype=np.int64),
            "site_cells": np.arange(n_sites, dtype=np.int64),
            "rate_prefactor": prefactor, "barrier_coeff": barrier_coeff, "dt": dt}
    return args, probability


def activate(args, active, activation_step, *, seed, step, voltage=0.0):
    return pf.activate_sites(voltage, args["phi_wall"], args["site_ptr"], args["site_cells"], active,
                             args["rate_prefactor"], args["barrier_coeff"], F_THETA, KT, args["dt"],
                             seed, step, activation_step)


def test_no_activation_at_zero_or_anodic_overpotential():
    """Nucleation needs a cathodic overpotential: eta >= 0 never activates a site."""
    etas = np.array([0.0, 1e-9, 0.05, 0.3] * 50)
    args, _ = site_setup(etas.size, etas, p_ref=0.999)
    active = np.zeros(etas.size, np.uint8)
    activation_step = np.full(etas.size, -1, np.int64)
    for step in range(3):
        assert activate(args, active, activation_step, seed=1, step=step) == 0
    assert not active.any() and np.all(activation_step == -1)


def test_activation_follows_the_poisson_law_step_by_step():
    """In each step an inactive site activates with probability ``1 - exp(-k dt)``, ``k = A
    exp(-f(theta) B / (eta^2 kT))``: over independent sites at two overpotentials the number
    activated in each of three steps is binomial (within 4 standard errors); active sites stay
    active and keep their activation step; the count returned is the number activated."""
    n = 2000 if JIT_OFF else 6000
    etas = np.where(np.arange(n) % 2 == 0, -0.1, -0.07)
    args, probability = site_setup(n, etas)
    active = np.zeros(n, np.uint8)
    activation_step = np.full(n, -1, np.int64)
    for step in (5, 6, 7):
        before_active, before_step = active.copy(), activation_step.copy()
        count = activate(args, active, activation_step, seed=2024, step=step)
        new = (active == 1) & (before_active == 0)
        assert count == new.sum()
        np.testing.assert_array_equal(active[before_active == 1], 1)
        np.testing.assert_array_equal(activation_step[before_active == 1],
                                      before_step[before_active == 1])
        np.testing.assert_array_equal(activation_step[new], step)
        for eta in (-0.1, -0.07):
            group = (etas == eta) & (before_active == 0)
            p = probability(eta)
            expected, se = group.sum() * p, math.sqrt(group.sum() * p * (1 - p))
            assert abs(new[group].sum() - expected) < 4.0 * se + 1.0
    assert probability(-0.1) == pytest.approx(0.4)
    assert probability(-0.07) < 0.05  # the 1/eta^2 barrier: 9 kT more at -0.07 V


def test_activation_depends_only_on_seed_step_and_site():
    """The draw of site k is keyed on (seed, step, k): a rerun gives the same bits, and sites
    activated beforehand do not change the fate of the others; another step or seed is another
    draw."""
    n = 800
    etas = np.full(n, -0.1)
    args, _ = site_setup(n, etas, p_ref=0.5)

    def run(seed, step, preset=None):
        active = np.zeros(n, np.uint8)
        activation_step = np.full(n, -1, np.int64)
        if preset is not None:
            active[preset], activation_step[preset] = 1, 0
        activate(args, active, activation_step, seed=seed, step=step)
        return active, activation_step

    first = run(9, 4)
    again = run(9, 4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    preset = np.random.default_rng(0).random(n) < 0.5
    partial = run(9, 4, preset)
    np.testing.assert_array_equal(partial[0][~preset], first[0][~preset])
    for other in (run(9, 5), run(10, 4)):
        # independent draws at p = 1/2 agree on about half of the sites
        assert 0.35 < np.mean(other[0] == first[0]) < 0.65


def test_site_overpotential_is_the_mean_over_its_cells():
    """A site's eta is V minus the mean Phi of its cells: a cathodic mean activates it (with
    certainty when k dt is huge) although one cell is anodic, and an anodic mean does not."""
    args, _ = site_setup(2, [-0.1, -0.1], p_ref=0.4)
    args["phi_wall"] = np.array([0.3, -0.1, -0.3, 0.1])  # mean Phi: 0.1 and -0.1
    args["site_ptr"] = np.array([0, 2, 4], np.int64)
    args["site_cells"] = np.array([0, 1, 2, 3], np.int64)
    args["rate_prefactor"] *= 1e30  # k dt ~ 1e30: p = 1 to round-off
    active = np.zeros(2, np.uint8)
    activation_step = np.full(2, -1, np.int64)
    assert activate(args, active, activation_step, seed=1, step=0) == 1
    np.testing.assert_array_equal(active, [1, 0])
    np.testing.assert_array_equal(activation_step, [0, -1])
