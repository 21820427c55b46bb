"""Complete Fermi-Dirac integrals F_1/2, F_-1/2, F_3/2 and the inverse of F_1/2.

All integrals are *normalised* (Blakemore's convention, the one the seed paper's Eq. 1 uses):

    F_j(eta) = 1/Gamma(j + 1) * integral_0^inf  t^j / (1 + exp(t - eta)) dt,

so that F_j(eta) -> exp(eta) as eta -> -inf, F_1/2(0) = 0.765147..., and dF_j/deta = F_(j-1).

Evaluation, accurate to ~1e-14 relative on eta in [-50, 1000] (the tests prove 1e-10 against
adaptive quadrature):

* eta < -2: the alternating series F_j = sum_k (-1)^(k+1) z^k / k^(j+1), z = exp(eta), 20 terms
  (Horner in z, so the relative accuracy holds to the underflow of exp); below eta = -37 the
  first term alone (the second is under 1e-16 of it), which is what minority carriers need;
* -2 <= eta <= 40: piecewise Chebyshev expansions of degree 20 on unit intervals. The coefficients
  are computed when this module is imported, from the trapezoid rule in t = s^2 on the whole real
  line, which converges geometrically for this analytic, Gaussian-decaying integrand (the poles of
  the Fermi factor sit at s^2 = eta + i pi (2m + 1), so h = 0.02 is past machine precision);
* eta > 40: the Sommerfeld expansion eta^(j+1)/Gamma(j+2) [1 + sum_k a_k eta^(-2k)], 10 terms.
  It is asymptotic, not convergent (a_k grows like (2k)!), so its best error is ~exp(-eta): the
  switch sits at eta = 40, where the first omitted term is below 2e-16.

The inverse of F_1/2 is Newton's method on ln F_1/2 (concave, so globally convergent) from the
Joyce-Dixon or degenerate-limit guess.

References: J. S. Blakemore, Solid-State Electron. 25, 1067 (1982), doi:10.1016/0038-1101(82)90143-5;
T. Fukushima, Appl. Math. Comput. 259, 708 (2015), doi:10.1016/j.amc.2015.03.009 (for the
normalisation warning: published fast approximations are often for the unnormalised integral).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from scipy.special import gamma, zeta

from ._jit import JIT, JIT_PARALLEL, PARALLEL_MIN_SIZE

#: Orders supported, in the row order of the tables below.
ORDERS = (0.5, -0.5, 1.5)

_ETA_LO = -2.0
# below this the series' second term, e^(2 eta)/2^(j+1), is under 1e-16 of the first: F_j = e^eta
_ETA_DEEP = -37.0
_ETA_HI = 40.0
_N_INTERVALS = 42  # unit intervals on [_ETA_LO, _ETA_HI]
_DEGREE = 20
_N_SERIES = 20
_N_SOMMERFELD = 10


def _quadrature(order: float, eta: np.ndarray) -> np.ndarray:
    """Reference F_j(eta) by the geometrically convergent trapezoid rule in t = s^2 (numpy)."""
    h = 0.02
    s_max = math.sqrt(max(float(np.max(eta)), 0.0) + 80.0)
    s = np.arange(0.5 * h, s_max, h)  # midpoints of an even integrand: trapezoid on R
    s2 = s * s
    arg = s2[None, :] - eta[:, None]
    fermi = np.exp(-np.logaddexp(0.0, arg))
    integrand = 2.0 * s ** (2.0 * order + 1.0) * fermi
    return integrand.sum(axis=1) * h / gamma(order + 1.0)


def _build_tables():
    cheb = np.empty((len(ORDERS), _N_INTERVALS, _DEGREE + 1))
    k = np.arange(_DEGREE + 1)
    nodes = np.cos(np.pi * (k + 0.5) / (_DEGREE + 1))  # Chebyshev points of the first kind
    for row, order in enumerate(ORDERS):
        for m in range(_N_INTERVALS):
            a = _ETA_LO + m
            eta = a + 0.5 * (nodes + 1.0)
            values = _quadrature(order, eta)
            # discrete Chebyshev transform
            c = 2.0 / (_DEGREE + 1) * np.cos(np.outer(k, np.arccos(nodes))) @ values
            c[0] *= 0.5
            cheb[row, m] = c
    series = np.empty((len(ORDERS), _N_SERIES))
    kk = np.arange(1, _N_SERIES + 1)
    for row, order in enumerate(ORDERS):
        series[row] = (-1.0) ** (kk + 1) / kk ** (order + 1.0)
    sommerfeld = np.empty((len(ORDERS), _N_SOMMERFELD + 1))
    for row, order in enumerate(ORDERS):
        sommerfeld[row, 0] = 1.0 / gamma(order + 2.0)
        for kidx in range(1, _N_SOMMERFELD + 1):
            falling = np.prod([order + 1.0 - m for m in range(2 * kidx)])
            sommerfeld[row, kidx] = 2.0 * (1.0 - 2.0 ** (1 - 2 * kidx)) * zeta(2 * kidx) * falling
    for table in (cheb, series, sommerfeld):
        table.setflags(write=False)
    return cheb, series, sommerfeld


# Read-only tables, frozen into the compiled kernels as constants.
_CHEB, _SERIES, _SOMMERFELD = _build_tables()
_CHEB_DEGREE = _DEGREE
_SERIES_N = _N_SERIES
_SOMMERFELD_N = _N_SOMMERFELD


@njit(**JIT)
def _fd(eta: float, row: int) -> float:
    """Normalised F_j(eta) for the order in ``ORDERS[row]``."""
    if eta < _ETA_DEEP:
        return math.exp(eta)
    if eta < _ETA_LO:
        z = math.exp(eta)
        acc = 0.0
        for k in range(_SERIES_N - 1, -1, -1):
            acc = acc * z + _SERIES[row, k]
        return acc * z
    if eta <= _ETA_HI:
        m = int(eta - _ETA_LO)
        if m >= _N_INTERVALS:
            m = _N_INTERVALS - 1
        t = 2.0 * (eta - (_ETA_LO + m)) - 1.0
        # Clenshaw recurrence
        b1 = 0.0
        b2 = 0.0
        for k in range(_CHEB_DEGREE, 0, -1):
            b0 = 2.0 * t * b1 - b2 + _CHEB[row, m, k]
            b2 = b1
            b1 = b0
        return t * b1 - b2 + _CHEB[row, m, 0]
    inv2 = 1.0 / (eta * eta)
    acc = 0.0
    for k in range(_SOMMERFELD_N, 0, -1):
        acc = (acc + _SOMMERFELD[row, k]) * inv2
    return _SOMMERFELD[row, 0] * eta ** (ORDERS[row] + 1.0) * (1.0 + acc)


@njit(**JIT)
def fd_half_pair(eta: float):
    """(F_1/2(eta), F_-1/2(eta)) in one pass: shared region choice, interleaved recurrences.

    The Poisson assembly needs both (density and its derivative) at every node.
    """
    if eta < _ETA_DEEP:
        z = math.exp(eta)
        return z, z
    if eta < _ETA_LO:
        z = math.exp(eta)
        a = 0.0
        b = 0.0
        for k in range(_SERIES_N - 1, -1, -1):
            a = a * z + _SERIES[0, k]
            b = b * z + _SERIES[1, k]
        return a * z, b * z
    if eta <= _ETA_HI:
        m = int(eta - _ETA_LO)
        if m >= _N_INTERVALS:
            m = _N_INTERVALS - 1
        t2 = 2.0 * (eta - (_ETA_LO + m)) - 1.0
        a1 = 0.0
        a2 = 0.0
        b1 = 0.0
        b2 = 0.0
        for k in range(_CHEB_DEGREE, 0, -1):
            a0 = 2.0 * t2 * a1 - a2 + _CHEB[0, m, k]
            b0 = 2.0 * t2 * b1 - b2 + _CHEB[1, m, k]
            a2 = a1
            a1 = a0
            b2 = b1
            b1 = b0
        return t2 * a1 - a2 + _CHEB[0, m, 0], t2 * b1 - b2 + _CHEB[1, m, 0]
    inv2 = 1.0 / (eta * eta)
    a = 0.0
    b = 0.0
    for k in range(_SOMMERFELD_N, 0, -1):
        a = (a + _SOMMERFELD[0, k]) * inv2
        b = (b + _SOMMERFELD[1, k]) * inv2
    root = math.sqrt(eta)
    return _SOMMERFELD[0, 0] * eta * root * (1.0 + a), _SOMMERFELD[1, 0] * root * (1.0 + b)


@njit(**JIT)
def fd_half(eta: float) -> float:
    """Normalised Fermi-Dirac integral F_1/2(eta); F_1/2(0) = 0.765147."""
    return _fd(eta, 0)


@njit(**JIT)
def fd_minus_half(eta: float) -> float:
    """Normalised F_-1/2(eta) = dF_1/2/deta."""
    return _fd(eta, 1)


@njit(**JIT)
def fd_three_half(eta: float) -> float:
    """Normalised F_3/2(eta); dF_3/2/deta = F_1/2."""
    return _fd(eta, 2)


@njit(**JIT)
def fd_half_inverse(y: float) -> float:
    """Solve F_1/2(eta) = y for eta (y > 0); NaN for y <= 0 or NaN.

    Newton on g(eta) = ln F_1/2(eta) - ln y, g' = F_-1/2/F_1/2 (one fused evaluation per
    iteration). g is concave, so Newton's iterates approach the root monotonically after at most
    one step. Start: the four-term Joyce-Dixon series below y = 6 (error < 1e-3), Sommerfeld's
    inversion above (error < 2e-2), so two or three iterations reach round-off.
    J. S. Joyce and R. W. Dixon, Appl. Phys. Lett. 31, 354 (1977), doi:10.1063/1.89697.
    """
    if not (y > 0.0):
        return math.nan
    if math.isinf(y):
        return math.inf
    if y < 6.0:
        eta = math.log(y) + y * (0.35355339059327373 + y * (-4.95009e-3 + y * (
            1.48386e-4 - 4.42563e-6 * y)))
    else:
        u = (1.329340388179137 * y) ** (2.0 / 3.0)  # (Gamma(5/2) y)^(2/3)
        eta = math.sqrt(u * u - 1.6449340668482264)  # Sommerfeld's first correction, pi^2/6
    log_y = math.log(y)
    for _ in range(60):
        f, df = fd_half_pair(eta)
        step = (math.log(f) - log_y) * f / df
        eta -= step
        # quadratic convergence with |g''/2g'| <= 1/2: a step below 1e-8 leaves an error below
        # ~1e-16, so the iterate is final without a confirming iteration
        if abs(step) <= 1e-8 * max(1.0, abs(eta)):
            break
    return eta


@njit(**JIT)
def _fd_array_serial(eta, row, out):
    for i in range(eta.size):
        out[i] = _fd(eta[i], row)


@njit(**JIT_PARALLEL)
def _fd_array_parallel(eta, row, out):
    for i in prange(eta.size):
        out[i] = _fd(eta[i], row)


@njit(**JIT)
def _fd_inverse_array_serial(y, out):
    for i in range(y.size):
        out[i] = fd_half_inverse(y[i])


@njit(**JIT_PARALLEL)
def _fd_inverse_array_parallel(y, out):
    for i in prange(y.size):
        out[i] = fd_half_inverse(y[i])


def fermi_dirac(order: float, eta) -> np.ndarray:
    """Normalised complete Fermi-Dirac integral of ``order`` (1/2, -1/2 or 3/2) on an array.

    Parallel over elements for large arrays.

    Examples
    --------
    >>> round(float(fermi_dirac(0.5, 0.0)), 6)
    0.765147
    """
    try:
        row = ORDERS.index(float(order))
    except ValueError:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}") from None
    eta_arr = np.asarray(eta, dtype=np.float64)
    flat = np.ascontiguousarray(eta_arr.reshape(-1))
    out = np.empty_like(flat)
    kernel = _fd_array_parallel if flat.size >= PARALLEL_MIN_SIZE else _fd_array_serial
    kernel(flat, row, out)
    return out.reshape(eta_arr.shape)


def fermi_dirac_half_inverse(y) -> np.ndarray:
    """Inverse of the normalised F_1/2 on an array: eta such that F_1/2(eta) = y.

    Examples
    --------
    >>> round(float(fermi_dirac_half_inverse(fermi_dirac(0.5, 2.5))), 12)
    2.5
    """
    y_arr = np.asarray(y, dtype=np.float64)
    flat = np.ascontiguousarray(y_arr.reshape(-1))
    out = np.empty_like(flat)
    kernel = _fd_inverse_array_parallel if flat.size >= PARALLEL_MIN_SIZE else _fd_inverse_array_serial
    kernel(flat, out)
    return out.reshape(y_arr.shape)
