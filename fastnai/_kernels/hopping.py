"""Ion hopping flux with site exclusion and Scharfetter-Gummel electron flux (SPEC 3.2).

Na+ between lattice sites i and i+1 (node spacing h, hop distance a), all energies in eV and
potentials in V, V_t = kT/q:

    u = [psi_i - psi_(i+1) + mu_i - mu_(i+1)] / V_t     (mu: excess chemical potential plus site
                                                         energy, eV)
    x = u a / (2 h),   g = sinh(x) / x,   B(u) = u / (e^u - 1)

    J = (D0 g / h) [ B(-u) c_i (1 - theta_(i+1)) - B(u) c_(i+1) (1 - theta_i) ],  theta = c / c_max

    c_i         c_(i+1)
     o-----J----->o
     |<--- h ---->|

At h = a it is exactly the lattice hopping flux a Gamma0 [c_i (1-theta_(i+1)) e^(u/2)
- c_(i+1) (1-theta_i) e^(-u/2)] (D0 = a^2 Gamma0, the barrier tilted by q a E / 2); for uniform
c in a constant field it is the Mott-Gurney drift c (1-theta) 2 a Gamma0 sinh(q a E / 2kT); it
vanishes in equilibrium (theta/(1-theta) proportional to exp(-(psi + mu)/V_t)) for any h, since
B(u)/B(-u) = e^(-u); and it is monotone (increasing in c_i, decreasing in c_(i+1)).

Electrons (particle flux, i -> i+1) by Scharfetter-Gummel with the degenerate correction
delta = F_1/2^-1(n/N_C) - ln(n/N_C) folded into an effective potential psi - V_t delta:

    w = [(psi_(i+1) - V_t delta_(i+1)) - (psi_i - V_t delta_i)] / V_t
    F = (D_n / h) [ B(-w) n_i - B(w) n_(i+1) ]

exact for a constant field and zero for a flat electron quasi-Fermi level.
References: D. L. Scharfetter and H. K. Gummel, IEEE Trans. Electron Devices 16, 64 (1969),
doi:10.1109/T-ED.1969.16566; M. Z. Bazant, Acc. Chem. Res. 46, 1144 (2013),
doi:10.1021/ar300145c.
"""

from __future__ import annotations

import math

from numba import njit

from ._jit import JIT, JIT_INLINE
from .fermi_dirac import fd_half_inverse, fd_minus_half


@njit(**JIT_INLINE)
def bernoulli(u):
    """B(u) = u / (e^u - 1), stable for every real u (series near 0, no overflow)."""
    if abs(u) < 1e-2:
        u2 = u * u
        return 1.0 - 0.5 * u + u2 / 12.0 * (1.0 - u2 / 60.0 * (1.0 - u2 / 42.0))
    if u > 0.0:
        e = math.exp(-u)
        return u * e / -math.expm1(-u)
    return u / math.expm1(u)


@njit(**JIT_INLINE)
def bernoulli_derivative(u):
    """dB/du = B (1 - B) / u - B, with its series near 0."""
    if abs(u) < 1e-2:
        u2 = u * u
        return -0.5 + u / 6.0 * (1.0 - u2 / 30.0 * (1.0 - u2 / 28.0))
    b = bernoulli(u)
    return b * (1.0 - b) / u - b


@njit(**JIT_INLINE)
def sinhc(x):
    """sinh(x) / x and its derivative, with series near 0."""
    if abs(x) < 1e-3:
        x2 = x * x
        return 1.0 + x2 / 6.0 * (1.0 + x2 / 20.0), x / 3.0 * (1.0 + x2 / 10.0)
    s = math.sinh(x)
    return s / x, (x * math.cosh(x) - s) / (x * x)


