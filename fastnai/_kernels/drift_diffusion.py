"""Coupled Na+ / electron / Poisson residual, block Jacobian and Newton solve (SPEC 3.2).

Unknowns per node i (Newton variables), node 0 at the metal contact:

    z[i, 0] = psi        electrostatic potential [V], E_C = -q psi (energies in eV)
    z[i, 1] = ell        logit of the site fraction, theta = 1 / (1 + exp(-ell)), c = c_max theta
    z[i, 2] = phi        electron quasi-Fermi potential [V], E_Fn = -q phi

The logit keeps 0 < theta < 1 in every Newton iterate. The integrator's state y holds the
conserved densities instead (psi, c, e = n + n_t), so that its BDF combinations are of conserved
quantities and the Na inventory balances exactly.

Rows (box method; vol = dual-cell volume, G = eps A / h, A = face area; BDF convention of
:mod:`fastnai.transient`: ``M (alpha0 y + hist) = dt f``):

    Poisson   sum_faces G (psi_nb - psi_i) + vol rho_i                   = 0
              rho = q (c + N_D+ - N_A + p - n - n_t),  densities at (psi - phi)
    Na+       vol (alpha0 c_i + hist_c) + dt (A J_out - A J_in) + dt A_s j / q [i = s] = 0
    electrons vol (alpha0 e_i + hist_e) + dt (A F_out - A F_in)              = 0   (drift-diffusion)
              phi_i - V                                                      = 0   (quasi-equilibrium)

The contact node has psi_0 = V - Phi_B and phi_0 = V (Dirichlet); Na+ is blocked there (node
0's Na+ row has no flux but its face to node 1). The electrolyte node s = sc[S_SURFACE], the
reaction plane, carries the Butler-Volmer current j (anodic positive, A m-2) of neutral
insertion:

    eta = ell_s V_t + mu_s + psi_s        (Na+ electrochemical potential, electrolyte at 0)
    U_loc = phi_s - eta,  theta_eq = U^-1(U_loc),  i0 = i0_ref 2 sqrt(theta_eq (1 - theta_eq))
    j = i0 [exp((1 - alpha) eta / V_t) - exp(-alpha eta / V_t)]

Where the reaction plane lies (``setup.electrolyte_node``): the far node n - 1 in the
separated and core-shell geometries. In the co-located and sphere geometries the electrolyte
meets the electrode at the metal contact's surface; with the electrostatics on, s is the
first node at least one hop a from the contact (node 1 on the default mesh, whose first cell
is one hop), with them off node 0. Why not node 0: it is the metal/oxide junction plane, where
the metal pins psi and E_Fn. The ohmic contact's accumulation layer (E_F - E_C = -Phi_B =
1 eV for TiC on TiO2; psi falls by 1.3 V over the first hop) repels Na+ there: theta_0 = 5e-55
at 3 V (1e-28 in the bulk, 7e-33 at node 1), 3e-21 at 1 V (0.31 in the bulk), and node 0
trades Na+ with the particle only by hops to node 1. As the reaction node it was a 5e-55 reservoir whose
Butler-Volmer exchange exceeds that hopping exchange 5e22-fold at 3 V (1e10 at 1.5 V): at open
circuit, where j = 0 ties V to the reaction node, V's tie to the particle fell below round-off
and every rest (so every GITT relaxation) stopped within 0.1 s. Physically, Na+ leaving the
electrolyte lands on the oxide's first interstitial site, one hop below the surface, not in
the metal's junction plane: for a particle coated by its contact (sphere; the electrolyte
reaches the oxide where the coating is open) the 1-D model lumps the metal/oxide and
oxide/electrolyte planes into one surface, and the first site beneath it is the reaction
plane. Node 0 stays a blocked Na+ site that hops to node 1. Fixing the plane by depth rather
than by index keeps it in place under mesh.refinement or a finer mesh.min_spacing (pulse
voltages within 0.5 mV; node 1 of a 0.24 nm first cell is 9 mV off). A Stern layer in front of
node 0 would not help: it shifts eta but leaves the reaction on the node whose theta_0 the
contact's psi_0 fixes. With the electrostatics off there is no contact field, node 0 is an ordinary
site, and the closed forms (Cottrell, the blocking-wall series, Randles-Sevcik, GITT) keep
their surface at x = 0.

The excess chemical potential mu = -U0 + Omega (1 - 2 theta) - mu_e(theta) + eps_site makes the
neutral bulk reproduce U(theta) = U0 - V_t ln(theta/(1-theta)) - Omega (1 - 2 theta); mu_e(theta)
= E_Fn - E_C of the neutral bulk at theta, tabulated against ell with its derivative and read
by cubic Hermite interpolation. With electrostatics off, mu_e is left out: the
electrode is electroneutral everywhere and Na+ moves ambipolarly with its electrons; psi = V then
stands for the uniform inner potential (so that eta = V - U(theta) exactly).

Galvanostatic control adds V as one bordered unknown with the equation sum_p A_s,p j_p = I.

Speed (SPEC 5): ``assemble`` evaluates each node and face once, in one pass over the rows
(in fixed chunks on the Numba threads from PARALLEL_MIN_NODES nodes); the 3 x 3 block solve
works on registers (twisted, on two threads, for large meshes); Newton does not assemble its
converged state again (only the Butler-Volmer current is wanted there); the conversions
between state and unknowns run in parallel, and the electron level of a conserved density
takes a few Newton steps that land on the reference bisection's bits. No result depends on
the thread count. Below PARALLEL_MIN_NODES nodes every result is also, to the bit, that of a
node loop followed by a face loop, of the general block solver and of the bisections.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import poisson
from ._jit import JIT, JIT_INLINE, JIT_PARALLEL
from .hopping import hopping_flux, sg_flux

Q_E = 1.602176634e-19

# scalar parameters (the ``sc`` vector)
S_VT = 0  # thermal voltage [V]
S_CMAX = 1  # site density [m-3]
S_U0 = 2  # OCV parameter U0 [V]
S_OMEGA = 3  # regular-solution parameter Omega [eV]
S_HOP = 4  # hop distance a [m]
S_I0 = 5  # i0_ref [A m-2]
S_ALPHA = 6  # transfer coefficient
S_PHIB = 7  # contact barrier Phi_B = phi_m - chi [eV]
S_DN = 8  # electron diffusivity [m2 s-1]
S_ELECTRONS = 9  # 0 quasi-equilibrium, 1 drift-diffusion
S_SURFACE = 10  # index of the electrolyte node
S_AREA_S = 11  # electrolyte interface area [m2] (per steradian in spheres)
S_ELECTROSTATICS = 12  # 1 Poisson, 0 neutral (psi = 0)
S_TABLE_L0 = 13  # first ell of the mu_e table
S_TABLE_DL = 14  # spacing of the mu_e table
S_CONTACT = 15  # 1 metal contact at node 0 (Dirichlet psi), 0 none
N_SCALARS = 16

ELECTRONS_QUASI_EQUILIBRIUM = 0
ELECTRONS_DRIFT_DIFFUSION = 1


@njit(**JIT_INLINE)
def logistic(ell):
    """theta = 1 / (1 + exp(-ell)) without overflow."""
    if ell >= 0.0:
        return 1.0 / (1.0 + math.exp(-ell))
    e = math.exp(ell)
    return e / (1.0 + e)


@njit(**JIT_INLINE)
def table_value(table, l0, dl, ell):
    """Cubic Hermite interpolation of (value, derivative) columns of ``table`` at ``ell``;
    linear extrapolation with the end slope outside the grid. Returns (f, df/dell)."""
    m = table.shape[0]
    s = (ell - l0) / dl
    if s <= 0.0:
        return table[0, 0] + (ell - l0) * table[0, 1], table[0, 1]
    if s >= m - 1:
        return table[m - 1, 0] + (ell - l0 - (m - 1) * dl) * table[m - 1, 1], table[m - 1, 1]
    k = int(s)
    t = s - k
    f0 = table[k, 0]
    f1 = table[k + 1, 0]
    d0 = table[k, 1] * dl
    d1 = table[k + 1, 1] * dl
    t2 = t * t
    t3 = t2 * t
    h00 = 2.0 * t3 - 3.0 * t2 + 1.0
    h10 = t3 - 2.0 * t2 + t
    h01 = -2.0 * t3 + 3.0 * t2
    h11 = t3 - t2
    f = h00 * f0 + h10 * d0 + h01 * f1 + h11 * d1
    df = ((6.0 * t2 - 6.0 * t) * f0 + (3.0 * t2 - 4.0 * t + 1.0) * d0
          + (-6.0 * t2 + 6.0 * t) * f1 + (3.0 * t2 - 2.0 * t) * d1) / dl
    return f, df


@njit(**JIT)
def neutral_level(c_na, params):
    """E_Fn - E_C [eV] of the neutral bulk holding c_na Na+ per m3, and d/dc_na.

    Solves c_na + N_D+ - N_A + p - n - n_t = 0 for x = psi - phi by bisection then Newton.
    """
    consts = poisson.charge_constants(params)
    lo = -60.0
    hi = 60.0
    x = 0.0
    for _ in range(200):
        x = 0.5 * (lo + hi)
        rho, _ = poisson.charge_from_constants(x, consts)
        if rho + Q_E * c_na > 0.0:
            lo = x
        else:
            hi = x
        if hi - lo < 1e-13:
            break
    rho, drho = poisson.charge_from_constants(x, consts)
    return x, -Q_E / drho


@njit(**JIT)
def build_level_table(params, c_max, l0, dl, table):
    """Fill ``table[k] = (mu_e, d mu_e / d ell)`` at ell = l0 + k dl (the neutral-bulk electron
    chemical potential against the logit of the site fraction)."""
    for k in range(table.shape[0]):
        theta = logistic(l0 + k * dl)
        x, dx_dc = neutral_level(c_max * theta, params)
        table[k, 0] = x
        table[k, 1] = dx_dc * c_max * theta * (1.0 - theta)


@njit(**JIT_INLINE)
def ocv(ell, sc):
    """U(theta) [V] and dU/d ell of the regular-solution open-circuit curve."""
    theta = logistic(ell)
    vt = sc[S_VT]
    return (sc[S_U0] - vt * ell - sc[S_OMEGA] * (1.0 - 2.0 * theta),
            -vt + 2.0 * sc[S_OMEGA] * theta * (1.0 - theta))


@njit(**JIT)
def ocv_inverse(u, sc, guess):
    """ell with U(ell) = u (U is strictly decreasing when Omega < 2 kT), Newton from ``guess``
    safeguarded by bisection on [-745, 745]."""
    lo = -745.0
    hi = 745.0
    ell = min(max(guess, lo), hi)
    for _ in range(100):
        f, df = ocv(ell, sc)
        f -= u
        if f > 0.0:
            lo = ell  # U too high: more sodium
        else:
            hi = ell
        step = -f / df
        trial = ell + step
        if not (lo < trial < hi):
            trial = 0.5 * (lo + hi)
        if abs(trial - ell) < 1e-13 * max(1.0, abs(ell)):
            return trial
        ell = trial
    return ell


@njit(**JIT_INLINE)
def chemical(ell, region, sc, tables, site_energy):
    """Excess chemical potential plus site energy mu [eV] and d mu / d ell at one node."""
    theta = logistic(ell)
    mu = -sc[S_U0] + sc[S_OMEGA] * (1.0 - 2.0 * theta) + site_energy
    dmu = -2.0 * sc[S_OMEGA] * theta * (1.0 - theta)
    if sc[S_ELECTROSTATICS] != 0.0:
        f, df = table_value(tables[region], sc[S_TABLE_L0], sc[S_TABLE_DL], ell)
        mu -= f
        dmu -= df
    return mu, dmu


@njit(**JIT_INLINE)
def butler_volmer(psi, ell, phi, mu, dmu, sc):
    """Anodic current density j [A m-2] at the electrolyte node and dj/d(psi, ell, phi)."""
    vt = sc[S_VT]
    alpha = sc[S_ALPHA]
    eta = vt * ell + mu + psi
    u_loc = phi - eta
    ell_eq = ocv_inverse(u_loc, sc, ell)
    theta_eq = logistic(ell_eq)
    s = math.sqrt(theta_eq * (1.0 - theta_eq))
    i0 = 2.0 * sc[S_I0] * s
    _, du_dl = ocv(ell_eq, sc)
    di0_du = sc[S_I0] * (1.0 - 2.0 * theta_eq) * s / du_dl
    ea = math.exp((1.0 - alpha) * eta / vt)
    ec = math.exp(-alpha * eta / vt)
    bracket = ea - ec
    j = i0 * bracket
    dj_deta = i0 * ((1.0 - alpha) * ea + alpha * ec) / vt
    dj_du = di0_du * bracket
    deta_dl = vt + dmu
    # d eta: (1, deta_dl, 0); d u_loc = (-1, -deta_dl, 1)
    return (j, dj_deta - dj_du, (dj_deta - dj_du) * deta_dl, dj_du)


@njit(**JIT_INLINE)
def _node(z, i, consts, reg, sc, tables, site_energy):
    """Per-node quantities: c, dc/dell, e = n + n_t and its derivative (w.r.t. psi - phi), rho and
    its derivatives, mu, dmu, n, dn; ``consts`` = ``poisson.charge_constants`` of region
    ``reg``, the node's."""
    psi = z[i, 0]
    ell = z[i, 1]
    phi = z[i, 2]
    theta = logistic(ell)
    c_max = sc[S_CMAX]
    c = c_max * theta
    dc = c * (1.0 - theta)
    n, dn, p, dp, nd, dnd, nt, dnt = poisson.densities(psi - phi, consts)
    e = n + nt
    de = dn + dnt
    rho = Q_E * (c + nd - consts[7] + p - n - nt)
    drho_x = Q_E * (dnd + dp - dn - dnt)
    mu, dmu = chemical(ell, reg, sc, tables, site_energy[i])
    return c, dc, e, de, rho, drho_x, mu, dmu, n, dn


