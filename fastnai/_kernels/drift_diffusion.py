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

The contact node has psi_0 = V - Phi_B and phi_0 = V (Dirichlet); Na+ is blocked there. The
electrolyte node s (0 in co-located geometry, n-1 otherwise) carries the Butler-Volmer current
j (anodic positive, A m-2) of neutral insertion:

    eta = ell_s V_t + mu_s + psi_s        (Na+ electrochemical potential, electrolyte at 0)
    U_loc = phi_s - eta,  theta_eq = U^-1(U_loc),  i0 = i0_ref 2 sqrt(theta_eq (1 - theta_eq))
    j = i0 [exp((1 - alpha) eta / V_t) - exp(-alpha eta / V_t)]

The excess chemical potential mu = -U0 + Omega (1 - 2 theta) - mu_e(theta) + eps_site makes the
neutral bulk reproduce U(theta) = U0 - V_t ln(theta/(1-theta)) - Omega (1 - 2 theta); mu_e(theta)
= E_Fn - E_C of the neutral bulk at theta, tabulated against ell with its derivative and read
by cubic Hermite interpolation. With electrostatics off, mu_e is left out: the
electrode is electroneutral everywhere and Na+ moves ambipolarly with its electrons; psi = V then
stands for the uniform inner potential (so that eta = V - U(theta) exactly).

