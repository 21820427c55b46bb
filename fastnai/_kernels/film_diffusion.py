"""Na transport through the thickness of an alloy film in the reference frame (SPEC 3.3).

Cells ``i = 0 .. n-1`` of reference thickness ``h_i`` stack from the substrate (blocking, below
cell 0) to the electrolyte (above cell n-1). The unknown is the sodiation fraction theta_i;
``c_max,i`` is the Na site density per reference volume [mol m-3], so the Na inventory is
``sum h_i c_max,i theta_i`` [mol m-2]. Face fluxes (positive upward, mol m-2 s-1):

    J = -Dbar c_max,f (theta_(i+1) - theta_i) / dz
        + Dbar c_max,f theta_f (1 - theta_f) (Omega / RT) (sigma_h,(i+1) - sigma_h,i) / dz

with the reference-frame diffusivity ``D / lambda_z^2`` (lambda_z = 1 + beta theta: the film
thickens, SPEC 3.3) averaged harmonically over the two cells, ``c_max,f`` and ``theta_f`` the
arithmetic means, and sigma_h the hydrostatic stress (stress-coupled flux, SPEC 3.3; the caller
passes zeros to switch it off, and its values at the previous accepted state: the coupling is
lagged one step, which keeps the Jacobian tridiagonal). The electrolyte face carries the
current density ``i`` (anodic positive), so ``J_top = i / F``; under potential control ``i`` is
the Butler-Volmer current at the top cell,

    i = i0 2 sqrt(theta (1 - theta)) [exp(alpha f eta) - exp(-(1 - alpha) f eta)],
    eta = V - U(theta) - Omega sigma_h / F,
    U = U0 - (RT/F) ln(theta / (1 - theta)) - Omega_U (1 - 2 theta),

the mechanical term making the surface equilibrium the same chemical potential
mu / RT = ln(theta / (1 - theta)) - Omega sigma_h / RT whose gradient drives the flux.

Implicit step (the BDF form of :mod:`fastnai.transient`, M = diag(h c_max)):

    h_i c_max,i (alpha0 theta_i + hist_i) + dt (J_(i+1/2) - J_(i-1/2)) = 0,

solved by Newton with the exact tridiagonal Jacobian (the stress term's theta_f (1 - theta_f)
factor included) and theta kept inside (0, 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import laminate as lam
from ._jit import JIT, JIT_INLINE
from .tridiagonal import solve_tridiagonal

FARADAY = 96485.33212

# entries of ``sc`` (scalars)
S_VT = 0  # RT/F [V]
S_OMEGA_MECH = 1  # Omega / RT of the stress coupling [m3 J-1 = Pa-1]
S_I0 = 2  # exchange current density i0_ref [A m-2]
S_ALPHA = 3  # transfer coefficient
S_U0 = 4  # U0 at the surface composition [V]
S_OMEGA_U = 5  # regular-solution term of U(theta) [V]
S_CONTROL = 6  # 0: current given, 1: voltage given (Butler-Volmer)
S_VALUE = 7  # the current density [A m-2] or the voltage [V]
N_SCALARS = 8

_THETA_MIN = 1e-12


@njit(**JIT_INLINE)
def ocv(theta, u0, omega_u, vt):
    """U(theta) = U0 - (RT/F) ln(theta / (1 - theta)) - Omega_U (1 - 2 theta) [V]."""
    return u0 - vt * math.log(theta / (1.0 - theta)) - omega_u * (1.0 - 2.0 * theta)


@njit(**JIT_INLINE)
def butler_volmer(voltage, theta, sigma_h, sc):
    """Current density (anodic positive) and its derivative in theta at the surface [A m-2].

    The equilibrium potential carries the mechanical part of the Na chemical potential,
    U(theta) + Omega sigma_h / F (compression lowers it), consistent with the stress-coupled
    flux; the derivative is at fixed sigma_h.
    """
    vt = sc[S_VT]
    alpha = sc[S_ALPHA]
    u = ocv(theta, sc[S_U0], sc[S_OMEGA_U], vt) + vt * sc[S_OMEGA_MECH] * sigma_h
    du = -vt / (theta * (1.0 - theta)) + 2.0 * sc[S_OMEGA_U]
    eta = voltage - u
    root = math.sqrt(theta * (1.0 - theta))
    i0 = sc[S_I0] * 2.0 * root
    di0 = sc[S_I0] * (1.0 - 2.0 * theta) / root
    ea = math.exp(alpha * eta / vt)
    ec = math.exp(-(1.0 - alpha) * eta / vt)
    i = i0 * (ea - ec)
    didEta = i0 * (alpha * ea + (1.0 - alpha) * ec) / vt
    return i, di0 * (ea - ec) - didEta * du


@njit(**JIT_INLINE)
def _face(i, theta, h, c_max, d_cell, beta, sigma_h, omega_mech):
    """Flux through the face above cell i and its derivatives in theta_i, theta_(i+1)."""
    t0 = theta[i]
    t1 = theta[i + 1]
    l0 = 1.0 + beta[i] * t0
    l1 = 1.0 + beta[i + 1] * t1
    r0 = l0 * l0 / d_cell[i]  # resistance per unit length: lambda^2 / D
    r1 = l1 * l1 / d_cell[i + 1]
    dz = 0.5 * (h[i] + h[i + 1])
    # harmonic mean over the half cells: Dbar = dz / (h0/2 r0 + h1/2 r1)
    den = 0.5 * h[i] * r0 + 0.5 * h[i + 1] * r1
    dbar = dz / den
    dr0 = 2.0 * l0 * beta[i] / d_cell[i]
    dr1 = 2.0 * l1 * beta[i + 1] / d_cell[i + 1]
    ddbar0 = -dz * 0.5 * h[i] * dr0 / (den * den)
    ddbar1 = -dz * 0.5 * h[i + 1] * dr1 / (den * den)
    cf = 0.5 * (c_max[i] + c_max[i + 1])
    grad = (t1 - t0) / dz
    tf = 0.5 * (t0 + t1)
    stress = omega_mech * (sigma_h[i + 1] - sigma_h[i]) / dz
    drive = -grad + tf * (1.0 - tf) * stress
    j = dbar * cf * drive
    dtf = 0.5 * (1.0 - 2.0 * tf) * stress
    dj0 = ddbar0 * cf * drive + dbar * cf * (1.0 / dz + dtf)
    dj1 = ddbar1 * cf * drive + dbar * cf * (-1.0 / dz + dtf)
    # dJ / d sigma_h,(i+1) = -dJ / d sigma_h,i
    g = dbar * cf * tf * (1.0 - tf) * omega_mech / dz
    return j, dj0, dj1, g


@njit(**JIT)
def assemble(theta, hist, alpha0, dt, h, c_max, d_cell, beta, sigma_h, sc, lower, diag, upper, res,
             g_face):
    """Residual and tridiagonal Jacobian of one implicit step at a frozen sigma_h; returns the top
    current [A m-2]. ``g_face[f]`` receives dJ_f / d sigma_h,(f+1) (length n - 1), the
    stress-coupling coefficient the coupled solve needs."""
    n = theta.size
    omega_mech = sc[S_OMEGA_MECH]
    for i in range(n):
        m = h[i] * c_max[i]
        res[i] = m * (alpha0 * theta[i] + hist[i])
        diag[i] = m * alpha0
        lower[i] = 0.0
        upper[i] = 0.0
    for i in range(n - 1):
        j, dj0, dj1, g = _face(i, theta, h, c_max, d_cell, beta, sigma_h, omega_mech)
        g_face[i] = g
        # cell i loses J through its top face, cell i+1 gains it through its bottom face
        res[i] += dt * j
        diag[i] += dt * dj0
        upper[i] += dt * dj1
        res[i + 1] -= dt * j
        lower[i + 1] -= dt * dj0
        diag[i + 1] -= dt * dj1
    if sc[S_CONTROL] == 0.0:
        current = sc[S_VALUE]
        dcur = 0.0
    else:
        current, dcur = butler_volmer(sc[S_VALUE], theta[n - 1], sigma_h[n - 1], sc)
    res[n - 1] += dt * current / FARADAY
    diag[n - 1] += dt * dcur / FARADAY
    return current


@njit(**JIT)
def newton(theta, hist, alpha0, dt, h, c_max, d_cell, beta, sigma_h, sc, tol, max_iter,
           lower, diag, upper, res, delta, work):
    """Solve one implicit step in place; returns the iterations (negative: not converged).

    Converged when the largest update is below ``tol`` (in theta). Updates are scaled so that
    theta stays in [1e-12, 1 - 1e-12].
    """
    for it in range(1, max_iter + 1):
        assemble(theta, hist, alpha0, dt, h, c_max, d_cell, beta, sigma_h, sc, lower, diag,
                 upper, res, work)
        solve_tridiagonal(lower, diag, upper, res, delta, work)
        big = _update(theta, delta, -1.0)
        if not math.isfinite(big):
            return -it
        if big <= tol:
            return it
    return -max_iter


@njit(**JIT)
def _update(theta, delta, sign):
    """theta += sign delta, each step kept inside (0, 1); returns the largest step taken."""
    big = 0.0
    for i in range(theta.size):
        d = sign * delta[i]
        t = theta[i] + d
        # a step that would leave (0, 1) goes at most nine tenths of the way to the bound
        if t < _THETA_MIN:
            d = 0.9 * (_THETA_MIN - theta[i]) if theta[i] > _THETA_MIN else 0.0
        elif t > 1.0 - _THETA_MIN:
            d = 0.9 * (1.0 - _THETA_MIN - theta[i]) if theta[i] < 1.0 - _THETA_MIN else 0.0
        theta[i] += d
        big = max(big, abs(d))
    return big


@njit(**JIT)
def surface_current(theta, sigma_h_surface, sc):
    """The top current density of a state [A m-2] (the given one under current control)."""
    if sc[S_CONTROL] == 0.0:
        return sc[S_VALUE]
    i, _ = butler_volmer(sc[S_VALUE], theta[theta.size - 1], sigma_h_surface, sc)
    return i


@njit(**JIT)
def cell_voltage_galvanostatic(theta_surface, sigma_h_surface, current, sc):
    """Electrode voltage that drives ``current`` at the surface state (Butler-Volmer inverted
    by Newton on eta; closed form asinh for alpha = 1/2) [V]."""
    vt = sc[S_VT]
    alpha = sc[S_ALPHA]
    i0 = sc[S_I0] * 2.0 * math.sqrt(theta_surface * (1.0 - theta_surface))
    u = ocv(theta_surface, sc[S_U0], sc[S_OMEGA_U], vt) + vt * sc[S_OMEGA_MECH] * sigma_h_surface
    x = current / i0
    eta = 2.0 * vt * math.asinh(0.5 * x)  # exact for alpha = 1/2, the guess otherwise
    for _ in range(100):
        ea = math.exp(alpha * eta / vt)
        ec = math.exp(-(1.0 - alpha) * eta / vt)
        f = ea - ec - x
        df = (alpha * ea + (1.0 - alpha) * ec) / vt
        step = f / df
        eta -= step
        if abs(step) < 1e-15 * vt:
            break
    return u + eta


@njit(**JIT)
def inventory(theta, h, c_max):
    """Na per reference area [mol m-2]."""
    total = 0.0
    for i in range(theta.size):
        total += h[i] * c_max[i] * theta[i]
    return total


@njit(**JIT)
def coupled_newton(theta, hist, alpha0, dt, h, c_max, d_cell, beta_film, sc, z_faces, n_sub, beta,
                   modulus0, modulus1, yield0, yield1, hardening, eigenstrain_form, current_frame,
                   history, strain_state, tol, max_iter, sigma_h, lower, diag, upper, res, delta,
                   g_face, layers, stretch, dstretch, points, material, dmaterial, sens, point_ds,
                   point_t, rank_u, rank_v, work3):
    """One implicit step with the stress-coupled flux, solved together with the laminate.

    Unknowns: theta of the film cells (= the laminate's film layers ``n_sub ...``) and the plate
    strain (eps0, kappa) of a free laminate (``strain_state``, in/out). The Jacobian is bordered,

        [T   U] [d theta]     [r_theta]      T: tridiagonal (diffusion, with the local
        [V^T K] [d u    ] = - [r_u    ],        d sigma_h / d theta),  U = d r_theta / d u,

    V^T = d(F, M)/d theta from ``laminate.equilibrium_sensitivity`` and K the laminate's
    consistent tangent; eliminating d u leaves T - U K^-1 V^T, tridiagonal plus rank 2, solved by
    ``laminate.solve_tridiagonal_rank2``. sigma_h of a cell is the mean of its two Gauss points'
    2 sigma / 3 (equi-biaxial) from the committed plastic ``history`` (backward Euler); the lift
    of a cell's points by the swelling of the cells below is left out of T (relative size
    kappa h, ~1e-6: Newton converges linearly in it). Returns the iterations, negative when not
    converged; ``sigma_h`` holds the last evaluation.
    """
    n = theta.size
    n_layers = z_faces.size - 1
    thickness = z_faces[n_layers] - z_faces[0]
    for i in range(n_layers):
        layers[i] = 0.0
    for it in range(1, max_iter + 1):
        for k in range(n):
            layers[n_sub + k] = theta[k]
        lam.layer_properties(layers, beta, modulus0, modulus1, yield0, yield1, hardening,
                             eigenstrain_form, current_frame, stretch, material)
        lam.layer_property_derivatives(layers, beta, modulus0, modulus1, yield0, yield1,
                                       eigenstrain_form, current_frame, dstretch, dmaterial)
        lam.current_points(z_faces, stretch, points)
        eps0 = strain_state[0]
        kappa = strain_state[1]
        force = 0.0
        moment = 0.0
        ka = 0.0
        kb = 0.0
        kd = 0.0
        for q in range(2 * n_layers):
            layer = q // 2
            g = lam.GAUSS_LO if q % 2 == 0 else lam.GAUSS_HI
            dz = (z_faces[layer + 1] - z_faces[layer]) * g * dstretch[layer]
            z = points[lam.P_Z, q]
            w = points[lam.P_WEIGHT, q]
            s, t, ds = lam.point_theta_derivative(eps0 + kappa * z, kappa, dz, q, material,
                                                  history, dmaterial)
            point_ds[q] = ds
            point_t[q] = t
            force += s * w
            moment += s * z * w
            ka += t * w
            kb += t * z * w
            kd += t * z * z * w
            if layer >= n_sub and q % 2 == 1:
                sigma_h[layer - n_sub] += s / 3.0
            elif layer >= n_sub:
                sigma_h[layer - n_sub] = s / 3.0
        lam.equilibrium_sensitivity(z_faces, points, material, history, dstretch, dmaterial, eps0,
                                    kappa, sens)
        assemble(theta, hist, alpha0, dt, h, c_max, d_cell, beta_film, sigma_h, sc, lower, diag,
                 upper, res, g_face)
        # U (n x 2) in rank_u, the local d sigma_h / d theta into T
        for k in range(n):
            rank_u[0, k] = 0.0
            rank_u[1, k] = 0.0
        for f in range(n - 1):
            gf = dt * g_face[f]
            for k, sgn in ((f, -1.0), (f + 1, 1.0)):
                q = 2 * (n_sub + k)
                dsh = (point_ds[q] + point_ds[q + 1]) / 3.0
                dsh_e = (point_t[q] + point_t[q + 1]) / 3.0
                dsh_k = (point_t[q] * points[lam.P_Z, q] + point_t[q + 1] * points[lam.P_Z, q + 1]) / 3.0
                c = sgn * gf  # d(dt J_f) / d sigma_h,k
                # row f gains +dt J_f, row f+1 gains -dt J_f
                if k == f:
                    diag[f] += c * dsh
                    lower[f + 1] -= c * dsh
                else:
                    upper[f] += c * dsh
                    diag[f + 1] -= c * dsh
                rank_u[0, f] += c * dsh_e
                rank_u[1, f] += c * dsh_k
                rank_u[0, f + 1] -= c * dsh_e
                rank_u[1, f + 1] -= c * dsh_k
        # eliminate du: (T - U K^-1 V^T) dtheta = -r + U K^-1 r_u
        det = ka * kd - kb * kb
        i00 = kd / det
        i01 = -kb / det
        i11 = ka / det
        kr0 = i00 * force + i01 * moment
        kr1 = i01 * force + i11 * moment
        for k in range(n):
            a0 = rank_u[0, k]
            a1 = rank_u[1, k]
            res[k] = -res[k] + a0 * kr0 + a1 * kr1
            # -U K^-1, so that T + (-U K^-1) V^T
            rank_u[0, k] = -(a0 * i00 + a1 * i01)
            rank_u[1, k] = -(a0 * i01 + a1 * i11)
            rank_v[0, k] = sens[0, n_sub + k]
            rank_v[1, k] = sens[1, n_sub + k]
        lam.solve_tridiagonal_rank2(lower, diag, upper, rank_u, rank_v, res, delta, work3)
        vf = 0.0
        vm = 0.0
        for k in range(n):
            vf += rank_v[0, k] * delta[k]
            vm += rank_v[1, k] * delta[k]
        de = -(i00 * (force + vf) + i01 * (moment + vm))
        dk = -(i01 * (force + vf) + i11 * (moment + vm))
        big = _update(theta, delta, 1.0)
        strain_state[0] = eps0 + de
        strain_state[1] = kappa + dk
        big = max(big, abs(de), abs(dk) * thickness)
        if not math.isfinite(big):
            return -it
        if big <= tol:
            return it
    return -max_iter


def workspace(n: int) -> tuple[np.ndarray, ...]:
    """Scratch arrays for :func:`newton` (lower, diag, upper, res, delta, work)."""
    return tuple(np.empty(n) for _ in range(6))


def coupled_workspace(n: int, n_layers: int) -> tuple[np.ndarray, ...]:
    """Scratch arrays for :func:`coupled_newton`, from ``lower`` to ``work3``."""
    p = 2 * n_layers
    return (np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n),
            np.empty(n_layers), np.empty(n_layers), np.empty(n_layers),
            np.empty((lam.N_POINT_ROWS, p)), np.empty((lam.N_MATERIAL_ROWS, p)),
            np.empty((lam.N_MATERIAL_ROWS, p)), np.empty((2, n_layers)), np.empty(p), np.empty(p),
            np.empty((2, n)), np.empty((2, n)), np.empty((3, n)))