@njit(**JIT_INLINE)
def _dirichlet_row(i, r, residual, lower, diag, upper, res, bcol):
    """Replace scalar row r of node i by ``unknown_r - value(V) = residual``."""
    for q in range(3):
        lower[i, r, q] = 0.0
        diag[i, r, q] = 0.0
        upper[i, r, q] = 0.0
    diag[i, r, r] = 1.0
    res[i, r] = residual
    bcol[i, r] = -1.0


#: The parallel twins of the per-node kernels split the nodes into N_CHUNKS fixed chunks of
#: ceil(n / N_CHUNKS); a row is computed by its own chunk alone (a chunk's boundary face by both
#: neighbours, identically), so the result does not depend on the thread count.
N_CHUNKS = 64
#: Meshes from this many nodes use the parallel twins (and the twisted block solve). A node
#: costs 0.05-0.15 us here (several exponentials, a cubic table look-up, a 3 x 3 block
#: elimination), some hundred times a triad element, so the crossover sits far below
#: ``_jit.PARALLEL_MIN_SIZE``: on 2 cores the twins win from about 1e3 nodes (1.1-1.6x there,
#: 1.7-2.2x at 1e4); twice that leaves room for a loaded machine.
PARALLEL_MIN_NODES = 2_000


@njit(**JIT_INLINE)
def _face(z, i, qi, qj, dt, area, h, d0_face, vt, a_hop, c_max, d_n, dd):
    """Na+ and electron terms of face i -> j = i + 1 from the node quantities ``qi``, ``qj``
    (tuples of ``_node``): (fl, dpsi_i, dl_i, dl_j, fe, dpsi_ei, dphi_i, dpsi_ej, dphi_j)."""
    j = i + 1
    c_i, dc_i, _, _, _, _, mu_i, dmu_i, n_i, dn_i = qi
    c_j, dc_j, _, _, _, _, mu_j, dmu_j, n_j, dn_j = qj
    # Na+ hopping flux i -> j
    u = (z[i, 0] - z[j, 0] + mu_i - mu_j) / vt
    flux, d_u, d_ci, d_cj = hopping_flux(u, h[i], a_hop, d0_face[i], c_i, c_j, c_max)
    w = dt * area[i]
    fl = w * flux
    dpsi_i = w * d_u / vt
    dl_i = w * (d_u * dmu_i / vt + d_ci * dc_i)
    dl_j = w * (-d_u * dmu_j / vt + d_cj * dc_j)
    fe = 0.0
    dpsi_ei = 0.0
    dphi_i = 0.0
    dpsi_ej = 0.0
    dphi_j = 0.0
    if dd:
        # Scharfetter-Gummel: w = (phi_j - phi_i)/V_t + ln(n_j/n_i) (degenerate correction)
        ww = (z[j, 2] - z[i, 2]) / vt + math.log(n_j / n_i)
        fe, dfw, dfni, dfnj = sg_flux(ww, n_i, n_j, d_n / h[i])
        # n_i depends on x_i = psi_i - phi_i with dn_i/dx_i = dn_i
        dw_dxi = -dn_i / n_i
        dw_dxj = dn_j / n_j
        dxi = w * (dfni * dn_i + dfw * dw_dxi)
        dxj = w * (dfnj * dn_j + dfw * dw_dxj)
        dphi_i = w * (-dfw / vt) - dxi
        dphi_j = w * (dfw / vt) - dxj
        dpsi_ei = dxi
        dpsi_ej = dxj
        fe *= w
    return fl, dpsi_i, dl_i, dl_j, fe, dpsi_ei, dphi_i, dpsi_ej, dphi_j


