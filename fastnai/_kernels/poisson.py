"""1D nonlinear Poisson equation with semiconductor space charge: box-method Newton solver.

Energies are referenced to the Fermi level (E_F = 0) and measured in eV; the electrostatic
potential psi is in V, so that E_C(x) = -psi(x) [eV]. The space charge of one node is

    rho = q (p - n + N_D+ - N_A - n_t)
    n    = N_C F_1/2(psi / V_t)                    (or N_C exp(psi / V_t): Boltzmann)
    p    = N_V F_1/2((-psi - E_g) / V_t)
    N_D+ = N_D / (1 + g_D exp((psi + E_d) / V_t))  (E_d: donor depth below E_C; fully ionised
                                                    when ionisation is off)
    n_t  = N_t / (1 + exp((-psi - E_t) / V_t) / g_t)  (E_t: trap depth below E_C)

The box (vertex-centred finite-volume) discretisation on nodes 0..N-1, node 0 at the contact:

         G_(i-1/2)             G_(i+1/2)
    o-----------------o-----------------o
  i-1     |<------- vol_i ------->|     i+1
                      i

    R_i = G_(i+1/2) (psi_(i+1) - psi_i) - G_(i-1/2) (psi_i - psi_(i-1)) + rho_i vol_i = 0,

with G = eps A / h the face conductance (A the face area per steradian in radial geometry) and
vol_i the dual-cell volume. The far node has no outer face (zero field). Node 0 is either
Dirichlet (psi_0 = psi_c), or the Cowley-Sze Robin condition of a contact with an interfacial
layer of thickness delta and permittivity eps_i carrying interface states:

    R_0 = G_(1/2) (psi_1 - psi_0) + A_0 [ (eps_i/delta)(psi_m - psi_0) + Q_it(psi_0) ] + rho_0 vol_0,

    Q_it = q D_it [ int_(E_V)^(E_CNL) (1 - f) dE - int_(E_CNL)^(E_C) f dE ]

(states uniform over the gap, acceptor-like above the neutrality level E_CNL). Reference:
J. M. Cowley and S. M. Sze, J. Appl. Phys. 36, 3212 (1965), doi:10.1063/1.1702952.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._jit import JIT, JIT_INLINE, JIT_PARALLEL
from .fermi_dirac import fd_half_pair
from .tridiagonal import solve_tridiagonal

Q_E = 1.602176634e-19  # elementary charge [C], scipy.constants.e

# Layout of the ``params`` vector of the space-charge kernels.
P_VT = 0  # thermal voltage kT/q [V]
P_NC = 1  # conduction-band effective density of states [m-3]
P_NV = 2  # valence-band effective density of states [m-3]
P_EG = 3  # band gap [eV]
P_ND = 4  # donor density [m-3]
P_ED = 5  # donor depth below E_C [eV] (used when P_DONOR_IONISATION = 1)
P_GD = 6  # donor degeneracy factor
P_NA = 7  # acceptor density (fully ionised) [m-3]
P_NT = 8  # electron-trap density [m-3]
P_ET = 9  # trap depth below E_C [eV]
P_GT = 10  # trap degeneracy factor
P_STATISTICS = 11  # 0: Fermi-Dirac, 1: Boltzmann
P_DONOR_IONISATION = 12  # 0: fully ionised, 1: incomplete (Fermi occupation of the level)
P_HOLES = 13  # 1: include holes, 0: leave them out (peer-comparison problems)
N_PARAMS = 14

STATISTICS_FERMI_DIRAC = 0
STATISTICS_BOLTZMANN = 1

# Boundary condition at node 0.
BC_DIRICHLET = 0
BC_ROBIN = 1

# Layout of the ``contact`` vector.
C_PSI = 0  # Dirichlet value psi_c, or metal-side potential psi_m for Robin [V]
C_LAYER = 1  # eps_i / delta of the interfacial layer [F m-2]
C_DIT = 2  # interface-state density [m-2 eV-1]
C_CNL = 3  # charge-neutrality level above E_V [eV]
N_CONTACT = 4


@njit(**JIT)
def _logistic(z):
    """1 / (1 + exp(-z)) without overflow."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@njit(**JIT)
def _softplus(z):
    """ln(1 + exp(z)) without overflow."""
    if z > 0.0:
        return z + math.log1p(math.exp(-z))
    return math.log1p(math.exp(z))


@njit(**JIT)
def charge_constants(params):
    """Per-solve constants of the space-charge law, unpacked once from ``params``.

    Returns (1/V_t, N_C, N_V, E_g, N_D, incomplete ionisation?, E_d/V_t + ln g_D, N_A, N_t,
    -E_t/V_t - ln g_t, Boltzmann?, holes?).
    """
    inv_vt = 1.0 / params[P_VT]
    return (inv_vt, params[P_NC], params[P_NV], params[P_EG], params[P_ND],
            params[P_DONOR_IONISATION] == 1.0,
            params[P_ED] * inv_vt + math.log(params[P_GD]),
            params[P_NA], params[P_NT],
            -params[P_ET] * inv_vt - math.log(params[P_GT]),
            params[P_STATISTICS] == STATISTICS_BOLTZMANN,
            params[P_HOLES] != 0.0)


