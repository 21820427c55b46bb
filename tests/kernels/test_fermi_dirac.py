"""Fermi-Dirac integrals against adaptive quadrature, identities and the inverse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gamma

from fastnai._kernels.fermi_dirac import (
    fd_half,
    fd_half_inverse,
    fd_minus_half,
    fd_three_half,
    fermi_dirac,
    fermi_dirac_half_inverse,
)

ETA = np.concatenate([np.linspace(-50.0, 40.0, 181), [-2.0, -1.999999, 39.999999, 40.0, 40.000001],
                      np.geomspace(40.0, 1000.0, 25)])


def quadrature(order: float, eta: float) -> float:
    """Normalised F_j by adaptive quadrature (QUADPACK) in t = s^2, which removes t^j at 0."""

    def integrand(s: float) -> float:
        x = s * s - eta
        return 0.0 if x > 700 else 2.0 * s ** (2.0 * order + 1.0) / (1.0 + math.exp(x))

    upper = math.sqrt(max(eta, 0.0) + 60.0)
    points = [math.sqrt(eta)] if eta > 0 else None
    value, _ = quad(integrand, 0.0, upper, epsabs=0.0, epsrel=1e-13, limit=500, points=points)
    return value / gamma(order + 1.0)


@pytest.mark.parametrize("order", [0.5, -0.5, 1.5])
def test_fermi_dirac_matches_adaptive_quadrature_to_1e_10(order):
    reference = np.array([quadrature(order, e) for e in ETA])
    values = fermi_dirac(order, ETA)
    np.testing.assert_allclose(values, reference, rtol=1e-10, atol=0.0)


def test_f_half_normalisation_at_zero():
    assert fd_half(0.0) == pytest.approx(0.765147, abs=5e-7)
    assert fd_half(0.0) == pytest.approx(0.7651470246254079, rel=1e-13)  # -Li_{3/2}(-1)


def test_nondegenerate_limit_is_exponential():
    for eta in (-50.0, -30.0, -20.0):
        assert fd_half(eta) == pytest.approx(math.exp(eta), rel=1e-8)
        assert fd_minus_half(eta) == pytest.approx(math.exp(eta), rel=1e-8)


def test_derivative_identities_dF_j_equals_F_j_minus_1():
    for eta in (-10.0, -1.0, 0.3, 5.0, 25.0, 120.0):
        h = 1e-5 * max(1.0, abs(eta))
        d_half = (fd_half(eta + h) - fd_half(eta - h)) / (2 * h)
        d_three = (fd_three_half(eta + h) - fd_three_half(eta - h)) / (2 * h)
        assert d_half == pytest.approx(fd_minus_half(eta), rel=1e-8)
        assert d_three == pytest.approx(fd_half(eta), rel=1e-8)


def test_degenerate_limit_matches_sommerfeld_expansion():
    eta = 300.0  # the next term, 9.70 eta^-6, is below 1e-14
    series = 1 + math.pi**2 / (8 * eta**2) + 7 * math.pi**4 / (640 * eta**4)
    assert fd_half(eta) == pytest.approx(eta**1.5 / gamma(2.5) * series, rel=1e-13)


def test_inverse_round_trips_over_the_whole_range():
    y = fermi_dirac(0.5, ETA)
    eta_back = fermi_dirac_half_inverse(y)
    np.testing.assert_allclose(eta_back, ETA, rtol=1e-12, atol=1e-12)


def test_inverse_of_nonpositive_is_nan():
    assert math.isnan(fd_half_inverse(0.0))
    assert math.isnan(fd_half_inverse(-1.0))
    assert math.isnan(fd_half_inverse(math.nan))


def test_parallel_array_path_equals_scalar_kernel(numba_threads):
    rng = np.random.default_rng(1)
    eta = rng.uniform(-50.0, 1000.0, 50_000)  # above PARALLEL_MIN_SIZE
    values = fermi_dirac(-0.5, eta)
    scalar = np.array([fd_minus_half(e) for e in eta[:500]])
    np.testing.assert_array_equal(values[:500], scalar)
    assert fermi_dirac(0.5, eta.reshape(100, 500)).shape == (100, 500)


def test_unknown_order_is_rejected():
    with pytest.raises(ValueError, match="order"):
        fermi_dirac(2.5, 0.0)