@njit(**JIT)
def _assemble_rows(first, last, z, v_applied, alpha0, hist, dt, vol, area, h, g_face, d0_face,
                   site_energy, region, params, tables, sc, lower, diag, upper, res, bcol, brow):
    """Rows first..last-1 of :func:`assemble` (all but the electrolyte and contact terms).

    One pass: node i is evaluated once and face i-1 -> i once (the faces into first and out of
    last - 1 also by the neighbouring chunks). Every entry receives its terms in the order
    node, face (i-1, i), face (i, i+1), as in a node loop followed by a face loop.
    """
    n = z.shape[0]
    vt = sc[S_VT]
    c_max = sc[S_CMAX]
    a_hop = sc[S_HOP]
    dd = sc[S_ELECTRONS] == ELECTRONS_DRIFT_DIFFUSION
    electrostatic = sc[S_ELECTROSTATICS] != 0.0
    d_n = sc[S_DN]
    # the charge law's constants (two logarithms) change only with the region
    reg = region[max(first - 1, 0)]
    consts = poisson.charge_constants(params[reg])
    prev = _node(z, max(first - 1, 0), consts, reg, sc, tables, site_energy)
    for i in range(first, last):
        if region[i] != reg:
            reg = region[i]
            consts = poisson.charge_constants(params[reg])
        cur = _node(z, i, consts, reg, sc, tables, site_energy)
        c, dc, e, de, rho, drho_x, mu, dmu, nn, dnn = cur
        for r in range(3):
            res[i, r] = 0.0
            bcol[i, r] = 0.0
            brow[i, r] = 0.0
            for q in range(3):
                lower[i, r, q] = 0.0
                diag[i, r, q] = 0.0
                upper[i, r, q] = 0.0
        # node terms
        if electrostatic:
            res[i, 0] += vol[i] * rho
            diag[i, 0, 0] += vol[i] * drho_x
            diag[i, 0, 1] += vol[i] * Q_E * dc
            diag[i, 0, 2] -= vol[i] * drho_x
        res[i, 1] += vol[i] * (alpha0 * c + hist[i, 1])
        diag[i, 1, 1] += vol[i] * alpha0 * dc
        if dd:
            res[i, 2] += vol[i] * (alpha0 * e + hist[i, 2])
            diag[i, 2, 0] += vol[i] * alpha0 * de
            diag[i, 2, 2] -= vol[i] * alpha0 * de
        if i > 0:
            _add_face(i - 1, i - 1 >= first, True, z, prev, cur, dt, area, h, g_face, d0_face,
                      vt, a_hop, c_max, d_n, dd, electrostatic, lower, diag, upper, res)
        # rows that are Dirichlet at every node (no other term reaches them)
        if not electrostatic:
            _dirichlet_row(i, 0, z[i, 0] - v_applied, lower, diag, upper, res, bcol)
        if not dd:
            _dirichlet_row(i, 2, z[i, 2] - v_applied, lower, diag, upper, res, bcol)
        prev = cur
    if last < n:
        reg = region[last]
        nxt = _node(z, last, poisson.charge_constants(params[reg]), reg, sc, tables,
                    site_energy)
        _add_face(last - 1, True, False, z, prev, nxt, dt, area, h, g_face, d0_face, vt, a_hop,
                  c_max, d_n, dd, electrostatic, lower, diag, upper, res)


@njit(**JIT_INLINE)
def _add_face(i, to_i, to_j, z, qi, qj, dt, area, h, g_face, d0_face, vt, a_hop, c_max, d_n, dd,
              electrostatic, lower, diag, upper, res):
    """Add face i -> j = i + 1 to row i (``to_i``) and row j (``to_j``)."""
    j = i + 1
    fl, dpsi_i, dl_i, dl_j, fe, dpsi_ei, dphi_i, dpsi_ej, dphi_j = _face(
        z, i, qi, qj, dt, area, h, d0_face, vt, a_hop, c_max, d_n, dd)
    g = g_face[i]
    if to_i:
        if electrostatic:
            res[i, 0] += g * (z[j, 0] - z[i, 0])
            diag[i, 0, 0] -= g
            upper[i, 0, 0] += g
        res[i, 1] += fl
        diag[i, 1, 0] += dpsi_i
        upper[i, 1, 0] -= dpsi_i
        diag[i, 1, 1] += dl_i
        upper[i, 1, 1] += dl_j
        if dd:
            res[i, 2] += fe
            diag[i, 2, 0] += dpsi_ei
            diag[i, 2, 2] += dphi_i
            upper[i, 2, 0] += dpsi_ej
            upper[i, 2, 2] += dphi_j
    if to_j:
        if electrostatic:
            res[j, 0] += g * (z[i, 0] - z[j, 0])
            diag[j, 0, 0] -= g
            lower[j, 0, 0] += g
        res[j, 1] -= fl
        lower[j, 1, 0] -= dpsi_i
        diag[j, 1, 0] += dpsi_i
        lower[j, 1, 1] -= dl_i
        diag[j, 1, 1] -= dl_j
        if dd:
            res[j, 2] -= fe
            lower[j, 2, 0] -= dpsi_ei
            lower[j, 2, 2] -= dphi_i
            diag[j, 2, 0] -= dpsi_ej
            diag[j, 2, 2] -= dphi_j


@njit(**JIT_INLINE)
def _surface_flow(z, region, sc, tables, site_energy):
    """A_s j at the electrolyte node and dj/d(psi, ell, phi) there."""
    s_node = int(sc[S_SURFACE])
    mu_s, dmu_s = chemical(z[s_node, 1], region[s_node], sc, tables, site_energy[s_node])
    j_bv, dj_psi, dj_ell, dj_phi = butler_volmer(z[s_node, 0], z[s_node, 1], z[s_node, 2], mu_s,
                                                 dmu_s, sc)
    return sc[S_AREA_S] * j_bv, j_bv, dj_psi, dj_ell, dj_phi


@njit(**JIT)
def surface_flow(z, region, sc, tables, site_energy):
    """A_s j [A per m2 of slab or per steradian] at the unknowns ``z``: what :func:`assemble`
    returns, without assembling."""
    return _surface_flow(z, region, sc, tables, site_energy)[0]


@njit(**JIT)
def _assemble_boundaries(z, v_applied, galvanostatic, dt, region, tables, sc, site_energy, lower,
                         diag, upper, res, bcol, brow):
    """The electrolyte (Butler-Volmer) and contact terms of :func:`assemble`; returns A_s j."""
    electrostatic = sc[S_ELECTROSTATICS] != 0.0
    dd = sc[S_ELECTRONS] == ELECTRONS_DRIFT_DIFFUSION
    s_node = int(sc[S_SURFACE])
    flow, j_bv, dj_psi, dj_ell, dj_phi = _surface_flow(z, region, sc, tables, site_energy)
    a_s = sc[S_AREA_S]
    w = dt * a_s / Q_E
    res[s_node, 1] += w * j_bv
    diag[s_node, 1, 0] += w * dj_psi
    diag[s_node, 1, 1] += w * dj_ell
    diag[s_node, 1, 2] += w * dj_phi
    if galvanostatic:
        brow[s_node, 0] = a_s * dj_psi
        brow[s_node, 1] = a_s * dj_ell
        brow[s_node, 2] = a_s * dj_phi
    # Dirichlet rows at the contact (unknown - value = 0; the border column carries d/dV = -1)
    if electrostatic and sc[S_CONTACT] != 0.0:
        _dirichlet_row(0, 0, z[0, 0] - (v_applied - sc[S_PHIB]), lower, diag, upper, res, bcol)
    if dd:
        _dirichlet_row(0, 2, z[0, 2] - v_applied, lower, diag, upper, res, bcol)
    return flow


@njit(**JIT)
def assemble_serial(z, v_applied, galvanostatic, alpha0, hist, dt, vol, area, h, g_face, d0_face,
                    site_energy, region, params, tables, sc, lower, diag, upper, res, bcol,
                    brow):
    """:func:`assemble` in one thread (the ensemble's particles call it in parallel)."""
    _assemble_rows(0, z.shape[0], z, v_applied, alpha0, hist, dt, vol, area, h, g_face,
                   d0_face, site_energy, region, params, tables, sc, lower, diag, upper, res,
                   bcol, brow)
    return _assemble_boundaries(z, v_applied, galvanostatic, dt, region, tables, sc,
                                site_energy, lower, diag, upper, res, bcol, brow)