@njit(**JIT_INLINE)
def bernoulli_pair(u):
    """(B(u), dB/du), bit for bit ``bernoulli`` and ``bernoulli_derivative`` with B evaluated
    once (``bernoulli_derivative`` evaluates it again)."""
    if abs(u) < 1e-2:
        u2 = u * u
        return (1.0 - 0.5 * u + u2 / 12.0 * (1.0 - u2 / 60.0 * (1.0 - u2 / 42.0)),
                -0.5 + u / 6.0 * (1.0 - u2 / 30.0 * (1.0 - u2 / 28.0)))
    b = bernoulli(u)
    return b, b * (1.0 - b) / u - b


@njit(**JIT)
def hopping_flux(u, h, a, d0, c_i, c_j, c_max):
    """Na+ flux from site i to site j = i + 1 [m-2 s-1] and its partial derivatives.

    Parameters
    ----------
    u
        Driving force across the face in thermal units (see module docstring) [1].
    h, a
        Node spacing and hop distance [m].
    d0
        Jump diffusivity a^2 Gamma0 [m2 s-1].
    c_i, c_j, c_max
        Ion densities at the two nodes and the site density [m-3].

    Returns
    -------
    tuple
        (J, dJ/du, dJ/dc_i, dJ/dc_j).
    """
    x = u * a / (2.0 * h)
    g, dg = sinhc(x)
    bm, dbm = bernoulli_pair(-u)
    dbm = -dbm
    bp, dbp = bernoulli_pair(u)
    vac_i = 1.0 - c_i / c_max
    vac_j = 1.0 - c_j / c_max
    pre = d0 * g / h
    bracket = bm * c_i * vac_j - bp * c_j * vac_i
    flux = pre * bracket
    d_u = d0 / h * (dg * a / (2.0 * h)) * bracket + pre * (dbm * c_i * vac_j - dbp * c_j * vac_i)
    d_ci = pre * (bm * vac_j + bp * c_j / c_max)
    d_cj = pre * (-bm * c_i / c_max - bp * vac_i)
    return flux, d_u, d_ci, d_cj


@njit(**JIT)
def degeneracy_correction(n, n_c):
    """delta = F_1/2^-1(n/N_C) - ln(n/N_C) [1] and d delta / dn [m3].

    Zero in the Boltzmann limit; positive and growing like (3 sqrt(pi) n / 4 N_C)^(2/3) when
    degenerate.
    """
    y = n / n_c
    eta = fd_half_inverse(y)
    return eta - math.log(y), 1.0 / (n_c * fd_minus_half(eta)) - 1.0 / n


@njit(**JIT_INLINE)
def sg_flux(w, n_i, n_j, pre):
    """Scharfetter-Gummel flux ``pre (B(-w) n_i - B(w) n_j)`` and its derivatives.

    The one evaluation of the SG face flux: :func:`sg_electron_flux` and the drift-diffusion
    kernel's electron faces call it.

    Parameters
    ----------
    w
        Driving force across the face in thermal units [1].
    n_i, n_j
        Densities at the two nodes [m-3].
    pre
        ``D_n / h`` [m s-1].

    Returns
    -------
    tuple
        (F, dF/dw, dF/dn_i, dF/dn_j).
    """
    bm, dbm = bernoulli_pair(-w)
    bp, dbp = bernoulli_pair(w)
    return pre * (bm * n_i - bp * n_j), pre * (-dbm * n_i - dbp * n_j), pre * bm, -pre * bp


@njit(**JIT)
def sg_electron_flux(psi_i, psi_j, delta_i, delta_j, n_i, n_j, d_n, h, vt):
    """Scharfetter-Gummel electron particle flux from node i to j = i + 1 [m-2 s-1].

    Returns (F, dF/dpsi_i, dF/dpsi_j, dF/dn_i, dF/dn_j) at fixed delta; the model adds the
    delta(n) chain rule (d w / d delta_i = +1, d w / d delta_j = -1) where it uses degenerate
    statistics, with ``dF_dw`` recovered as dF/dpsi_j * V_t.
    """
    w = ((psi_j - vt * delta_j) - (psi_i - vt * delta_i)) / vt
    flux, d_w, d_ni, d_nj = sg_flux(w, n_i, n_j, d_n / h)
    return flux, -d_w / vt, d_w / vt, d_ni, d_nj