@njit(**JIT_INLINE)
def densities(psi, c):
    """(n, dn, p, dp, N_D+, dN_D+, n_t, dn_t) at psi [V]: densities [m-3] and their
    derivatives with respect to psi [m-3 V-1]; constants from ``charge_constants``."""
    inv_vt, nc, nv, eg, nd, ionisation, d_shift, na, nt, t_shift, boltzmann, holes = c
    eta_n = psi * inv_vt
    if boltzmann:
        n = nc * math.exp(eta_n)
        dn = n * inv_vt
    else:
        f, fm = fd_half_pair(eta_n)
        n = nc * f
        dn = nc * fm * inv_vt
    p = 0.0
    dp = 0.0
    if holes:
        eta_p = (-psi - eg) * inv_vt
        if boltzmann:
            p = nv * math.exp(eta_p)
            dp = -p * inv_vt
        else:
            f, fm = fd_half_pair(eta_p)
            p = nv * f
            dp = -nv * fm * inv_vt
    if ionisation:
        s = _logistic(-(eta_n + d_shift))
        nd_plus = nd * s
        dnd = -nd * s * (1.0 - s) * inv_vt
    else:
        nd_plus = nd
        dnd = 0.0
    n_t = 0.0
    dnt = 0.0
    if nt > 0.0:
        f = _logistic(eta_n - t_shift)  # 1 / (1 + exp(-psi/Vt - E_t/Vt) / g_t)
        n_t = nt * f
        dnt = nt * f * (1.0 - f) * inv_vt
    return n, dn, p, dp, nd_plus, dnd, n_t, dnt


@njit(**JIT_INLINE)
def charge_from_constants(psi, c):
    """rho [C m-3] and d rho/d psi [C m-3 V-1] at psi [V], constants from ``charge_constants``."""
    n, dn, p, dp, nd_plus, dnd, n_t, dnt = densities(psi, c)
    return Q_E * (p - n + nd_plus - c[7] - n_t), Q_E * (dp - dn + dnd - dnt)


@njit(**JIT)
def space_charge(psi, params):
    """Charge density rho [C m-3] and d rho / d psi [C m-3 V-1] at potential psi [V]."""
    return charge_from_constants(psi, charge_constants(params))


@njit(**JIT)
def interface_state_charge(psi0, band_gap, vt, d_it, cnl):
    """Cowley-Sze interface-state sheet charge Q_it [C m-2] and dQ_it/dpsi0 [F m-2].

    ``psi0`` [V] is the semiconductor potential at the interface, so E_F - E_V = psi0 + E_g.
    """
    if d_it == 0.0:
        return 0.0, 0.0
    e_f = psi0 + band_gap  # Fermi level above the valence-band edge [eV]
    # integral_a^b f dE = Vt [softplus((E_F - a)/Vt) - softplus((E_F - b)/Vt)]
    occ_low = vt * (_softplus(e_f / vt) - _softplus((e_f - cnl) / vt))
    occ_high = vt * (_softplus((e_f - cnl) / vt) - _softplus((e_f - band_gap) / vt))
    q_it = Q_E * d_it * ((cnl - occ_low) - occ_high)
    f_vb = _logistic(e_f / vt)  # occupation at E_V
    f_cb = _logistic((e_f - band_gap) / vt)  # occupation at E_C
    dq = -Q_E * d_it * (f_vb - f_cb)
    return q_it, dq


@njit(**JIT)
def neutral_potential(params):
    """Potential [V] at which the space charge vanishes (the neutral bulk), by bisection.

    rho(psi) decreases monotonically, so the root is unique when it exists.
    """
    lo = -params[P_EG] - 2.0
    hi = 2.0
    for _ in range(60):  # widen until the bracket holds the root
        if space_charge(lo, params)[0] < 0.0:
            lo -= 2.0
        elif space_charge(hi, params)[0] > 0.0:
            hi += 2.0
        else:
            break
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid == lo or mid == hi:
            break
        if space_charge(mid, params)[0] > 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@njit(**JIT)
def _assemble_rows(first, last, psi, conductance, volume, params, lower, diag, upper, residual):
    c = charge_constants(params)
    n = psi.size
    # the boundary rows have one neighbour; the loop over interior rows has no branches
    if first == 0:
        rho, drho = charge_from_constants(psi[0], c)
        g = conductance[0]
        residual[0] = rho * volume[0] + g * (psi[1] - psi[0])
        diag[0] = drho * volume[0] - g
        upper[0] = g
        lower[0] = 0.0
    if last == n:
        i = n - 1
        rho, drho = charge_from_constants(psi[i], c)
        g = conductance[i - 1]
        residual[i] = rho * volume[i] - g * (psi[i] - psi[i - 1])
        diag[i] = drho * volume[i] - g
        lower[i] = g
        upper[i] = 0.0
    for i in range(max(first, 1), min(last, n - 1)):
        rho, drho = charge_from_constants(psi[i], c)
        g_left = conductance[i - 1]
        g_right = conductance[i]
        residual[i] = rho * volume[i] + g_right * (psi[i + 1] - psi[i]) - g_left * (psi[i] - psi[i - 1])
        diag[i] = drho * volume[i] - g_left - g_right
        lower[i] = g_left
        upper[i] = g_right