@njit(**JIT_PARALLEL)
def assemble_parallel(z, v_applied, galvanostatic, alpha0, hist, dt, vol, area, h, g_face,
                      d0_face, site_energy, region, params, tables, sc, lower, diag, upper, res,
                      bcol, brow):
    """:func:`assemble`, parallel over N_CHUNKS fixed chunks of rows (bit for bit the
    serial result, whatever the thread count)."""
    n = z.shape[0]
    chunk = (n + N_CHUNKS - 1) // N_CHUNKS
    for k in prange(N_CHUNKS):
        first = k * chunk
        last = min(n, first + chunk)
        if first < last:
            _assemble_rows(first, last, z, v_applied, alpha0, hist, dt, vol, area, h, g_face,
                           d0_face, site_energy, region, params, tables, sc, lower, diag, upper,
                           res, bcol, brow)
    return _assemble_boundaries(z, v_applied, galvanostatic, dt, region, tables, sc,
                                site_energy, lower, diag, upper, res, bcol, brow)


@njit(**JIT)
def assemble(z, v_applied, galvanostatic, alpha0, hist, dt, vol, area, h, g_face, d0_face,
             site_energy, region, params, tables, sc, lower, diag, upper, res, bcol, brow):
    """Residual and block-tridiagonal Jacobian of one domain at the Newton iterate ``z``.

    Parameters
    ----------
    z
        Newton unknowns (psi, ell, phi), shape (n, 3).
    v_applied
        Electrode voltage V [V] (the current iterate of the bordered unknown when
        galvanostatic).
    galvanostatic
        Fill the border column dR/dV and row dj/dz.
    alpha0, hist, dt
        BDF coefficient, history (of c and e, in columns 1 and 2 of ``hist``, shape (n, 3)) and
        step; alpha0 = 0 and dt = 1 give the steady state.
    vol, area, h, g_face, d0_face
        Dual-cell volumes (n), face areas (n-1), node spacings (n-1), eps A/h (n-1), D0 (n-1).
    site_energy, region, params, tables, sc
        Per-node site energy [eV] and region index; per-region charge-law parameters and mu_e
        tables; scalars (S_* indices).
    lower, diag, upper, res, bcol, brow
        Outputs: blocks (n, 3, 3), residual (n, 3), border column dR/dV (n, 3) and border row
        d(A_s j)/dz (n, 3).

    Returns
    -------
    float
        A_s j, the anodic current through the electrolyte interface [A] (per steradian in
        spheres; per m2 of slab).

    Notes
    -----
    Meshes of PARALLEL_MIN_NODES nodes or more are assembled in parallel
    (:func:`assemble_parallel`), with the same result to the bit.
    """
    if z.shape[0] >= PARALLEL_MIN_NODES:
        return assemble_parallel(z, v_applied, galvanostatic, alpha0, hist, dt, vol, area, h,
                                 g_face, d0_face, site_energy, region, params, tables, sc, lower,
                                 diag, upper, res, bcol, brow)
    return assemble_serial(z, v_applied, galvanostatic, alpha0, hist, dt, vol, area, h, g_face,
                           d0_face, site_energy, region, params, tables, sc, lower, diag, upper,
                           res, bcol, brow)


# ---------------------------------------------------------------------------------------------
# block-tridiagonal solve, 3 x 3 blocks
#
# ``block_tridiagonal.solve_block_tridiagonal`` for k = 3 with one or two right-hand sides,
# the same arithmetic in the same order (bit for bit its result), written on scalars so that
# a block row lives in registers: the general kernel's k x k scratch arrays go through memory.
# Large systems are split in two halves eliminated towards the middle, one per thread.


@njit(**JIT_INLINE)
def _scaled_row(prev_blk, diag, next_blk, ra, rb, two, i, r, has_prev, has_next, z_prev, x_prev):
    """Scalar row r of block row i, scaled by its largest coefficient, with the previously
    eliminated neighbour (coupling ``prev_blk``) eliminated: the row of the pivot system
    (3 matrix entries, the 3 of ``next_blk`` times the scale, the 2 right-hand sides)."""
    big = 0.0
    for c in range(3):
        big = max(big, abs(diag[i, r, c]))
        if has_prev:
            big = max(big, abs(prev_blk[i, r, c]))
        if has_next:
            big = max(big, abs(next_blk[i, r, c]))
    scale = 1.0 / big if big > 0.0 else 1.0
    d0 = diag[i, r, 0]
    d1 = diag[i, r, 1]
    d2 = diag[i, r, 2]
    a = ra[i, r]
    b = rb[i, r] if two else 0.0
    if has_prev:
        l0 = prev_blk[i, r, 0]
        l1 = prev_blk[i, r, 1]
        l2 = prev_blk[i, r, 2]
        z00, z01, z02, z10, z11, z12, z20, z21, z22 = z_prev
        xa0, xa1, xa2, xb0, xb1, xb2 = x_prev
        d0 -= l0 * z00
        d0 -= l1 * z10
        d0 -= l2 * z20
        d1 -= l0 * z01
        d1 -= l1 * z11
        d1 -= l2 * z21
        d2 -= l0 * z02
        d2 -= l1 * z12
        d2 -= l2 * z22
        a -= l0 * xa0
        a -= l1 * xa1
        a -= l2 * xa2
        if two:
            b -= l0 * xb0
            b -= l1 * xb1
            b -= l2 * xb2
    if has_next:
        u0 = next_blk[i, r, 0] * scale
        u1 = next_blk[i, r, 1] * scale
        u2 = next_blk[i, r, 2] * scale
    else:
        u0 = 0.0
        u1 = 0.0
        u2 = 0.0
    return (d0 * scale, d1 * scale, d2 * scale, u0, u1, u2, a * scale, b * scale)


@njit(**JIT_INLINE)
def _eliminate(row, piv, col, two):
    """row -= (row[col] / piv[col]) piv on the columns right of col (``_lu_solve_inplace``)."""
    f = row[col] * (1.0 / piv[col])
    if f == 0.0:
        return row
    m1 = row[1] - f * piv[1] if col < 1 else row[1]
    m2 = row[2] - f * piv[2]
    b = row[7] - f * piv[7] if two else row[7]
    return (row[0], m1, m2, row[3] - f * piv[3], row[4] - f * piv[4], row[5] - f * piv[5],
            row[6] - f * piv[6], b)


@njit(**JIT_INLINE)
def _pivot_solve(r0, r1, r2, two):
    """Solve the 3 x 3 pivot system (rows: 3 matrix entries, then the 5 right-hand sides) by
    Gaussian elimination with partial pivoting; returns the 5 solution columns' rows."""
    # column 0
    piv = 0
    best = abs(r0[0])
    if abs(r1[0]) > best:
        best = abs(r1[0])
        piv = 1
    if abs(r2[0]) > best:
        piv = 2
    if piv == 1:
        r0, r1 = r1, r0
    elif piv == 2:
        r0, r2 = r2, r0
    r1 = _eliminate(r1, r0, 0, two)
    r2 = _eliminate(r2, r0, 0, two)
    # column 1
    if abs(r2[1]) > abs(r1[1]):
        r1, r2 = r2, r1
    r2 = _eliminate(r2, r1, 1, two)
    # back substitution
    inv2 = 1.0 / r2[2]
    inv1 = 1.0 / r1[1]
    inv0 = 1.0 / r0[0]
    s2 = (r2[3] * inv2, r2[4] * inv2, r2[5] * inv2, r2[6] * inv2, r2[7] * inv2)
    s1 = ((r1[3] - r1[2] * s2[0]) * inv1, (r1[4] - r1[2] * s2[1]) * inv1,
          (r1[5] - r1[2] * s2[2]) * inv1, (r1[6] - r1[2] * s2[3]) * inv1,
          (r1[7] - r1[2] * s2[4]) * inv1)
    s0 = ((r0[3] - r0[1] * s1[0] - r0[2] * s2[0]) * inv0,
          (r0[4] - r0[1] * s1[1] - r0[2] * s2[1]) * inv0,
          (r0[5] - r0[1] * s1[2] - r0[2] * s2[2]) * inv0,
          (r0[6] - r0[1] * s1[3] - r0[2] * s2[3]) * inv0,
          (r0[7] - r0[1] * s1[4] - r0[2] * s2[4]) * inv0)
    return s0, s1, s2


