"""Elastoplastic laminate of a swelling film on a substrate: closed forms of plate and plasticity theory.

Every check is against mathematics: the rigid-substrate stress -M eps*, Stoney's and Timoshenko's
curvatures, the closed-form equi-biaxial return (cross-checked by a general 3D J2 return with
sigma_zz = 0 imposed numerically), a hand-integrated sodiation-desodiation cycle, quadrature
orders against adaptive quadrature, finite differences and a dense linear solve.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

from fastnai._kernels import laminate as lam

TOL = 1e-14
E_CU, NU_CU = 120e9, 0.34  # SPEC §3.3 Cu modulus; Poisson ratio of Cu (illustrative)
M_CU = E_CU / (1.0 - NU_CU)


def _state(z_faces, stretch, material, mode=lam.MODE_FREE, history=None, guess=(0.0, 0.0)):
    """Solve one state; returns (status, points, stress, tangent, trial, result)."""
    n_points = 2 * (z_faces.size - 1)
    points = np.empty((lam.N_POINT_ROWS, n_points))
    lam.current_points(z_faces, stretch, points)
    if history is None:
        history = np.zeros((lam.N_HISTORY_ROWS, n_points))
    trial = np.empty_like(history)
    stress = np.empty(n_points)
    tangent = np.empty(n_points)
    result = np.zeros(lam.N_RESULT)
    result[lam.R_EPS0], result[lam.R_KAPPA] = guess
    status = lam.laminate_state(points, material, history, mode, TOL, 50, trial, stress, tangent, result)
    return status, points, stress, tangent, trial, result


def _elastic_material(eigen, modulus):
    """Per-point rows from per-layer eigenstrain and modulus (both points of a layer equal)."""
    n = 2 * len(eigen)
    mat = np.empty((lam.N_MATERIAL_ROWS, n))
    mat[lam.M_EIGENSTRAIN] = np.repeat(eigen, 2)
    mat[lam.M_MODULUS] = np.repeat(modulus, 2)
    mat[lam.M_YIELD] = np.inf
    mat[lam.M_HARDENING] = 0.0
    return mat


def _two_materials(h1, n1, h2, n2, grading=1.0):
    """Faces of layer 1 (n1 layers, geometric grading) from -h1 to 0, then layer 2 (n2) up to h2."""
    def graded(length, n):
        w = grading ** np.arange(n)
        return np.concatenate([[0.0], np.cumsum(w / w.sum() * length)])
    bottom = graded(h1, n1) - h1
    bottom[-1] = 0.0
    return np.concatenate([bottom, graded(h2, n2)[1:]])


def _timoshenko(h1, h2, m1, m2, eig1, eig2):
    """Timoshenko (1925) bimetal curvature, layer 1 at the bottom; kappa > 0: top fibres longer."""
    m, n, h = h1 / h2, m1 / m2, h1 + h2
    return 6.0 * (eig2 - eig1) * (1 + m) ** 2 / (h * (3 * (1 + m) ** 2 + (1 + m * n) * (m * m + 1 / (m * n))))


# --- eigenstrain and return mapping -------------------------------------------------------------

def test_eigenstrain_forms_are_the_three_closed_forms_and_agree_to_first_order():
    for s in [0.0, 1e-6, 0.3, 2.93]:
        assert lam.eigenstrain(s, lam.EIGEN_LOG) == pytest.approx(math.log1p(s) / 3, rel=1e-15, abs=1e-300)
        e = lam.eigenstrain(s, lam.EIGEN_ENGINEERING)  # (1 + e)^3 = 1 + s, computed without cancellation
        assert e * (3 + e * (3 + e)) == pytest.approx(s, rel=1e-15, abs=1e-300)
        assert lam.eigenstrain(s, lam.EIGEN_LINEAR) == s / 3
    s = 1e-5  # the forms differ at second order: log - s/3 = -s^2/6, engineering - s/3 = -s^2/9
    assert lam.eigenstrain(s, lam.EIGEN_LOG) - s / 3 == pytest.approx(-s * s / 6, rel=1e-4)
    assert lam.eigenstrain(s, lam.EIGEN_ENGINEERING) - s / 3 == pytest.approx(-s * s / 9, rel=1e-4)


def _j2_plane_stress_twin(strain, eps_p, alpha, e, nu, sig_y, hard):
    """General 3D J2 radial return (Simo & Hughes, Box 3.2) with sigma_zz = 0 found by root finding.

    In-plane strains xx = yy = ``strain``; ``eps_p`` a full 3 x 3 diagonal plastic strain. Returns
    (sigma_xx, new diagonal plastic strain, new alpha). Knows nothing of the biaxial reduction.
    """
    mu = e / (2 * (1 + nu))
    lame = e * nu / ((1 + nu) * (1 - 2 * nu))

    def update(ezz):
        eel = np.array([strain, strain, ezz]) - eps_p
        sig = lame * eel.sum() + 2 * mu * eel
        s = sig - sig.mean()
        q = math.sqrt(1.5 * (s @ s))
        f = q - (sig_y + hard * alpha)
        if f <= 0:
            return sig, eps_p, alpha
        dg = f / (3 * mu + hard)
        n = 1.5 * s / q
        return sig - 2 * mu * dg * n, eps_p + dg * n, alpha + dg

    ezz = brentq(lambda z: update(z)[0][2], -1.0, 1.0, xtol=1e-16, rtol=4 * np.finfo(float).eps)
    sig, ep, al = update(ezz)
    return sig[0], ep, al


@pytest.mark.parametrize("hardening", [0.0, 3e9])
def test_biaxial_return_matches_general_j2_return_with_zero_normal_stress(hardening):
    e, nu, sig_y = 80e9, 0.3, 0.4e9
    m = e / (1 - nu)
    path = np.concatenate([np.linspace(0, -0.02, 5), np.linspace(-0.02, 0.015, 6)[1:]])
    ep, al = 0.0, 0.0
    ep3, al3 = np.zeros(3), 0.0
    for strain in path[1:]:
        s, _, ep, al = lam.biaxial_return_map(strain, 0.0, ep, al, m, sig_y, hardening)
        s3, ep3, al3 = _j2_plane_stress_twin(strain, ep3, al3, e, nu, sig_y, hardening)
        assert s == pytest.approx(s3, rel=1e-9, abs=1e-9 * sig_y)
        np.testing.assert_allclose(ep3, [ep, ep, -2 * ep], rtol=1e-8, atol=1e-14)  # incompressible
        assert al == pytest.approx(al3, rel=1e-8, abs=1e-14)


@pytest.mark.parametrize("hardening", [0.0, 2e9])
def test_monotonic_biaxial_return_is_exact_for_any_step_size(hardening):
    """Load to 6 yield strains in 1 and in 97 steps: stress on the yield surface, eps_p in closed form."""
    m, sig_y = 150e9, 0.5e9
    e_y = sig_y / m
    target = -6 * e_y
    for n_steps in [1, 97]:
        ep, al = 0.0, 0.0
        for strain in np.linspace(0, target, n_steps + 1)[1:]:
            s, t, ep, al = lam.biaxial_return_map(strain, 0.0, ep, al, m, sig_y, hardening)
        ep_exact = -(m * abs(target) - sig_y) / (m + 2 * hardening)  # |s| = s_y + 2H|ep| = M(|e| - |ep|)
        assert ep == pytest.approx(ep_exact, rel=1e-13)
        assert al == pytest.approx(2 * abs(ep_exact), rel=1e-13)  # equivalent plastic strain 2|eps_p|
        assert s == pytest.approx(-(sig_y + hardening * al), rel=1e-14)
        assert s == pytest.approx(m * (target - ep), rel=1e-12)
        assert t == pytest.approx(2 * m * hardening / (m + 2 * hardening), rel=1e-14, abs=0.0)


def test_return_map_tangent_is_the_derivative_of_the_update():
    m, sig_y, hard = 100e9, 0.3e9, 5e9
    ep0, al0 = -0.004, 0.008
    for strain in [-0.02, -0.009, 0.0, 0.003, 0.02]:  # plastic compression, elastic, plastic tension
        s, t, _, _ = lam.biaxial_return_map(strain, 0.001, ep0, al0, m, sig_y, hard)
        d = 1e-9
        sp = lam.biaxial_return_map(strain + d, 0.001, ep0, al0, m, sig_y, hard)[0]
        sm = lam.biaxial_return_map(strain - d, 0.001, ep0, al0, m, sig_y, hard)[0]
        assert t == pytest.approx((sp - sm) / (2 * d), rel=1e-6)


@pytest.mark.parametrize("hardening", [0.0, 4e9])
def test_unloading_is_elastic_then_reverse_yield_at_the_expanded_surface(hardening):
    m, sig_y = 100e9, 0.5e9
    e_y = sig_y / m
    s_max, _, ep, al = lam.biaxial_return_map(-5 * e_y, 0.0, 0.0, 0.0, m, sig_y, hardening)
    radius = sig_y + hardening * al
    reverse = -5 * e_y + (radius - s_max) / m  # strain where sigma reaches +radius elastically
    for strain in np.linspace(-5 * e_y, reverse, 7)[1:-1]:
        s, t, ep1, al1 = lam.biaxial_return_map(strain, 0.0, ep, al, m, sig_y, hardening)
        assert (ep1, al1, t) == (ep, al, m)
        assert s == pytest.approx(s_max + m * (strain + 5 * e_y), rel=1e-13, abs=1e-6)
    strain = reverse + 2 * e_y
    s, _, ep2, al2 = lam.biaxial_return_map(strain, 0.0, ep, al, m, sig_y, hardening)
    dep = (m * (strain - ep) - radius) / (m + 2 * hardening)
    assert ep2 == pytest.approx(ep + dep, rel=1e-12)
    assert al2 == pytest.approx(al + 2 * dep, rel=1e-12)
    assert s == pytest.approx(radius + 2 * hardening * dep, rel=1e-13)


# --- elastic laminate closed forms -----------------------------------------------------------------

def test_rigid_substrate_gives_minus_e_eps_star_over_one_minus_nu_exactly():
    """Elastic small strain, linear eigenstrain beta theta / 3, graded film, eps0 = kappa = 0."""
    rng = np.random.default_rng(3)
    n = 9
    z_faces = np.concatenate([[0.0], np.cumsum(rng.uniform(10e-9, 100e-9, n))])
    theta, beta = rng.uniform(0.0, 0.02, n), rng.uniform(2.2, 3.0, n)
    young, nu = rng.uniform(30e9, 90e9, n), rng.uniform(0.2, 0.4, n)
    modulus = young / (1 - nu)
    stretch = np.empty(n)
    mat = np.empty((lam.N_MATERIAL_ROWS, 2 * n))
    inf = np.full(n, np.inf)
    lam.layer_properties(theta, beta, modulus, modulus, inf, inf, np.zeros(n), lam.EIGEN_LINEAR, False, stretch,
                         mat)
    _, _, stress, _, _, result = _state(z_faces, stretch, mat, mode=lam.MODE_FIXED)
    np.testing.assert_allclose(stress, np.repeat(-young * (beta * theta / 3) / (1 - nu), 2), rtol=4e-16, atol=0)
    weights = np.repeat(np.diff(z_faces) / 2, 2)
    assert result[lam.R_FORCE] == pytest.approx(np.sum(stress * weights), rel=1e-14)  # reaction


def test_very_stiff_thick_substrate_approaches_the_rigid_stress():
    h_f, h_s = 500e-9, 1e-3
    eigen, m_f = 0.01, 60e9
    z_faces = np.array([-h_s, 0.0, h_f])
    mat = _elastic_material([0.0, eigen], [1e3 * M_CU, m_f])
    status, _, stress, _, _, result = _state(z_faces, np.ones(2), mat)
    assert status >= 0
    np.testing.assert_allclose(stress[2:], -m_f * eigen, rtol=1e-6)
    assert abs(result[lam.R_FORCE]) < 1e-12 * m_f * eigen * h_f


@pytest.mark.parametrize("ratio", [1e-3, 1e-2, 1e-1])
def test_stoney_curvature_within_one_percent_for_thin_films_and_its_error_grows_linearly(ratio):
    h_s = 100e-6
    h_f = ratio * h_s
    m_f, eigen = 60e9, 0.01
    z_faces = np.concatenate([np.linspace(-h_s, 0.0, 4), [h_f]])
    mat = _elastic_material([0.0, 0.0, 0.0, eigen], [M_CU, M_CU, M_CU, m_f])
    status, _, _, _, _, result = _state(z_faces, np.ones(4), mat)
    assert status >= 0
    sigma_f = -m_f * eigen  # the mismatch stress of the film on a rigid substrate
    stoney = -6.0 * sigma_f * h_f / (M_CU * h_s ** 2)  # 6 sigma_f h_f (1 - nu_s)/(E_s h_s^2), sign: film up
    error = result[lam.R_KAPPA] / stoney - 1.0
    # Timoshenko's series in h = h_f/h_s, n = M_f/M_s: kappa/kappa_Stoney = (1 + h)/(1 + n h (4 + 6h + 4h^2)
    # + n^2 h^4) = 1 + (1 - 4n) h + O(h^2): the error grows linearly with the thickness ratio
    n = m_f / M_CU
    exact = (1 + ratio) / (1 + n * ratio * (4 + 6 * ratio + 4 * ratio ** 2) + n ** 2 * ratio ** 4) - 1
    assert error == pytest.approx(exact, rel=1e-9)
    assert error / ratio == pytest.approx(1 - 4 * n, rel=10 * ratio)
    if ratio <= 1e-3:
        assert abs(error) < 0.01


@pytest.mark.parametrize(("h1", "h2", "m1", "m2", "layers"), [
    (1.0e-3, 1.0e-3, 120e9, 120e9, (1, 1)),
    (1.0e-4, 6.0e-7, 182e9, 45e9, (3, 5)),
    (2.0e-6, 7.0e-6, 20e9, 300e9, (4, 2)),
])
def test_bimetal_curvature_matches_timoshenko_to_round_off(h1, h2, m1, m2, layers):
    eig1, eig2 = 1e-3, -2e-3
    z_faces = _two_materials(h1, layers[0], h2, layers[1], grading=1.3)
    mat = _elastic_material([eig1] * layers[0] + [eig2] * layers[1], [m1] * layers[0] + [m2] * layers[1])
    status, _, _, _, _, result = _state(z_faces, np.ones(sum(layers)), mat)
    assert status >= 0
    assert result[lam.R_KAPPA] == pytest.approx(_timoshenko(h1, h2, m1, m2, eig1, eig2), rel=1e-12)


def test_swollen_bimetal_matches_timoshenko_with_the_current_thickness():
    """Log eigenstrain and lambda_z = 1 + beta theta: the closed form holds for the current film."""
    h_s, h_f, beta, theta = 20e-6, 0.6e-6, 2.93, 0.4
    sub, film = 3, 4
    z_faces = _two_materials(h_s, sub, h_f, film)
    n = sub + film
    th = np.array([0.0] * sub + [theta] * film)
    b = np.array([0.0] * sub + [beta] * film)
    m0 = np.array([M_CU] * sub + [55e9] * film)
    m1 = np.array([M_CU] * sub + [35e9] * film)
    stretch = np.empty(n)
    mat = np.empty((lam.N_MATERIAL_ROWS, 2 * n))
    inf = np.full(n, np.inf)
    lam.layer_properties(th, b, m0, m1, inf, inf, np.zeros(n), lam.EIGEN_LOG, True, stretch, mat)
    status, _, _, _, _, result = _state(z_faces, stretch, mat)
    assert status >= 0
    m_f = 55e9 + (35e9 - 55e9) * theta
    h_cur = h_f * (1 + beta * theta)
    assert result[lam.R_THICKNESS] == pytest.approx(h_s + h_cur, rel=1e-15)
    expected = _timoshenko(h_s, h_cur, M_CU, m_f, 0.0, math.log1p(beta * theta) / 3)
    assert result[lam.R_KAPPA] == pytest.approx(expected, rel=1e-12)


def _graded_problem():
    """Smoothly graded film on a substrate: M(z), eps*(z) and the exact (eps0, kappa) by quad."""
    h_s, h_f, m_s = 20e-6, 2e-6, M_CU

    def m_f(z):
        return 40e9 + 25e9 * math.sin(2.0 * z / h_f) ** 2

    def e_f(z):
        return 0.01 * math.exp(-z / h_f)

    a = m_s * h_s + quad(m_f, 0, h_f, epsabs=0, epsrel=1e-13)[0]
    b = -m_s * h_s ** 2 / 2 + quad(lambda z: m_f(z) * z, 0, h_f, epsabs=0, epsrel=1e-13)[0]
    d = m_s * h_s ** 3 / 3 + quad(lambda z: m_f(z) * z * z, 0, h_f, epsabs=0, epsrel=1e-13)[0]
    n_star = quad(lambda z: m_f(z) * e_f(z), 0, h_f, epsabs=0, epsrel=1e-13)[0]
    m_star = quad(lambda z: m_f(z) * e_f(z) * z, 0, h_f, epsabs=0, epsrel=1e-13)[0]
    eps0, kappa = np.linalg.solve([[a, b], [b, d]], [n_star, m_star])
    return h_s, h_f, m_s, np.vectorize(m_f), np.vectorize(e_f), eps0, kappa


@pytest.mark.parametrize(("sampling", "order", "sizes"),
                         [("layer", 2.0, [16, 32, 64]), ("gauss", 4.0, [4, 8, 16])])
def test_graded_film_converges_at_the_quadrature_order(sampling, order, sizes):
    """Properties sampled at layer midpoints: second order; at the Gauss points: fourth order."""
    h_s, h_f, m_s, m_f, e_f, eps0, kappa = _graded_problem()
    errors = []
    for n in sizes:
        z_faces = np.concatenate([[-h_s], np.linspace(0.0, h_f, n + 1)])
        if sampling == "layer":
            zq = np.repeat(0.5 * (z_faces[1:] + z_faces[:-1]), 2)
        else:
            zq = np.empty(2 * (n + 1))
            lam.reference_points(z_faces, zq)
        film = np.arange(2 * (n + 1)) >= 2
        mat = _elastic_material(np.zeros(n + 1), np.full(n + 1, m_s))
        mat[lam.M_EIGENSTRAIN, film] = e_f(zq[film])
        mat[lam.M_MODULUS, film] = m_f(zq[film])
        status, _, _, _, _, result = _state(z_faces, np.ones(n + 1), mat)
        assert status >= 0
        errors.append([abs(result[lam.R_KAPPA] / kappa - 1.0), abs(result[lam.R_EPS0] / eps0 - 1.0)])
    errors = np.array(errors)
    observed = np.log2(errors[:-1] / errors[1:])
    np.testing.assert_allclose(observed, order, atol=0.1)


# --- elastoplastic laminate -------------------------------------------------------------------------

def _cycle(n_half):
    up = np.linspace(0.0, 1.0, n_half + 1)
    return np.concatenate([up, up[-2::-1]])


def _sweep(z_faces, theta, beta, m0, m1, y0, y1, hard, form, current, mode, n_substeps):
    n_states, n = theta.shape
    history = np.zeros((lam.N_HISTORY_ROWS, 2 * n))
    stress = np.empty((n_states, 2 * n))
    plastic = np.empty((n_states, 2 * n))
    result = np.empty((n_states, lam.N_RESULT))
    done = lam.laminate_sweep(z_faces, theta, beta, m0, m1, y0, y1, hard, form, current, mode, n_substeps,
                              TOL, 50, history, stress, plastic, result)
    return done, stress, plastic, result, history


@pytest.mark.parametrize("hardening", [0.0, 5e9])
def test_single_layer_on_rigid_substrate_follows_the_hand_integrated_cycle(hardening):
    """Sodiation to theta = 1 and back, log eigenstrain, constant M and sigma_y, by hand.

    Loading: sigma = -M eps* until M eps* = sigma_y, then eps_p = -(M eps* - sigma_y)/(M + 2H) and
    sigma = -M (eps* + eps_p). Unloading from (eps*_m, eps_p,m, alpha_m = 2|eps_p,m|): elastic
    sigma = -M (eps* + eps_p,m) up to +(sigma_y + H alpha_m), then reverse flow
    eps_p = (2H eps_p,m - M eps* - sigma_y - H alpha_m)/(M + 2H).
    """
    m, sig_y, beta = 50e9, 0.5e9, 2.93
    theta_path = _cycle(20)
    e_star = np.log1p(beta * theta_path) / 3
    expected = np.empty_like(theta_path)
    ep_m = None
    for k, es in enumerate(e_star):
        if k <= 20:
            ep = 0.0 if m * es <= sig_y else -(m * es - sig_y) / (m + 2 * hardening)
            ep_m = ep
        else:
            al_m = 2 * abs(ep_m)
            ep = ep_m
            if -m * (es + ep_m) > sig_y + hardening * al_m:
                ep = (2 * hardening * ep_m - m * es - sig_y - hardening * al_m) / (m + 2 * hardening)
        expected[k] = -m * (es + ep)
    one = np.ones(1)
    for n_sub in [1, 5]:
        done, stress, _, result, _ = _sweep(np.array([0.0, 600e-9]), theta_path[:, None], beta * one,
                                            m * one, m * one, sig_y * one, sig_y * one, hardening * one,
                                            lam.EIGEN_LOG, True, lam.MODE_FIXED, n_sub)
        assert done == theta_path.size
        np.testing.assert_allclose(stress[:, 0], expected, rtol=0, atol=1e-12 * sig_y)
        np.testing.assert_array_equal(stress[:, 0], stress[:, 1])
        np.testing.assert_allclose(result[:, lam.R_THICKNESS], 600e-9 * (1 + beta * theta_path), rtol=1e-15)
    assert expected[0] == 0.0 and expected[20] < 0.0 and expected[-1] > 0.0  # tension on desodiation
    assert expected[-1] == pytest.approx(sig_y + hardening * 2 * abs(ep_m) + 2 * hardening * (
        (2 * hardening * ep_m - sig_y - hardening * 2 * abs(ep_m)) / (m + 2 * hardening) - ep_m), rel=1e-12)


def _graded_film_on_copper(n_film, n_sub=6):
    h_s, h_f = 100e-6, 600e-9
    z_faces = np.concatenate([np.linspace(-h_s, 0.0, n_sub + 1)[:-1], np.linspace(0.0, h_f, n_film + 1)])
    n = n_sub + n_film
    film = np.arange(n) >= n_sub
    x_bi = np.where(film, np.linspace(0.5, 0.23, n), 0.0)  # the process profile's range (SPEC §3.3)
    beta = np.where(film, 2.51 * x_bi + 2.93 * (1 - x_bi), 0.0)
    m0 = np.where(film, (32e9 * x_bi + 55e9 * (1 - x_bi)) / (1 - 0.33), M_CU)
    m1 = np.where(film, 0.6 * m0, M_CU)
    y0 = np.where(film, 0.5e9, np.inf)
    y1 = np.where(film, 0.2e9, np.inf)
    hard = np.where(film, 1e9, 0.0)
    return z_faces, film, beta, m0, m1, y0, y1, hard


def test_free_plate_cycle_balances_force_and_moment_in_every_state_and_ends_in_tension():
    z_faces, film, beta, m0, m1, y0, y1, hard = _graded_film_on_copper(12)
    theta_path = _cycle(15)
    theta = np.where(film, 1.0, 0.0)[None, :] * theta_path[:, None]
    done, stress, plastic, result, history = _sweep(z_faces, theta, beta, m0, m1, y0, y1, hard,
                                                    lam.EIGEN_LOG, True, lam.MODE_FREE, 3)
    assert done == theta_path.size
    points = np.empty((lam.N_POINT_ROWS, stress.shape[1]))
    for s in range(done):
        stretch = 1 + beta * theta[s]
        thickness = lam.current_points(z_faces, stretch, points)
        assert result[s, lam.R_THICKNESS] == pytest.approx(thickness, rel=1e-15)
        w, z = points[lam.P_WEIGHT], points[lam.P_Z]
        size = np.sum(np.abs(stress[s]) * w) + 1.0
        assert abs(np.sum(stress[s] * w)) < 1e-12 * size
        assert abs(np.sum(stress[s] * w * z)) < 1e-12 * size * thickness
        assert abs(result[s, lam.R_FORCE]) < 1e-12 * size
    filmq = np.repeat(film, 2)
    peak = 15
    assert np.all(stress[peak, filmq] < 0) and np.all(plastic[peak, filmq] < 0)
    assert np.all(stress[-1, filmq] > 0)  # tension after desodiation
    assert result[peak, lam.R_KAPPA] > 0  # the swollen film on top makes the top fibres longer
    np.testing.assert_array_equal(plastic[-1], history[lam.H_PLASTIC])


def test_sweep_in_substeps_matches_a_sweep_through_every_substep():
    z_faces, film, beta, m0, m1, y0, y1, hard = _graded_film_on_copper(5)
    coarse = np.linspace(0.0, 1.0, 4)
    fine = np.linspace(0.0, 1.0, 13)
    unit = np.where(film, 1.0, 0.0)[None, :]
    args = (beta, m0, m1, y0, y1, hard, lam.EIGEN_LOG, True, lam.MODE_FREE)
    _, s_coarse, _, r_coarse, _ = _sweep(z_faces, unit * coarse[:, None], *args, 4)
    _, s_fine, _, r_fine, _ = _sweep(z_faces, unit * fine[:, None], *args, 1)
    np.testing.assert_allclose(s_coarse, s_fine[::4], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(r_coarse[:, lam.R_KAPPA], r_fine[::4, lam.R_KAPPA], rtol=1e-10)


def test_sensitivities_match_finite_differences():
    z_faces, film, beta, m0, m1, y0, y1, hard = _graded_film_on_copper(6, n_sub=2)
    n = z_faces.size - 1
    theta = np.where(film, np.linspace(0.2, 0.5, n), 0.0)
    history = np.zeros((lam.N_HISTORY_ROWS, 2 * n))
    history[lam.H_PLASTIC] = np.repeat(np.where(film, -0.05, 0.0), 2)
    history[lam.H_EQUIVALENT] = 2 * np.abs(history[lam.H_PLASTIC])
    args = (beta, m0, m1, y0, y1)

    def solve(th, mode=lam.MODE_FREE, guess=(0.0, 0.0)):
        stretch = np.empty(n)
        mat = np.empty((lam.N_MATERIAL_ROWS, 2 * n))
        lam.layer_properties(th, *args, hard, lam.EIGEN_LOG, True, stretch, mat)
        return (stretch, mat) + _state(z_faces, stretch, mat, mode=mode, history=history, guess=guess)

    stretch, mat, status, points, stress, tangent, _, result = solve(theta)
    assert status >= 0
    assert np.any(tangent[np.repeat(film, 2)] < 0.5 * mat[lam.M_MODULUS, np.repeat(film, 2)])  # some plastic
    u = (result[lam.R_EPS0], result[lam.R_KAPPA])
    dstretch = np.empty(n)
    dmat = np.empty_like(mat)
    lam.layer_property_derivatives(theta, *args, lam.EIGEN_LOG, True, dstretch, dmat)
    sens = np.empty((2, n))
    lam.equilibrium_sensitivity(z_faces, points, mat, history, dstretch, dmat, *u, sens)
    k = np.array([[result[lam.R_STIFF_A], result[lam.R_STIFF_B]], [result[lam.R_STIFF_B],
                                                                   result[lam.R_STIFF_D]]])
    du = -np.linalg.solve(k, sens)
    h = 1e-7
    for i in np.flatnonzero(film):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h
        tm[i] -= h
        rp = solve(tp, lam.MODE_FIXED, u)[-1]
        rm = solve(tm, lam.MODE_FIXED, u)[-1]
        fd = np.array([rp[lam.R_FORCE] - rm[lam.R_FORCE], rp[lam.R_MOMENT] - rm[lam.R_MOMENT]]) / (2 * h)
        for row in range(2):
            assert sens[row, i] == pytest.approx(fd[row], rel=1e-5, abs=1e-8 * np.abs(sens[row]).max())
        sp = solve(tp, guess=u)[-1]
        sm = solve(tm, guess=u)[-1]
        fd_u = np.array([sp[lam.R_EPS0] - sm[lam.R_EPS0], sp[lam.R_KAPPA] - sm[lam.R_KAPPA]]) / (2 * h)
        np.testing.assert_allclose(du[:, i], fd_u, rtol=1e-5)
    for j, d in enumerate([(1e-9, 0.0), (0.0, 1e-6)]):  # the 2 x 2 tangent about z = 0
        rp = solve(theta, lam.MODE_FIXED, (u[0] + d[0], u[1] + d[1]))[-1]
        rm = solve(theta, lam.MODE_FIXED, (u[0] - d[0], u[1] - d[1]))[-1]
        step = 2 * (d[0] + d[1])
        col = np.array([rp[lam.R_FORCE] - rm[lam.R_FORCE], rp[lam.R_MOMENT] - rm[lam.R_MOMENT]]) / step
        np.testing.assert_allclose(k[:, j], col, rtol=1e-6)


def test_free_standing_film_relaxes_to_zero_stress_from_a_fully_plastic_start():
    """Every point flows at the guess eps0 = kappa = 0, so the consistent tangent is zero."""
    z_faces = np.array([0.0, 1e-6, 2e-6])
    mat = _elastic_material([0.1, 0.1], [50e9, 50e9])
    mat[lam.M_YIELD] = 0.1e9
    status, _, stress, tangent, _, result = _state(z_faces, np.ones(2), mat)
    assert status > 0
    np.testing.assert_allclose(stress, 0.0, atol=1e-13 * 50e9)
    assert result[lam.R_EPS0] == pytest.approx(0.1, rel=1e-13)
    assert abs(result[lam.R_KAPPA]) * 2e-6 < 1e-13


def test_cycle_with_a_yielding_thin_substrate_converges_and_balances():
    """Perfect plasticity in film and foil: the tangent turns singular, the stresses stay unique."""
    z_faces, film, beta, m0, m1, y0, y1, hard = _graded_film_on_copper(10, n_sub=3)
    z_faces[:3] *= 0.05  # a 5 um foil under a 600 nm film
    y0[~film] = y1[~film] = 0.2e9  # Cu yields too
    hard[:] = 0.0
    theta_path = _cycle(8)
    theta = np.where(film, 1.0, 0.0)[None, :] * theta_path[:, None]
    done, stress, plastic, result, _ = _sweep(z_faces, theta, beta, m0, m1, y0, y1, hard, lam.EIGEN_LOG, True,
                                              lam.MODE_FREE, 2)
    assert done == theta_path.size
    assert np.all(result[:, lam.R_RESIDUAL] <= TOL)
    assert np.any(plastic[:, :6] != 0.0)  # the foil flowed
    assert np.all(np.abs(stress) <= np.maximum(np.repeat(y0, 2), np.repeat(y1, 2)) * (1 + 1e-14))


# --- tridiagonal plus rank 2 --------------------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 4, 57, 400])
def test_tridiagonal_rank2_solve_matches_a_dense_solve(n):
    rng = np.random.default_rng(n)
    lower = rng.uniform(0.1, 1.0, n)
    upper = rng.uniform(0.1, 1.0, n)
    diag = -(lower + upper) - rng.uniform(0.5, 1.0, n)
    u = rng.normal(size=(2, n))
    v = rng.normal(size=(2, n)) / n
    rhs = rng.normal(size=n)
    dense = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1) + u.T @ v
    out = np.empty(n)
    det = lam.solve_tridiagonal_rank2(lower, diag, upper, u, v, rhs, out, np.empty((3, n)))
    assert det != 0.0
    np.testing.assert_allclose(out, np.linalg.solve(dense, rhs), rtol=1e-10, atol=1e-12)


def test_condensed_bordered_newton_system_matches_the_dense_solve():
    """The module docstring's elimination: [T U; V^T K] d = -r via tridiagonal + rank 2."""
    rng = np.random.default_rng(11)
    n = 40
    lower, upper = rng.uniform(0.1, 1.0, n), rng.uniform(0.1, 1.0, n)
    diag = -(lower + upper) - rng.uniform(0.5, 1.0, n)
    big_u = rng.normal(size=(n, 2))
    big_v = rng.normal(size=(n, 2))
    k = np.array([[3.0, 0.4], [0.4, 1.5]])
    r_theta, r_mech = rng.normal(size=n), rng.normal(size=2)
    tri = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    dense = np.block([[tri, big_u], [big_v.T, k]])
    expected = np.linalg.solve(dense, -np.concatenate([r_theta, r_mech]))
    kinv = np.linalg.inv(k)
    d_theta = np.empty(n)
    lam.solve_tridiagonal_rank2(lower, diag, upper, np.ascontiguousarray(big_u.T),
                                np.ascontiguousarray(-(kinv @ big_v.T)), -r_theta + big_u @ kinv @ r_mech,
                                d_theta, np.empty((3, n)))
    d_u = -kinv @ (r_mech + big_v.T @ d_theta)
    np.testing.assert_allclose(np.concatenate([d_theta, d_u]), expected, rtol=1e-10, atol=1e-12)
