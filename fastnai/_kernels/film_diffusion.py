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
    eta = V - U(theta),   U = U0 - (RT/F) ln(theta / (1 - theta)) - Omega_U (1 - 2 theta).

Implicit step (the BDF form of :mod:`fastnai.transient`, M = diag(h c_max)):

    h_i c_max,i (alpha0 theta_i + hist_i) + dt (J_(i+1/2) - J_(i-1/2)) = 0,

solved by Newton with the exact tridiagonal Jacobian (the stress term's theta_f (1 - theta_f)
factor included) and theta kept inside (0, 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
def butler_volmer(voltage, theta, sc):
    """Current density (anodic positive) and its derivative in theta at the surface [A m-2]."""
    vt = sc[S_VT]
    alpha = sc[S_ALPHA]
    u = ocv(theta, sc[S_U0], sc[S_OMEGA_U], vt)
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
    return j, dj0, dj1


@njit(**JIT)
def assemble(theta, hist, alpha0, dt, h, c_max, d_cell, beta, sigma_h, sc, lower, diag, upper, res):
    """Residual and tridiagonal Jacobian of one implicit step; returns the top current [A m-2]."""
    n = theta.size
    omega_mech = sc[S_OMEGA_MECH]
    for i in range(n):
        m = h[i] * c_max[i]
        res[i] = m * (alpha0 * theta[i] + hist[i])
        diag[i] = m * alpha0
        lower[i] = 0.0
        upper[i] = 0.0
    for i in range(n - 1):
        j, dj0, dj1 = _face(i, theta, h, c_max, d_cell, beta, sigma_h, omega_mech)
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
        current, dcur = butler_volmer(sc[S_VALUE], theta[n - 1], sc)
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
    n = theta.size
    for it in range(1, max_iter + 1):
        assemble(theta, hist, alpha0, dt, h, c_max, d_cell, beta, sigma_h, sc, lower, diag,
                 upper, res)
        solve_tridiagonal(lower, diag, upper, res, delta, work)
        big = 0.0
        for i in range(n):
            d = -delta[i]
            t = theta[i] + d
            # a step that would leave (0, 1) goes at most nine tenths of the way to the bound
            if t < _THETA_MIN:
                d = 0.9 * (_THETA_MIN - theta[i]) if theta[i] > _THETA_MIN else 0.0
            elif t > 1.0 - _THETA_MIN:
                d = 0.9 * (1.0 - _THETA_MIN - theta[i]) if theta[i] < 1.0 - _THETA_MIN else 0.0
            theta[i] += d
            big = max(big, abs(d))
        if not math.isfinite(big):
            return -it
        if big <= tol:
            return it
    return -max_iter


@njit(**JIT)
def surface_current(theta, sc):
    """The top current density of a state [A m-2] (the given one under current control)."""
    if sc[S_CONTROL] == 0.0:
        return sc[S_VALUE]
    i, _ = butler_volmer(sc[S_VALUE], theta[theta.size - 1], sc)
    return i


@njit(**JIT)
def cell_voltage_galvanostatic(theta_surface, current, sc):
    """Electrode voltage that drives ``current`` at the surface state (Butler-Volmer inverted
    by Newton on eta; closed form asinh for alpha = 1/2) [V]."""
    vt = sc[S_VT]
    alpha = sc[S_ALPHA]
    i0 = sc[S_I0] * 2.0 * math.sqrt(theta_surface * (1.0 - theta_surface))
    u = ocv(theta_surface, sc[S_U0], sc[S_OMEGA_U], vt)
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


def workspace(n: int) -> tuple[np.ndarray, ...]:
    """Scratch arrays for :func:`newton` (lower, diag, upper, res, delta, work)."""
    return tuple(np.empty(n) for _ in range(6))