@njit(**JIT)
def _sweep(prev_blk, diag, next_blk, ra, rb, two, xa, xb, work_blocks, start, stop, step):
    """Block elimination over rows start, start + step, ... (not stop): row i couples to the
    row before it through ``prev_blk`` and to the row after through ``next_blk``.
    ``work_blocks[i]`` receives D_i^-1 next_i and ``xa[i]`` (``xb[i]``) the reduced right-hand
    sides. Returns the last row's (D^-1 next, reduced right-hand sides) as tuples."""
    n = diag.shape[0]
    z_prev = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    x_prev = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(start, stop, step):
        has_prev = i != start
        has_next = 0 <= i + step < n
        r0 = _scaled_row(prev_blk, diag, next_blk, ra, rb, two, i, 0, has_prev, has_next, z_prev,
                         x_prev)
        r1 = _scaled_row(prev_blk, diag, next_blk, ra, rb, two, i, 1, has_prev, has_next, z_prev,
                         x_prev)
        r2 = _scaled_row(prev_blk, diag, next_blk, ra, rb, two, i, 2, has_prev, has_next, z_prev,
                         x_prev)
        s0, s1, s2 = _pivot_solve(r0, r1, r2, two)
        z_prev = (s0[0], s0[1], s0[2], s1[0], s1[1], s1[2], s2[0], s2[1], s2[2])
        x_prev = (s0[3], s1[3], s2[3], s0[4], s1[4], s2[4])
        for r in range(3):
            for c in range(3):
                work_blocks[i, r, c] = z_prev[3 * r + c]
            xa[i, r] = x_prev[r]
            if two:
                xb[i, r] = x_prev[3 + r]
    return z_prev, x_prev


@njit(**JIT)
def _substitute(xa, xb, two, work_blocks, start, stop, step, x_prev):
    """Back substitution x_i -= work_blocks[i] x_(i - step) for i = start, start + step, ...
    (not stop), from the known x_(start - step) = ``x_prev``."""
    for i in range(start, stop, step):
        a0 = xa[i, 0] - work_blocks[i, 0, 0] * x_prev[0] - work_blocks[i, 0, 1] * x_prev[1] \
            - work_blocks[i, 0, 2] * x_prev[2]
        a1 = xa[i, 1] - work_blocks[i, 1, 0] * x_prev[0] - work_blocks[i, 1, 1] * x_prev[1] \
            - work_blocks[i, 1, 2] * x_prev[2]
        a2 = xa[i, 2] - work_blocks[i, 2, 0] * x_prev[0] - work_blocks[i, 2, 1] * x_prev[1] \
            - work_blocks[i, 2, 2] * x_prev[2]
        b0 = 0.0
        b1 = 0.0
        b2 = 0.0
        if two:
            b0 = xb[i, 0] - work_blocks[i, 0, 0] * x_prev[3] - work_blocks[i, 0, 1] * x_prev[4] \
                - work_blocks[i, 0, 2] * x_prev[5]
            b1 = xb[i, 1] - work_blocks[i, 1, 0] * x_prev[3] - work_blocks[i, 1, 1] * x_prev[4] \
                - work_blocks[i, 1, 2] * x_prev[5]
            b2 = xb[i, 2] - work_blocks[i, 2, 0] * x_prev[3] - work_blocks[i, 2, 1] * x_prev[4] \
                - work_blocks[i, 2, 2] * x_prev[5]
            xb[i, 0] = b0
            xb[i, 1] = b1
            xb[i, 2] = b2
        xa[i, 0] = a0
        xa[i, 1] = a1
        xa[i, 2] = a2
        x_prev = (a0, a1, a2, b0, b1, b2)


@njit(**JIT)
def solve_block3_serial(lower, diag, upper, ra, rb, two, xa, xb, work_blocks):
    """:func:`solve_block3` in one sweep, bit for bit ``solve_block_tridiagonal``."""
    n = diag.shape[0]
    _, x_last = _sweep(lower, diag, upper, ra, rb, two, xa, xb, work_blocks, 0, n, 1)
    _substitute(xa, xb, two, work_blocks, n - 2, -1, -1, x_last)


@njit(**JIT_INLINE)
def _middle(lower, diag, upper, ra, rb, two, m, r, up, x_up, down, x_down):
    """Scalar row r of the middle block row m of the twisted elimination, scaled by its largest
    coefficient, with both eliminated neighbours (D^-1 couplings ``up``, ``down`` and reduced
    right-hand sides ``x_up``, ``x_down``) eliminated."""
    big = 0.0
    for c in range(3):
        big = max(big, abs(diag[m, r, c]))
        big = max(big, abs(lower[m, r, c]))
        big = max(big, abs(upper[m, r, c]))
    scale = 1.0 / big if big > 0.0 else 1.0
    d = [0.0, 0.0, 0.0]
    for c in range(3):
        acc = diag[m, r, c]
        for j in range(3):
            acc -= lower[m, r, j] * up[3 * j + c]
        for j in range(3):
            acc -= upper[m, r, j] * down[3 * j + c]
        d[c] = acc * scale
    a = ra[m, r]
    b = rb[m, r] if two else 0.0
    for j in range(3):
        a -= lower[m, r, j] * x_up[j]
        b -= lower[m, r, j] * x_up[3 + j]
    for j in range(3):
        a -= upper[m, r, j] * x_down[j]
        b -= upper[m, r, j] * x_down[3 + j]
    return (d[0], d[1], d[2], 0.0, 0.0, 0.0, a * scale, b * scale)


@njit(**JIT)
def _solve_middle(lower, diag, upper, ra, rb, two, xa, xb, work_blocks, m):
    """x_m of the twisted elimination, into ``xa[m]`` (``xb[m]``) and returned (6-tuple)."""
    # the middle row: both neighbours eliminated (their D^-1 couplings and reduced sides)
    up = (work_blocks[m - 1, 0, 0], work_blocks[m - 1, 0, 1], work_blocks[m - 1, 0, 2],
          work_blocks[m - 1, 1, 0], work_blocks[m - 1, 1, 1], work_blocks[m - 1, 1, 2],
          work_blocks[m - 1, 2, 0], work_blocks[m - 1, 2, 1], work_blocks[m - 1, 2, 2])
    down = (work_blocks[m + 1, 0, 0], work_blocks[m + 1, 0, 1], work_blocks[m + 1, 0, 2],
            work_blocks[m + 1, 1, 0], work_blocks[m + 1, 1, 1], work_blocks[m + 1, 1, 2],
            work_blocks[m + 1, 2, 0], work_blocks[m + 1, 2, 1], work_blocks[m + 1, 2, 2])
    x_up = (xa[m - 1, 0], xa[m - 1, 1], xa[m - 1, 2], 0.0, 0.0, 0.0)
    x_down = (xa[m + 1, 0], xa[m + 1, 1], xa[m + 1, 2], 0.0, 0.0, 0.0)
    if two:
        x_up = (xa[m - 1, 0], xa[m - 1, 1], xa[m - 1, 2], xb[m - 1, 0], xb[m - 1, 1],
                xb[m - 1, 2])
        x_down = (xa[m + 1, 0], xa[m + 1, 1], xa[m + 1, 2], xb[m + 1, 0], xb[m + 1, 1],
                  xb[m + 1, 2])
    r0 = _middle(lower, diag, upper, ra, rb, two, m, 0, up, x_up, down, x_down)
    r1 = _middle(lower, diag, upper, ra, rb, two, m, 1, up, x_up, down, x_down)
    r2 = _middle(lower, diag, upper, ra, rb, two, m, 2, up, x_up, down, x_down)
    s0, s1, s2 = _pivot_solve(r0, r1, r2, two)
    x_mid = (s0[3], s1[3], s2[3], s0[4], s1[4], s2[4])
    xa[m, 0] = x_mid[0]
    xa[m, 1] = x_mid[1]
    xa[m, 2] = x_mid[2]
    if two:
        xb[m, 0] = x_mid[3]
        xb[m, 1] = x_mid[4]
        xb[m, 2] = x_mid[5]
    return x_mid


@njit(**JIT_PARALLEL)
def solve_block3_split(lower, diag, upper, ra, rb, two, xa, xb, work_blocks):
    """:func:`solve_block3` by twisted elimination: rows 0..m-1 downwards and rows n-1..m+1
    upwards at the same time (two threads), the middle row m = n // 2 from both reduced
    neighbours, then back substitution outwards. The same scaling and pivoting as the sweep;
    the result does not depend on the thread count. Needs n >= 3."""
    n = diag.shape[0]
    m = n // 2
    for half in prange(2):
        if half == 0:
            _sweep(lower, diag, upper, ra, rb, two, xa, xb, work_blocks, 0, m, 1)
        else:
            _sweep(upper, diag, lower, ra, rb, two, xa, xb, work_blocks, n - 1, m, -1)
    x_mid = _solve_middle(lower, diag, upper, ra, rb, two, xa, xb, work_blocks, m)
    for half in prange(2):
        if half == 0:
            _substitute(xa, xb, two, work_blocks, m - 1, -1, -1, x_mid)
        else:
            _substitute(xa, xb, two, work_blocks, m + 1, n, 1, x_mid)


