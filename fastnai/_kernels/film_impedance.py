"""Small-signal impedance of the film-diffusion electrode: complex tridiagonal-plus-rank-2 solves.

About a state theta of the film (:mod:`.film_diffusion`, n cells) the discrete equations of the
transient are ``M dtheta/dt + K(theta, u, V) = 0`` with ``M = diag(h c_max)`` and K the rows of
:func:`~fastnai._kernels.film_diffusion.assemble` at alpha0 = 0, dt = 1 (face fluxes, and the
Butler-Volmer current i / F of the top cell). With the stress-coupled flux the plate strain
u = (eps0, kappa) of the laminate is an unknown too, fixed by force and moment balance
R(theta, u) = (F, M) = 0 (no mass). A voltage V + Re(dV e^{i w t}) moves the state by
Re(dtheta e^{i w t}) with (``film_diffusion.coupled_newton``'s bordered Jacobian, plus i w M)::

    [ T + i w M   U ] [dtheta]   [-dK/dV dV]        T = dK/dtheta (tridiagonal, with the local
    [ V^T         Kt] [du    ] = [ 0       ]            d sigma_h/d theta), U = dK/du,
                                                        V^T = dR/dtheta, Kt = dR/du (2 x 2)

and eliminating du = -Kt^-1 V^T dtheta leaves ``(T + i w M + u v^T) dtheta = b``, tridiagonal
plus rank 2 with ``u = -U Kt^-1`` and ``v = V``, solved by Sherman-Morrison-Woodbury with one
complex Thomas elimination for three right-hand sides. ``b = -dK/dV`` is non-zero in the top
cell only: (di/dV) / F.

Plastic strain frozen: the stresses are ``sigma = M_q (eps - eps* - eps_p)`` with the
committed eps_p (``history``), i.e. the laminate's material rows with an infinite yield stress
(the elastic tangent). A point in compressive flow unloads elastically on the anodic half
period; after the first cathodic half period it lies inside its yield surface, so the periodic
small-signal response is elastic (shakedown). The lift of a cell's Gauss points by the swelling
of the cells below (relative size kappa h ~ 1e-8) is left out, as in ``coupled_newton``.

The current answers by Faraday's law on the state: the rows of K sum to i / F (the face fluxes
telescope), so the Faradaic admittance is ``dI/dV = -i w F sum_k M_k dtheta_k``, free of the
cancellation between di/dV and di/dtheta dtheta at low frequency; the double layer adds
``i w C_dl``. Frequencies are independent and run in parallel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import film_diffusion as kfd
from . import laminate as lam
from ._jit import JIT, JIT_PARALLEL

FARADAY = kfd.FARADAY


@njit(**JIT)
def butler_volmer_partials(voltage, theta_s, sigma_h_s, sc):
    """di/dV and di/dsigma_h of :func:`~fastnai._kernels.film_diffusion.butler_volmer` at the
    surface state [A m-2 V-1, A m-2 Pa-1]: di/dsigma_h = -di/dV (RT/F) Omega / RT."""
    vt = sc[kfd.S_VT]
    alpha = sc[kfd.S_ALPHA]
    u = kfd.ocv(theta_s, sc[kfd.S_U0], sc[kfd.S_OMEGA_U], vt) + vt * sc[kfd.S_OMEGA_MECH] * sigma_h_s
    eta = voltage - u
    i0 = sc[kfd.S_I0] * 2.0 * math.sqrt(theta_s * (1.0 - theta_s))
    didv = i0 * (alpha * math.exp(alpha * eta / vt)
                 + (1.0 - alpha) * math.exp(-(1.0 - alpha) * eta / vt)) / vt
    return didv, -didv * vt * sc[kfd.S_OMEGA_MECH]


@njit(**JIT)
def mechanics(theta, z_faces, n_sub, beta, modulus0, modulus1, hardening, eigenstrain_form,
              current_frame, history, eps0, kappa, local, tangent_e, tangent_k, sigma_h, sens):
    """The laminate's elastic tangent (plastic strain frozen) at a film state.

    Per film cell k: ``local[k] = d sigma_h,k / d theta_k`` at fixed (eps0, kappa),
    ``tangent_e[k]``, ``tangent_k[k]`` = d sigma_h,k / d(eps0, kappa) and ``sigma_h[k]`` (2/3 of
    the mean of the cell's two Gauss-point stresses) [Pa]; ``sens`` (2, n) = dR/dtheta of the
    resultants R = (F, M about z = 0) (``laminate.equilibrium_sensitivity``) [N m-1, N].
    Returns the elastic stiffness (dF/deps0, dF/dkappa = dM/deps0, dM/dkappa) [N m-1, N, N m].
    """
    n = theta.size
    n_layers = z_faces.size - 1
    n_points = 2 * n_layers
    layers = np.zeros(n_layers)
    for k in range(n):
        layers[n_sub + k] = theta[k]
    elastic = np.full(n_layers, np.inf)
    stretch = np.empty(n_layers)
    dstretch = np.empty(n_layers)
    material = np.empty((lam.N_MATERIAL_ROWS, n_points))
    dmaterial = np.empty((lam.N_MATERIAL_ROWS, n_points))
    points = np.empty((lam.N_POINT_ROWS, n_points))
    lam.layer_properties(layers, beta, modulus0, modulus1, elastic, elastic, hardening,
                         eigenstrain_form, current_frame, stretch, material)
    lam.layer_property_derivatives(layers, beta, modulus0, modulus1, elastic, elastic,
                                   eigenstrain_form, current_frame, dstretch, dmaterial)
    lam.current_points(z_faces, stretch, points)
    ka = 0.0
    kb = 0.0
    kd = 0.0
    for q in range(n_points):
        layer = q // 2
        g = lam.GAUSS_LO if q % 2 == 0 else lam.GAUSS_HI
        dz = (z_faces[layer + 1] - z_faces[layer]) * g * dstretch[layer]
        z = points[lam.P_Z, q]
        w = points[lam.P_WEIGHT, q]
        s, t, ds = lam.point_theta_derivative(eps0 + kappa * z, kappa, dz, q, material, history,
                                              dmaterial)
        ka += t * w
        kb += t * z * w
        kd += t * z * z * w
        if layer >= n_sub:
            k = layer - n_sub
            if q % 2 == 0:
                local[k] = 0.0
                tangent_e[k] = 0.0
                tangent_k[k] = 0.0
                sigma_h[k] = 0.0
            local[k] += ds / 3.0
            tangent_e[k] += t / 3.0
            tangent_k[k] += t * z / 3.0
            sigma_h[k] += s / 3.0
    full = np.empty((2, n_layers))
    lam.equilibrium_sensitivity(z_faces, points, material, history, dstretch, dmaterial, eps0,
                                kappa, full)
    for k in range(n):
        sens[0, k] = full[0, n_sub + k]
        sens[1, k] = full[1, n_sub + k]
    return ka, kb, kd


@njit(**JIT)
def condense(g_face, didsigma, local, tangent_e, tangent_k, sens, ka, kb, kd, diag, lower, upper,
             rank_u, rank_v):
    """Add the stress coupling to the tridiagonal T (in place) and form the rank-2 factors.

    The face flux J_f depends on sigma_h,(f+1) - sigma_h,f (``g_face[f]`` = dJ_f/dsigma_h,(f+1),
    from ``assemble``) and the top cell's current on sigma_h,(n-1) (``didsigma``); each sigma_h,k
    on theta_k (``local``) and on u = (eps0, kappa) (``tangent_e``, ``tangent_k``). The u part,
    U (n x 2), is condensed with the laminate's stiffness: ``rank_u = -U Kt^-1`` (2, n) and
    ``rank_v = V^T = sens`` (2, n), so that dK/dtheta = T + rank_u^T rank_v.
    """
    n = diag.size
    for k in range(n):
        rank_u[0, k] = 0.0
        rank_u[1, k] = 0.0
    for f in range(n - 1):
        for k, sgn in ((f, -1.0), (f + 1, 1.0)):
            c = sgn * g_face[f]  # d J_f / d sigma_h,k; row f gains +J_f, row f+1 gains -J_f
            if k == f:
                diag[f] += c * local[k]
                lower[f + 1] -= c * local[k]
            else:
                upper[f] += c * local[k]
                diag[f + 1] -= c * local[k]
            rank_u[0, f] += c * tangent_e[k]
            rank_u[1, f] += c * tangent_k[k]
            rank_u[0, f + 1] -= c * tangent_e[k]
            rank_u[1, f + 1] -= c * tangent_k[k]
    s = n - 1
    c = didsigma / FARADAY  # the top row holds + i / F
    diag[s] += c * local[s]
    rank_u[0, s] += c * tangent_e[s]
    rank_u[1, s] += c * tangent_k[s]
    det = ka * kd - kb * kb
    i00 = kd / det
    i01 = -kb / det
    i11 = ka / det
    for k in range(n):
        a0 = rank_u[0, k]
        a1 = rank_u[1, k]
        rank_u[0, k] = -(a0 * i00 + a1 * i01)
        rank_u[1, k] = -(a0 * i01 + a1 * i11)
        rank_v[0, k] = sens[0, k]
        rank_v[1, k] = sens[1, k]


@njit(**JIT)
def solve_shifted(lower, diag, upper, mass, rank_u, rank_v, omega, rhs, out, work):
    """Solve (T + i omega diag(mass) + rank_u^T rank_v) out = rhs, T = (lower, diag, upper).

    Sherman-Morrison-Woodbury: ``y = A^-1 rhs``, ``Z = A^-1 rank_u^T``, then
    ``out = y - Z (I + V Z)^-1 V y`` with A = T + i omega diag(mass) factored once (complex
    Thomas, unpivoted like the real Newton solve). ``rhs`` real (n,); ``out`` complex (n,);
    ``work`` complex scratch (4, n).
    """
    n = diag.size
    w = 1j * omega
    cp = work[0]
    y = work[1]
    z0 = work[2]
    z1 = work[3]
    den = diag[0] + w * mass[0]
    cp[0] = upper[0] / den
    y[0] = rhs[0] / den
    z0[0] = rank_u[0, 0] / den
    z1[0] = rank_u[1, 0] / den
    for i in range(1, n):
        den = diag[i] + w * mass[i] - lower[i] * cp[i - 1]
        cp[i] = upper[i] / den
        y[i] = (rhs[i] - lower[i] * y[i - 1]) / den
        z0[i] = (rank_u[0, i] - lower[i] * z0[i - 1]) / den
        z1[i] = (rank_u[1, i] - lower[i] * z1[i - 1]) / den
    for i in range(n - 2, -1, -1):
        y[i] -= cp[i] * y[i + 1]
        z0[i] -= cp[i] * z0[i + 1]
        z1[i] -= cp[i] * z1[i + 1]
    c00 = 1.0 + 0.0j
    c01 = 0.0j
    c10 = 0.0j
    c11 = 1.0 + 0.0j
    g0 = 0.0j
    g1 = 0.0j
    for i in range(n):
        v0 = rank_v[0, i]
        v1 = rank_v[1, i]
        c00 += v0 * z0[i]
        c01 += v0 * z1[i]
        c10 += v1 * z0[i]
        c11 += v1 * z1[i]
        g0 += v0 * y[i]
        g1 += v1 * y[i]
    det = c00 * c11 - c01 * c10
    p0 = (c11 * g0 - c01 * g1) / det
    p1 = (c00 * g1 - c10 * g0) / det
    for i in range(n):
        out[i] = y[i] - z0[i] * p0 - z1[i] * p1


@njit(**JIT)
def _faradaic(lower, diag, upper, mass, rank_u, rank_v, rhs, omega, x, work):
    """dI/dV of the reaction at one angular frequency: -i omega F sum M dtheta [A m-2 V-1]."""
    solve_shifted(lower, diag, upper, mass, rank_u, rank_v, omega, rhs, x, work)
    acc = 0.0j
    for i in range(diag.size):
        acc += mass[i] * x[i]
    return -1j * omega * FARADAY * acc


@njit(**JIT_PARALLEL)
def admittance(lower, diag, upper, mass, rank_u, rank_v, rhs, cdl, omegas, out):
    """Admittance dI/dV per film area at every angular frequency, double layer included.

    Parameters
    ----------
    lower, diag, upper
        T, the tridiagonal part of dK/dtheta, (n,) each [mol m-2 s-1].
    mass
        h c_max per cell (n,) [mol m-2].
    rank_u, rank_v
        The rank-2 factors (2, n) of :func:`condense` (zeros without stress coupling).
    rhs
        -dK/dV (n,): -(di/dV)/F in the top cell [mol m-2 s-1 V-1].
    cdl
        Double-layer capacitance per film area [F m-2].
    omegas
        Angular frequencies (F,) [rad s-1].
    out
        (F,) complex [A m-2 V-1]; Z = 1 / out.
    """
    n = diag.size
    for f in prange(omegas.size):
        x = np.empty(n, dtype=np.complex128)
        work = np.empty((4, n), dtype=np.complex128)
        w = omegas[f]
        out[f] = _faradaic(lower, diag, upper, mass, rank_u, rank_v, rhs, w, x, work) + 1j * w * cdl


@njit(**JIT)
def response(lower, diag, upper, mass, rank_u, rank_v, rhs, omega, out):
    """The state's response dtheta/dV (n,) at one angular frequency into ``out`` (complex) [V-1]."""
    solve_shifted(lower, diag, upper, mass, rank_u, rank_v, omega, rhs, out,
                  np.empty((4, diag.size), dtype=np.complex128))