@njit(**JIT)
def assemble_serial(psi, conductance, volume, params, lower, diag, upper, residual):
    """Residual R(psi) and its tridiagonal Jacobian for the bulk rows (serial)."""
    _assemble_rows(0, psi.size, psi, conductance, volume, params, lower, diag, upper, residual)


@njit(**JIT_PARALLEL)
def assemble_parallel(psi, conductance, volume, params, lower, diag, upper, residual):
    """Residual R(psi) and its tridiagonal Jacobian, parallel over fixed chunks of rows."""
    n = psi.size
    n_chunks = 64
    chunk = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        first = c * chunk
        last = min(n, first + chunk)
        if first < last:
            _assemble_rows(first, last, psi, conductance, volume, params, lower, diag, upper, residual)


@njit(**JIT)
def apply_contact(psi, conductance, volume, area0, params, bc_type, contact, lower, diag, upper,
                  residual):
    """Overwrite row 0 with the contact condition (Dirichlet or Cowley-Sze Robin)."""
    if bc_type == BC_DIRICHLET:
        residual[0] = contact[C_PSI] - psi[0]
        diag[0] = -1.0
        upper[0] = 0.0
        return
    q_it, dq = interface_state_charge(psi[0], params[P_EG], params[P_VT], contact[C_DIT],
                                      contact[C_CNL])
    c_layer = contact[C_LAYER]
    residual[0] += area0 * (c_layer * (contact[C_PSI] - psi[0]) + q_it)
    diag[0] += area0 * (-c_layer + dq)


@njit(**JIT)
def newton_solve(psi, conductance, volume, area0, params, bc_type, contact, tol, max_iter,
                 parallel, history):
    """Log-damped Newton iteration for the box-method Poisson problem, in place on ``psi``.

    Update components larger than V_t are limited logarithmically,
    ``d -> V_t sign(d) (1 + ln(|d|/V_t))`` (continuous and monotone; smaller components are taken
    whole), so a cold start cannot overshoot by many V_t while the quadratic convergence near
    the root is untouched. Converged when the update satisfies max|d psi| / V_t <= tol.

    Parameters
    ----------
    psi
        Initial guess, overwritten by the solution [V].
    conductance
        Face conductances eps A / h, length n - 1 [F] (per steradian in radial geometry).
    volume
        Dual-cell volumes, length n [m3].
    area0
        Contact area (per steradian in radial geometry) [m2].
    params, bc_type, contact
        Space-charge parameters, boundary type and contact vector (layouts above).
    tol, max_iter
        Convergence tolerance on max|d psi|/V_t, iteration limit.
    parallel
        Assemble in parallel (large meshes).
    history
        Output, shape (max_iter, 2): (update norm, Jacobi-scaled residual norm), both in V_t.

    Returns
    -------
    int
        Number of iterations done; negative when not converged (or a NaN appeared).
    """
    n = psi.size
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    residual = np.empty(n)
    delta = np.empty(n)
    work = np.empty(n)
    vt = params[P_VT]
    for it in range(max_iter):
        if parallel:
            assemble_parallel(psi, conductance, volume, params, lower, diag, upper, residual)
        else:
            assemble_serial(psi, conductance, volume, params, lower, diag, upper, residual)
        apply_contact(psi, conductance, volume, area0, params, bc_type, contact, lower, diag,
                      upper, residual)
        res_norm = 0.0
        for i in range(n):
            res_norm = max(res_norm, abs(residual[i] / diag[i]))
            residual[i] = -residual[i]
        solve_tridiagonal(lower, diag, upper, residual, delta, work)
        upd = 0.0
        total = 0.0  # max() skips NaN; a sum does not
        for i in range(n):
            d = delta[i]
            size = abs(d)
            upd = max(upd, size)
            total += size
            if size > vt:  # logarithmic limiting of large steps only
                d = math.copysign(vt * (1.0 + math.log(size / vt)), d)
            psi[i] += d
        history[it, 0] = upd / vt
        history[it, 1] = res_norm / vt
        if not math.isfinite(total):  # psi is spoilt; the caller discards it
            return -(it + 1)
        if upd <= tol * vt:
            return it + 1
    return -max_iter


@njit(**JIT)
def space_charge_profile(psi, params, rho_out, n_out, p_out, nd_out, nt_out):
    """Fill rho and the carrier densities for every node of ``psi``."""
    c = charge_constants(params)
    for i in range(psi.size):
        n, _, p, _, nd, _, nt, _ = densities(psi[i], c)
        n_out[i] = n
        p_out[i] = p
        nd_out[i] = nd
        nt_out[i] = nt
        rho_out[i] = Q_E * (p - n + nd - c[7] - nt)