@njit(**JIT)
def solve_block3(lower, diag, upper, ra, rb, two, xa, xb, work_blocks):
    """Solve the block-tridiagonal system with 3 x 3 blocks for ``ra`` (and ``rb`` when
    ``two``), shapes (n, 3), into ``xa`` (and ``xb``); ``work_blocks`` (n, 3, 3) scratch.

    Block Thomas elimination, each scalar row scaled by its largest coefficient, partial
    pivoting inside the 3 x 3 pivots. Below PARALLEL_MIN_NODES rows one sweep, bit for bit the
    result of ``block_tridiagonal.solve_block_tridiagonal``; from there the twisted elimination
    of :func:`solve_block3_split` (two threads; equal to round-off).
    """
    if diag.shape[0] >= PARALLEL_MIN_NODES:
        solve_block3_split(lower, diag, upper, ra, rb, two, xa, xb, work_blocks)
    else:
        solve_block3_serial(lower, diag, upper, ra, rb, two, xa, xb, work_blocks)


@njit(**JIT)
def solve_bordered3(lower, diag, upper, rhs, border_column, border_row, corner, rhs_corner, out,
                    work_blocks, work_two):
    """``block_tridiagonal.solve_bordered`` for 3 x 3 blocks (bit for bit); returns lambda.

    ``work_two`` (n, 3, 2) receives the solutions for the residual and the border column.
    """
    n = diag.shape[0]
    xa = work_two[:, :, 0]
    xb = work_two[:, :, 1]
    solve_block3(lower, diag, upper, rhs, border_column, True, xa, xb, work_blocks)
    dot_r = 0.0
    dot_b = 0.0
    for i in range(n):
        for r in range(3):
            dot_r += border_row[i, r] * xa[i, r]
            dot_b += border_row[i, r] * xb[i, r]
    lam = (rhs_corner - dot_r) / (corner - dot_b)
    for i in range(n):
        for r in range(3):
            out[i, r] = xa[i, r] - lam * xb[i, r]
    return lam


@njit(**JIT_INLINE)
def _limit(delta, scale, cap):
    """Newton update limiting: logarithmic beyond ``scale``, never beyond ``cap``.

    Exponential laws (Butler-Volmer, Boltzmann factors) linearised far from the solution ask for
    absurd steps; the cap makes the approach monotone instead of overshooting into overflow.
    """
    a = abs(delta)
    if a <= scale:
        return delta
    return math.copysign(min(scale * (1.0 + math.log(a / scale)), cap), delta)


# Newton update limits in the unknowns' natural units: potentials in V_t, ell in units of 1
LIMIT_POTENTIAL = 10.0
CAP_POTENTIAL = 40.0  # about 1 V per iteration
CAP_VOLTAGE = 8.0  # the bordered electrode voltage: about 0.2 V per iteration
LIMIT_ELL = 5.0
CAP_ELL = 15.0
ELL_BOUND = 700.0


@njit(**JIT_INLINE)
def _ell_step(ell, d):
    """The limited Newton step of the logit ``ell`` (``ell -= step``) for the update ``d``.

    A large step towards the middle from a dilute node (theta << 1, rising) or a nearly full
    one (1 - theta << 1, falling) is taken as Newton's step in theta: the balance laws are
    linear in c there and dtheta/d ell = theta (1 - theta) vanishes, so that the step in ell
    is the relative change of theta, exponentially too large (a node at theta ~ 1e-54 asked for
    3e38), while theta + dtheta/d ell |d| is Newton's landing in c. It is taken
    exactly, theta' = theta (1 + (1 - theta) |d|) (1 - theta' likewise on the full side), when it
    stays inside (0, 1); other steps are limited logarithmically and capped.
    """
    if d < -LIMIT_ELL and ell < 0.0:
        theta = logistic(ell)
        if theta * -d < 1.0:  # theta' = theta (1 + (1 - theta) |d|) < 1
            return -(math.log1p(-d * (1.0 - theta)) - math.log1p(theta * d))
    elif d > LIMIT_ELL and ell > 0.0:
        theta = logistic(ell)
        vacancy = logistic(-ell)
        if vacancy * d < 1.0:  # theta' = theta (1 - (1 - theta) d) > 0
            return math.log1p(d * theta) - math.log1p(-vacancy * d)
    return _limit(d, LIMIT_ELL, CAP_ELL)


@njit(**JIT)
def _apply_update(z, dz, vt):
    """z -= limited dz; returns the largest scaled update (|dpsi|/V_t, |dell|, |dphi|/V_t)."""
    n = z.shape[0]
    worst = 0.0
    for i in range(n):
        for r in range(3):
            scale = vt if r != 1 else 1.0
            if r == 1:
                step = _ell_step(z[i, 1], dz[i, 1])
            else:
                step = _limit(dz[i, r] / vt, LIMIT_POTENTIAL, CAP_POTENTIAL)
            z[i, r] -= step * scale
            if r == 1:  # keep theta and 1 - theta representable (nonzero Jacobian columns)
                z[i, 1] = min(max(z[i, 1], -ELL_BOUND), ELL_BOUND)
            if not abs(step) <= worst:  # NaN propagates
                worst = abs(step)
    return worst


@njit(**JIT)
def newton(z, voltage, galvanostatic, current, alpha0, hist, dt, vol, area, h, g_face, d0_face,
           site_energy, region, params, tables, sc, tol, max_iter, lower, diag, upper, res, bcol,
           brow, work_blocks, work_rhs, work_two, dz, out):
    """Newton iteration of one domain, in place on ``z`` (and the voltage when galvanostatic).

    Potentiostatic: ``voltage[0]`` is fixed. Galvanostatic: ``voltage[0]`` is the bordered
    unknown and the extra equation is A_s j = ``current`` [A per steradian or per m2].
    ``out[0]`` receives A_s j at the converged state (the system is not assembled there).

    Returns
    -------
    int
        Iterations used; negative when not converged (or non-finite).
    """
    vt = sc[S_VT]
    for it in range(1, max_iter + 1):
        flow = assemble(z, voltage[0], galvanostatic, alpha0, hist, dt, vol, area, h, g_face,
                        d0_face, site_energy, region, params, tables, sc, lower, diag, upper, res,
                        bcol, brow)
        out[0] = flow
        if galvanostatic:
            lam = solve_bordered3(lower, diag, upper, res, bcol, brow, 0.0, flow - current, dz,
                                  work_blocks, work_two)
            dv = _limit(lam / vt, LIMIT_POTENTIAL, CAP_VOLTAGE) * vt
            voltage[0] -= dv
            worst = max(_apply_update(z, dz, vt), abs(dv) / vt)
        else:
            solve_block3(lower, diag, upper, res, res, False, dz, dz, work_blocks)
            worst = _apply_update(z, dz, vt)
        if not math.isfinite(worst):
            return -it
        if worst < tol:
            out[0] = surface_flow(z, region, sc, tables, site_energy)
            return it
    return -max_iter