Galvanostatic control adds V as one bordered unknown with the equation sum_p A_s,p j_p = I.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import poisson
from ._jit import JIT, JIT_INLINE, JIT_PARALLEL
from .block_tridiagonal import solve_block_tridiagonal, solve_bordered, solve_ensemble_bordered
from .hopping import bernoulli, bernoulli_derivative, hopping_flux

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
def _node(z, i, region, params, sc, tables, site_energy):
    """Per-node quantities: c, dc/dell, e = n + n_t and its derivative (w.r.t. psi - phi), rho and
    its derivatives, mu, dmu, n, dn."""
    psi = z[i, 0]
    ell = z[i, 1]
    phi = z[i, 2]
    theta = logistic(ell)
    c_max = sc[S_CMAX]
    c = c_max * theta
    dc = c * (1.0 - theta)
    consts = poisson.charge_constants(params[region[i]])
    n, dn, p, dp, nd, dnd, nt, dnt = poisson.densities(psi - phi, consts)
    e = n + nt
    de = dn + dnt
    rho = Q_E * (c + nd - consts[7] + p - n - nt)
    drho_x = Q_E * (dnd + dp - dn - dnt)
    mu, dmu = chemical(ell, region[i], sc, tables, site_energy[i])
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
    """
    n = z.shape[0]
    vt = sc[S_VT]
    c_max = sc[S_CMAX]
    a_hop = sc[S_HOP]
    dd = sc[S_ELECTRONS] == ELECTRONS_DRIFT_DIFFUSION
    electrostatic = sc[S_ELECTROSTATICS] != 0.0
    s_node = int(sc[S_SURFACE])
    d_n = sc[S_DN]
    for i in range(n):
        for r in range(3):
            res[i, r] = 0.0
            bcol[i, r] = 0.0
            brow[i, r] = 0.0
            for q in range(3):
                lower[i, r, q] = 0.0
                diag[i, r, q] = 0.0
                upper[i, r, q] = 0.0
    # node terms
    for i in range(n):
        c, dc, e, de, rho, drho_x, mu, dmu, nn, dnn = _node(z, i, region, params, sc, tables,
                                                          site_energy)
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
    # face fluxes
    for i in range(n - 1):
        j = i + 1
        c_i, dc_i, e_i, de_i, _, _, mu_i, dmu_i, n_i, dn_i = _node(z, i, region, params, sc, tables,
                                                                  site_energy)
        c_j, dc_j, e_j, de_j, _, _, mu_j, dmu_j, n_j, dn_j = _node(z, j, region, params, sc, tables,
                                                                  site_energy)
        if electrostatic:
            g = g_face[i]
            res[i, 0] += g * (z[j, 0] - z[i, 0])
            diag[i, 0, 0] -= g
            upper[i, 0, 0] += g
            res[j, 0] += g * (z[i, 0] - z[j, 0])
            diag[j, 0, 0] -= g
            lower[j, 0, 0] += g
        # Na+ hopping flux i -> j
        u = (z[i, 0] - z[j, 0] + mu_i - mu_j) / vt
        flux, d_u, d_ci, d_cj = hopping_flux(u, h[i], a_hop, d0_face[i], c_i, c_j, c_max)
        w = dt * area[i]
        fl = w * flux
        dpsi_i = w * d_u / vt
        dl_i = w * (d_u * dmu_i / vt + d_ci * dc_i)
        dl_j = w * (-d_u * dmu_j / vt + d_cj * dc_j)
        res[i, 1] += fl
        diag[i, 1, 0] += dpsi_i
        upper[i, 1, 0] -= dpsi_i
        diag[i, 1, 1] += dl_i
        upper[i, 1, 1] += dl_j
        res[j, 1] -= fl
        lower[j, 1, 0] -= dpsi_i
        diag[j, 1, 0] += dpsi_i
        lower[j, 1, 1] -= dl_i
        diag[j, 1, 1] -= dl_j
        if dd:
            # Scharfetter-Gummel: w = (phi_j - phi_i)/V_t + ln(n_j/n_i) (degenerate correction)
            ww = (z[j, 2] - z[i, 2]) / vt + math.log(n_j / n_i)
            pre = d_n / h[i]
            bm = bernoulli(-ww)
            bp = bernoulli(ww)
            fe = pre * (bm * n_i - bp * n_j)
            dfw = pre * (-bernoulli_derivative(-ww) * n_i - bernoulli_derivative(ww) * n_j)
            dfni = pre * bm
            dfnj = -pre * bp
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
            res[i, 2] += fe
            diag[i, 2, 0] += dpsi_ei
            diag[i, 2, 2] += dphi_i
            upper[i, 2, 0] += dpsi_ej
            upper[i, 2, 2] += dphi_j
            res[j, 2] -= fe
            lower[j, 2, 0] -= dpsi_ei
            lower[j, 2, 2] -= dphi_i
            diag[j, 2, 0] -= dpsi_ej
            diag[j, 2, 2] -= dphi_j
    # electrolyte interface: Butler-Volmer extraction
    _, _, _, _, _, _, mu_s, dmu_s, _, _ = _node(z, s_node, region, params, sc, tables, site_energy)
    j_bv, dj_psi, dj_ell, dj_phi = butler_volmer(z[s_node, 0], z[s_node, 1], z[s_node, 2], mu_s,
                                                 dmu_s, sc)
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
    # Dirichlet rows (unknown - value = 0; the border column carries d/dV = -1)
    if not electrostatic:
        for i in range(n):
            _dirichlet_row(i, 0, z[i, 0] - v_applied, lower, diag, upper, res, bcol)
    elif sc[S_CONTACT] != 0.0:
        _dirichlet_row(0, 0, z[0, 0] - (v_applied - sc[S_PHIB]), lower, diag, upper, res, bcol)
    if dd:
        _dirichlet_row(0, 2, z[0, 2] - v_applied, lower, diag, upper, res, bcol)
    else:
        for i in range(n):
            _dirichlet_row(i, 2, z[i, 2] - v_applied, lower, diag, upper, res, bcol)
    return a_s * j_bv


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


@njit(**JIT)
def _apply_update(z, dz, vt):
    """z -= limited dz; returns the largest scaled update (|dpsi|/V_t, |dell|, |dphi|/V_t)."""
    n = z.shape[0]
    worst = 0.0
    for i in range(n):
        for r in range(3):
            scale = vt if r != 1 else 1.0
            if r == 1:
                step = _limit(dz[i, r], LIMIT_ELL, CAP_ELL)
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
    ``out[0]`` receives A_s j at the converged state.

    Returns
    -------
    int
        Iterations used; negative when not converged (or non-finite).
    """
    vt = sc[S_VT]
    n = z.shape[0]
    for it in range(1, max_iter + 1):
        flow = assemble(z, voltage[0], galvanostatic, alpha0, hist, dt, vol, area, h, g_face,
                        d0_face, site_energy, region, params, tables, sc, lower, diag, upper, res,
                        bcol, brow)
        out[0] = flow
        if galvanostatic:
            lam = solve_bordered(lower, diag, upper, res, bcol, brow, 0.0, flow - current, dz,
                                 work_blocks, work_rhs, work_two)
            dv = _limit(lam / vt, LIMIT_POTENTIAL, CAP_VOLTAGE) * vt
            voltage[0] -= dv
            worst = max(_apply_update(z, dz, vt), abs(dv) / vt)
        else:
            solve_block_tridiagonal(lower, diag, upper, res.reshape((n, 3, 1)),
                                    dz.reshape((n, 3, 1)), work_blocks, work_rhs)
            worst = _apply_update(z, dz, vt)
        if not math.isfinite(worst):
            return -it
        if worst < tol:
            out[0] = assemble(z, voltage[0], galvanostatic, alpha0, hist, dt, vol, area, h,
                              g_face, d0_face, site_energy, region, params, tables, sc, lower,
                              diag, upper, res, bcol, brow)
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

    Returns
    -------
    int
        Iterations used; negative when not converged.
    """
    n_p = z.shape[0]
    vt = sc[0, S_VT]
    for it in range(1, max_iter + 1):
        for p in prange(n_p):
            flows[p] = assemble(z[p], voltage[0], galvanostatic, alpha0, hist[p], dt, vol[p],
                                area[p], h[p], g_face[p], d0_face[p], site_energy[p], region[p],
                                params, tables, sc[p], lower[p], diag[p], upper[p], res[p],
                                bcol[p], brow[p])
        total = 0.0
        for p in range(n_p):  # fixed order: deterministic whatever the thread count
            total += flows[p]
        # potentiostatic: the border row is zero and corner = 1 gives lambda = 0
        lam = solve_ensemble_bordered(lower, diag, upper, res, bcol, brow,
                                      0.0 if galvanostatic else 1.0,
                                      total - current if galvanostatic else 0.0, dz,
                                      work_blocks, work_rhs, work_two, dots)
        worsts = np.empty(n_p)
        for p in prange(n_p):
            worsts[p] = _apply_update(z[p], dz[p], vt)
        worst = 0.0
        for p in range(n_p):
            if not worsts[p] <= worst:
                worst = worsts[p]
        if galvanostatic:
            dv = _limit(lam / vt, LIMIT_POTENTIAL, CAP_VOLTAGE) * vt
            voltage[0] -= dv
            worst = max(worst, abs(dv) / vt)
        if not math.isfinite(worst):
            return -it
        if worst < tol:
            for p in prange(n_p):
                flows[p] = assemble(z[p], voltage[0], galvanostatic, alpha0, hist[p], dt, vol[p],
                                    area[p], h[p], g_face[p], d0_face[p], site_energy[p],
                                    region[p], params, tables, sc[p], lower[p], diag[p],
                                    upper[p], res[p], bcol[p], brow[p])
            return it
    return -max_iter


@njit(**JIT)
def state_from_unknowns(z, region, params, sc, y):
    """Conserved state (psi, c, e = n + n_t) of the unknowns ``z``, into ``y`` (n, 3)."""
    c_max = sc[S_CMAX]
    for i in range(z.shape[0]):
        consts = poisson.charge_constants(params[region[i]])
        n, _, _, _, _, _, nt, _ = poisson.densities(z[i, 0] - z[i, 2], consts)
        y[i, 0] = z[i, 0]
        y[i, 1] = c_max * logistic(z[i, 1])
        y[i, 2] = n + nt


@njit(**JIT)
def unknowns_from_state(y, voltage, region, params, sc, z):
    """Newton unknowns of a conserved state ``y``: ell = logit(c/c_max) (clipped inside (0, 1)),
    phi by inverting e = n(psi - phi) + n_t(psi - phi) (monotone), or phi = V in
    quasi-equilibrium."""
    c_max = sc[S_CMAX]
    dd = sc[S_ELECTRONS] == ELECTRONS_DRIFT_DIFFUSION
    for i in range(y.shape[0]):
        z[i, 0] = y[i, 0]
        theta = min(max(y[i, 1] / c_max, 1e-300), 1.0 - 1e-16)
        z[i, 1] = math.log(theta) - math.log1p(-theta)
        if not dd:
            z[i, 2] = voltage
            continue
        consts = poisson.charge_constants(params[region[i]])
        target = max(y[i, 2], 1e-300)
        lo = -80.0
        hi = 80.0
        x = 0.0
        for _ in range(300):
            x = 0.5 * (lo + hi)
            n, _, _, _, _, _, nt, _ = poisson.densities(x, consts)
            if n + nt > target:
                hi = x
            else:
                lo = x
            if hi - lo < 1e-14:
                break
        z[i, 2] = y[i, 0] - x


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
def rigid_shift(etas, u_locs, sc, current):
    """Voltage shift dV with sum_p A_s,p j_p(eta_p + dV, U_loc,p) = current (bisection).

    Shifting psi, phi and V together by dV is the electrode's instant response (the charge
    state unchanged): the predictor of a galvanostatic step, which Newton alone, linearising an
    exponential far from its root, would overshoot.
    """
    n_p = etas.shape[0]
    i0s = np.empty(n_p)  # U_loc does not move with the shift: i0 once per particle
    for p in range(n_p):
        theta_eq = logistic(ocv_inverse(u_locs[p], sc[p], 0.0))
        i0s[p] = 2.0 * sc[p, S_I0] * math.sqrt(theta_eq * (1.0 - theta_eq))
    lo = -10.0
    hi = 10.0
    mid = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        total = 0.0
        for p in range(n_p):
            row = sc[p]
            i0 = i0s[p]
            eta = etas[p] + mid
            alpha = row[S_ALPHA]
            vt = row[S_VT]
            total += row[S_AREA_S] * i0 * (math.exp((1.0 - alpha) * eta / vt)
                                           - math.exp(-alpha * eta / vt))
        if total > current:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-12:
            break
    return mid