@njit(**JIT_PARALLEL)
def newton_ensemble(z, voltage, galvanostatic, current, alpha0, hist, dt, vol, area, h, g_face,
                    d0_face, site_energy, region, params, tables, sc, tol, max_iter, lower, diag,
                    upper, res, bcol, brow, work_blocks, work_rhs, work_two, dz, flows, dots):
    """Newton iteration of P particles sharing one voltage, parallel over particles.

    Every per-particle array has a leading particle axis; ``sc`` is (P, N_SCALARS) (the
    electrolyte area differs with the radius). Galvanostatic: sum_p A_s,p j_p = ``current``,
    the particles' Schur contributions summed in particle order (thread-count independent).
    ``flows[p]`` receives A_s,p j_p at the converged state.

    Each iteration is one parallel region: a particle applies the previous iteration's update,
    assembles at the new state and solves its block-tridiagonal system for the residual and
    the border column (the bordered elimination of
    :func:`~fastnai._kernels.block_tridiagonal.solve_ensemble_bordered`, same arithmetic);
    then one thread forms the voltage correction.

    Returns
    -------
    int
        Iterations used; negative when not converged.
    """
    n_p = z.shape[0]
    n = z.shape[1]
    vt = sc[0, S_VT]
    # potentiostatic: the border row is zero and corner = 1 gives lambda = 0
    corner = 0.0 if galvanostatic else 1.0
    worsts = np.empty(n_p)
    lam = 0.0
    dv = 0.0
    for it in range(max_iter + 1):
        for p in prange(n_p):
            if it > 0:
                for i in range(n):
                    for r in range(3):
                        dz[p, i, r] = work_two[p, i, r, 0] - lam * work_two[p, i, r, 1]
                worsts[p] = _apply_update(z[p], dz[p], vt)
            flows[p] = assemble_serial(z[p], voltage[0], galvanostatic, alpha0, hist[p], dt,
                                       vol[p], area[p], h[p], g_face[p], d0_face[p],
                                       site_energy[p], region[p], params, tables, sc[p],
                                       lower[p], diag[p], upper[p], res[p], bcol[p], brow[p])
            if it < max_iter:
                solve_block3_serial(lower[p], diag[p], upper[p], res[p], bcol[p], True,
                                    work_two[p, :, :, 0], work_two[p, :, :, 1], work_blocks[p])
                dot_r = 0.0
                dot_b = 0.0
                for i in range(n):
                    for r in range(3):
                        dot_r += brow[p, i, r] * work_two[p, i, r, 0]
                        dot_b += brow[p, i, r] * work_two[p, i, r, 1]
                dots[p, 0] = dot_r
                dots[p, 1] = dot_b
        if it > 0:
            worst = 0.0
            for p in range(n_p):  # fixed order: deterministic whatever the thread count
                if not worsts[p] <= worst:
                    worst = worsts[p]
            if galvanostatic:
                worst = max(worst, abs(dv) / vt)
            if not math.isfinite(worst):
                return -it
            if worst < tol:
                return it  # flows[] were assembled at the converged state
            if it == max_iter:
                break
        total = 0.0
        sum_r = 0.0
        sum_b = 0.0
        for p in range(n_p):
            total += flows[p]
            sum_r += dots[p, 0]
            sum_b += dots[p, 1]
        rhs_corner = total - current if galvanostatic else 0.0
        lam = (rhs_corner - sum_r) / (corner - sum_b)
        if galvanostatic:
            dv = _limit(lam / vt, LIMIT_POTENTIAL, CAP_VOLTAGE) * vt
            voltage[0] -= dv
    return -max_iter


@njit(**JIT)
def _state_rows(first, last, z, region, params, sc, y):
    c_max = sc[S_CMAX]
    reg = -1
    consts = poisson.charge_constants(params[0])
    for i in range(first, last):
        if region[i] != reg:  # the charge law's constants change only with the region
            reg = region[i]
            consts = poisson.charge_constants(params[reg])
        n, _, _, _, _, _, nt, _ = poisson.densities(z[i, 0] - z[i, 2], consts)
        y[i, 0] = z[i, 0]
        y[i, 1] = c_max * logistic(z[i, 1])
        y[i, 2] = n + nt


@njit(**JIT_PARALLEL)
def _state_chunks(z, region, params, sc, y):
    n = z.shape[0]
    chunk = (n + N_CHUNKS - 1) // N_CHUNKS
    for k in prange(N_CHUNKS):
        _state_rows(k * chunk, min(n, (k + 1) * chunk), z, region, params, sc, y)


@njit(**JIT)
def state_from_unknowns(z, region, params, sc, y):
    """Conserved state (psi, c, e = n + n_t) of the unknowns ``z``, into ``y`` (n, 3)."""
    if z.shape[0] >= PARALLEL_MIN_NODES:
        _state_chunks(z, region, params, sc, y)
    else:
        _state_rows(0, z.shape[0], z, region, params, sc, y)


@njit(**JIT_PARALLEL)
def state_from_unknowns_ensemble(z, region, params, sc, y):
    """:func:`state_from_unknowns` of every particle (leading axis), parallel over particles."""
    for p in prange(z.shape[0]):
        _state_rows(0, z.shape[1], z[p], region[p], params, sc[p], y[p])


# The electron level x = psi - phi of a conserved electron density e = n(x) + n_t(x).
#: The reference bisection (:func:`electron_level_bisection`) halves [-80, 80] V until its
#: bracket is narrower than 1e-14 V: it evaluates 54 midpoints and returns the last, the
#: midpoint of its 53rd bracket, which is LEVEL_WIDTH wide.
LEVEL_WIDTH = 160.0 * 2.0**-53
#: Below this |x| [V] every midpoint and bracket of that bisection is exact in binary (an
#: integer multiple of 5 2^-49 below 2^53 of them), so its 53rd bracket is
#: LEVEL_WIDTH [k, k + 1] for the integer k below x / LEVEL_WIDTH.
LEVEL_EXACT = 15.0
#: Newton steps before the search falls back to the bisection, and their largest length [V].
LEVEL_MAX_ITER = 60
LEVEL_STEP = 1.0


@njit(**JIT_INLINE)
def _electrons(x, consts):
    """e = n + n_t [m-3] at x = psi - phi [V] and de/dx."""
    n, dn, _, _, _, _, nt, dnt = poisson.densities(x, consts)
    return n + nt, dn + dnt


@njit(**JIT)
def electron_level_bisection(target, consts):
    """x with n(x) + n_t(x) = ``target`` by bisection on [-80, 80] V to a 1e-14 V bracket (the
    reference of :func:`electron_level`); ``consts`` from ``poisson.charge_constants``."""
    lo = -80.0
    hi = 80.0
    x = 0.0
    for _ in range(300):
        x = 0.5 * (lo + hi)
        e, _ = _electrons(x, consts)
        if e > target:
            hi = x
        else:
            lo = x
        if hi - lo < 1e-14:
            break
    return x


@njit(**JIT_INLINE)
def electron_level_guess(target, consts):
    """x [V] of Boltzmann electrons plus the trap level, in closed form.

    With a = exp(x/V_t) and K = exp(t_shift) (``poisson.densities``: n_t = N_t a / (a + K)),
    N_C a + N_t a / (a + K) = e is the quadratic N_C a^2 + (N_C K + N_t - e) a - e K = 0, whose
    positive root is taken in the form that does not cancel. Exact for Boltzmann statistics;
    a start for Fermi-Dirac (F_1/2 < exp: the guess lies below the root).
    """
    inv_vt = consts[0]
    n_c = consts[1]
    n_trap = consts[8]
    if n_trap > 0.0:
        k = math.exp(consts[9])
        b = n_c * k + n_trap - target
        root = math.sqrt(b * b + 4.0 * n_c * target * k)
        if b >= 0.0:
            a = 2.0 * target * k / (b + root)
        else:
            a = (root - b) / (2.0 * n_c)
    else:
        a = target / n_c
    if not a > 0.0:  # underflow (or NaN)
        return -math.inf
    return math.log(a) / inv_vt


@njit(**JIT_INLINE)
def electron_level(target, consts):
    """x with n(x) + n_t(x) = ``target`` (> 0): the result of
    :func:`electron_level_bisection` to the bit, in a few evaluations instead of 54.

    The bisection returns the midpoint of the bracket LEVEL_WIDTH [k, k + 1] whose ends it
    found on either side of the root (``e(lo) <= target < e(hi)``). This search looks for that
    bracket directly: Newton's method on ln e - ln target from :func:`electron_level_guess`,
    each iterate rounded down to the LEVEL_WIDTH grid and tested at both ends, the failed end
    the start of the next Newton step (and a bound: the iterates are kept inside the bounds,
    bisecting them when Newton leaves). e(x) increases monotonically, and so do its computed
    values from one grid point to the next (their round-off, and the steps of up to 1.1e-14
    relative where the Fermi-Dirac expansions join, stay below the rise over one cell), so
    only one grid cell passes the test, the bisection's: the result depends on ``target``
    alone, not on the path to it. Outside |x| < LEVEL_EXACT, or after LEVEL_MAX_ITER steps, the
    bisection itself runs.
    """
    lo_b = -LEVEL_EXACT
    hi_b = LEVEL_EXACT
    x = electron_level_guess(target, consts)
    if not (lo_b < x < hi_b):
        x = 0.0 if x != x else min(max(x, lo_b + 1.0), hi_b - 1.0)
    for _ in range(LEVEL_MAX_ITER):
        if hi_b <= lo_b:  # the root is outside |x| < LEVEL_EXACT
            break
        lo = math.floor(x / LEVEL_WIDTH) * LEVEL_WIDTH
        hi = lo + LEVEL_WIDTH
        e, de = _electrons(lo, consts)
        if e > target:  # the root lies below lo
            hi_b = lo
            p = lo
        else:
            e, de = _electrons(hi, consts)
            if e > target:
                return 0.5 * (lo + hi)
            lo_b = hi  # the root lies above hi
            p = hi
        # Newton on ln e, at most LEVEL_STEP per step (ln e flattens where the traps fill);
        # bisection of the bounds where it cannot step (underflow) or leaves them
        x = math.nan
        if e > 0.0 and de > 0.0:
            x = p - min(max(math.log(e / target) * e / de, -LEVEL_STEP), LEVEL_STEP)
        if not (lo_b < x < hi_b):  # NaN included
            x = 0.5 * (lo_b + hi_b)
    return electron_level_bisection(target, consts)


@njit(**JIT)
def _unknowns_rows(first, last, y, voltage, region, params, sc, z):
    c_max = sc[S_CMAX]
    dd = sc[S_ELECTRONS] == ELECTRONS_DRIFT_DIFFUSION
    reg = -1
    consts = poisson.charge_constants(params[0])
    for i in range(first, last):
        z[i, 0] = y[i, 0]
        theta = min(max(y[i, 1] / c_max, 1e-300), 1.0 - 1e-16)
        z[i, 1] = math.log(theta) - math.log1p(-theta)
        if not dd:
            z[i, 2] = voltage
            continue
        if region[i] != reg:
            reg = region[i]
            consts = poisson.charge_constants(params[reg])
        target = max(y[i, 2], 1e-300)
        z[i, 2] = y[i, 0] - electron_level(target, consts)


@njit(**JIT_PARALLEL)
def _unknowns_chunks(y, voltage, region, params, sc, z):
    n = y.shape[0]
    chunk = (n + N_CHUNKS - 1) // N_CHUNKS
    for k in prange(N_CHUNKS):
        _unknowns_rows(k * chunk, min(n, (k + 1) * chunk), y, voltage, region, params, sc, z)


@njit(**JIT)
def unknowns_from_state(y, voltage, region, params, sc, z):
    """Newton unknowns of a conserved state ``y``: ell = logit(c/c_max) (clipped inside (0, 1)),
    phi = psi - x by inverting e = n(x) + n_t(x) (monotone; :func:`electron_level`), or phi = V
    in quasi-equilibrium.

    The result depends on ``y`` and ``voltage`` alone (``z`` is output only), whatever the
    thread count: a resumed run converts its checkpointed state to the same bits.
    """
    if y.shape[0] >= PARALLEL_MIN_NODES:
        _unknowns_chunks(y, voltage, region, params, sc, z)
    else:
        _unknowns_rows(0, y.shape[0], y, voltage, region, params, sc, z)


@njit(**JIT_PARALLEL)
def unknowns_from_state_ensemble(y, voltage, region, params, sc, z):
    """:func:`unknowns_from_state` of every particle (leading axis), parallel over particles."""
    for p in prange(y.shape[0]):
        _unknowns_rows(0, y.shape[1], y[p], voltage, region[p], params, sc[p], z[p])


@njit(**JIT)
def _surface_unknowns(y, voltage, region, params, sc, z):
    """Unknowns at the electrolyte node only, into ``z`` (the other rows left as they are)."""
    s_node = int(sc[S_SURFACE])
    _unknowns_rows(s_node, s_node + 1, y, voltage, region, params, sc, z)


@njit(**JIT)
def flow_from_state(y, voltage, region, params, sc, tables, site_energy, z):
    """A_s j of a conserved state ``y``: :func:`unknowns_from_state` then :func:`assemble`'s
    return value, to the bit, from the electrolyte node alone (``z``: scratch (n, 3))."""
    _surface_unknowns(y, voltage, region, params, sc, z)
    return surface_flow(z, region, sc, tables, site_energy)


@njit(**JIT)
def flow_from_state_ensemble(y, voltage, region, params, sc, tables, site_energy, z, flows):
    """:func:`flow_from_state` of every particle (leading axis) into ``flows``."""
    for p in range(y.shape[0]):
        flows[p] = flow_from_state(y[p], voltage, region[p], params, sc[p], tables,
                                   site_energy[p], z[p])


@njit(**JIT)
def local_equilibrium_ell(psi, region, sc, tables, site_energy, out):
    """ell at which Na+ at potential psi is in equilibrium with the electrolyte,
    V_t ell + mu(ell) + psi = 0 at every node (bisection on [-745, 745])."""
    vt = sc[S_VT]
    for i in range(psi.shape[0]):
        lo = -745.0
        hi = 745.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            mu, _ = chemical(mid, region[i], sc, tables, site_energy[i])
            if vt * mid + mu + psi[i] > 0.0:
                hi = mid
            else:
                lo = mid
            if hi - lo < 1e-12:
                break
        out[i] = 0.5 * (lo + hi)


@njit(**JIT)
def surface_overpotential(z, region, sc, tables, site_energy):
    """(eta, U_loc) at the electrolyte node of the unknowns ``z``."""
    s_node = int(sc[S_SURFACE])
    mu, _ = chemical(z[s_node, 1], region[s_node], sc, tables, site_energy[s_node])
    eta = sc[S_VT] * z[s_node, 1] + mu + z[s_node, 0]
    return eta, z[s_node, 2] - eta


@njit(**JIT)
def surface_overpotential_ensemble(z, region, sc, tables, site_energy, etas, u_locs):
    """:func:`surface_overpotential` of every particle (leading axis) into ``etas``, ``u_locs``."""
    for p in range(z.shape[0]):
        etas[p], u_locs[p] = surface_overpotential(z[p], region[p], sc[p], tables, site_energy[p])


@njit(**JIT_INLINE)
def _bv_total(shift, etas, i0s, sc):
    """sum_p A_s,p j_p(eta_p + shift) [A] and its derivative with respect to the shift."""
    total = 0.0
    slope = 0.0
    for p in range(etas.shape[0]):
        row = sc[p]
        i0 = i0s[p]
        eta = etas[p] + shift
        alpha = row[S_ALPHA]
        vt = row[S_VT]
        ea = math.exp((1.0 - alpha) * eta / vt)
        ec = math.exp(-alpha * eta / vt)
        total += row[S_AREA_S] * i0 * (ea - ec)
        slope += row[S_AREA_S] * i0 * ((1.0 - alpha) * ea + alpha * ec) / vt
    return total, slope


@njit(**JIT)
def _exchange_currents(u_locs, sc):
    """i0 of every particle at its U_loc (which a rigid shift leaves unchanged) [A m-2]."""
    n_p = u_locs.shape[0]
    i0s = np.empty(n_p)
    for p in range(n_p):
        theta_eq = logistic(ocv_inverse(u_locs[p], sc[p], 0.0))
        i0s[p] = 2.0 * sc[p, S_I0] * math.sqrt(theta_eq * (1.0 - theta_eq))
    return i0s


@njit(**JIT)
def _shift_bisection(etas, i0s, sc, current):
    """The shift by bisection on [-10, 10] V to a 1e-12 V bracket: :func:`rigid_shift`'s
    fallback, and the reference its tests compare with."""
    lo = -10.0
    hi = 10.0
    mid = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        total, _ = _bv_total(mid, etas, i0s, sc)
        if total > current:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-12:
            break
    return mid




#: The bisection halves [-10, 10] V until its bracket is narrower than 1e-12 V and returns its
#: 45th midpoint, the midpoint of its 44th bracket, SHIFT_WIDTH wide (every bracket end a
#: multiple of 5 2^-43, exact in binary).
SHIFT_WIDTH = 20.0 * 2.0**-44


@njit(**JIT)
def rigid_shift(etas, u_locs, sc, current):
    """Voltage shift dV with sum_p A_s,p j_p(eta_p + dV, U_loc,p) = current.

    Shifting psi, phi and V together by dV is the electrode's instant response (the charge
    state unchanged): the predictor of a galvanostatic step, which Newton alone, linearising an
    exponential far from its root, would overshoot.

    The result of :func:`rigid_shift_bisection` to the bit, found as :func:`electron_level`
    finds its bisection's: safeguarded Newton steps, each rounded to the bisection's last
    bracket (SHIFT_WIDTH [k, k + 1]) and tested at both ends (the current increases with the
    shift, so only the bisection's bracket passes). A root outside [-10, 10] V, or 100 steps,
    leave it to the bisection.
    """
    i0s = _exchange_currents(u_locs, sc)
    lo_b = -10.0
    hi_b = 10.0
    x = 0.0
    for _ in range(100):
        if hi_b <= lo_b:
            break
        lo = math.floor(x / SHIFT_WIDTH) * SHIFT_WIDTH
        hi = lo + SHIFT_WIDTH
        total, slope = _bv_total(lo, etas, i0s, sc)
        if total > current:  # the root lies below lo
            hi_b = lo
            p = lo
        else:
            total, slope = _bv_total(hi, etas, i0s, sc)
            if total > current:
                return 0.5 * (lo + hi)
            lo_b = hi
            p = hi
        x = p - (total - current) / slope
        if not (lo_b < x < hi_b):  # NaN included
            x = 0.5 * (lo_b + hi_b)
    return _shift_bisection(etas, i0s, sc, current)
