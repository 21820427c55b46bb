"""3D twin of the phase-field profile kernel of Na deposition (:func:`.phase_field.profile_step`).

Grid and conventions
--------------------
Cell-centred fields of shape ``(ny, nz, nx)``: axis 0 is the height ``y = (j + 1/2) dx`` above
the substrate (row ``j = 0`` touches it), axes 1 and 2 are the lateral ``z = (k + 1/2) dx`` and
``x = (i + 1/2) dx``, both periodic; ``x`` rows are contiguous. ``wall_active`` is ``(nz, nx)``
and the ghost below row 0 is, per lateral cell, the one of the 2D kernel
(:func:`.phase_field._wall_ghost`: ``1`` at an active site, else the contact-angle condition);
above the top row the ghost is the top row (no flux). Only the profile terms need a 3D stencil:
growth, the reductions and site activation are pointwise and run with the 2D kernels on the
``(ny, nz nx)`` view of the same arrays.

Discretisation
--------------
The equations are those of :mod:`.phase_field` (its docstring derives them) with 3D central
differences on the 19-point neighbourhood of cell ``C`` (``C``, its 6 faces and 12 edges; N/S
are ``y +- dx``, E/W ``x +- dx``, F/B ``z +- dx``)::

         N  F          plane x-y (z = z_C)   plane x-z (y = y_C)   plane z-y (x = x_C)
         | /              NW   N   NE           FW   F   FE           NB   N   NF
    W ---C--- E           W    C   E            W    C   E            B    C   F
       / |                SW   S   SE           BW   B   BE           SB   S   SF
      B  S

- gradient ``g = (g_x, g_y, g_z)`` from ``(E - W)/(2 dx)`` and its twins; Hessian diagonal
  ``(E - 2C + W)/dx^2``; mixed derivatives from the 4-point cross stencils, e.g.
  ``H_xy = (NE - NW - SE + SW)/(4 dx^2)``;
- profile-preserving (Sun and Beckermann 2007, doi:10.1016/j.jcp.2006.05.025):
  ``D_xi [g^T H g / |g|^2 - f/lam^2]``, point-implicit diagonal ``2 r |g|^2 / (|g|^2 + eps^2)``,
  growth factors ``G = |g|`` and ``G2 = g^T H g / (2 |g|^2)``, as in 2D;
- chen2015 (Chen et al. 2015, doi:10.1016/j.jpowsour.2015.09.055): the 7-point Laplacian, whose
  point-implicit diagonal is ``6 r`` (2D: ``4 r``) so that the worst 3D mode is damped,
  ``(1 - 6 r)/(1 + 6 r)``, for every ``r = D_xi dt/dx^2``; ``G = 6 xi^2 (1 - xi)^2 / lam``.
  The diagonal also slows the curvature-driven (Allen-Cahn) motion ``v_n = -D_xi div n`` of
  this form by the factor ``1 + 6 r`` (2D: ``1 + 4 r``);
- Gibbs-Thomson: ``eta_GT = -(gamma V_m/F) s(n) div(g/|g|)`` with the mean-curvature sum
  ``div(g/|g|) = (|g|^2 tr H - g^T H g)/|g|^3``: ``-2/R`` in a metal sphere of radius ``R``
  (``g`` points into the metal), ``-1/R`` in a metal cylinder (the 2D value), so a convex metal
  surface gets ``eta_GT > 0`` (a lower equilibrium potential: less plating at tips), as in 2D.
  The sum is clamped to ``+-1/dx`` as the 2D curvature is (so a field uniform along z keeps the
  2D value): spheres below ``R = 2 dx`` and cylinders below ``R = dx`` read as that size;
- anisotropy: the cubic ``gamma (1 + eps4 a(n))``, ``a(n) = 4 (n_x^4 + n_y^4 + n_z^4) - 3``
  (Karma and Rappel, Phys. Rev. E 57, 4323 (1998), doi:10.1103/PhysRevE.57.4323), with the
  scalar stiffness ``s = 1 - 15 eps4 a(n)``. For a normal in a coordinate plane ``a`` is ``cos 4
  phi`` and ``s`` the exact stiffness of the in-plane curvature (the 2D kernel's factor);
  off those planes a scalar ``s`` is an approximation of the 3D stiffness tensor. (Taking only
  the in-plane ``(x, y)`` angle would give the 2D factor for fields uniform along z but not for
  fields uniform along x, nor the cubic symmetry);
- noise: :mod:`.counter_rng` keyed on the flat index ``(j nz + k) nx + i`` (the 2D index when
  ``nz = 1`` or ``nx = 1``).

Relation to the 2D kernel
-------------------------
The sums are ordered so that a field uniform along ``z`` (``g_z``, ``H_zz`` exactly 0) or along
``x`` reduces them to the 2D kernel's sums term by term: each ``z`` (``x``) slice then gets the 2D
kernel's ``geom``, ``geom2``, ``eta_shift`` and, for the profile-preserving form, ``xi_star``
to the bit. The chen2015 ``xi_star`` has the 2D explicit increment divided by ``1 + 6 r + ...``
instead of ``1 + 4 r + ...``, so it is the 2D one only at steady state
(``tests/kernels/test_phase_field_3d.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import counter_rng
from ._jit import JIT_INLINE, JIT_PARALLEL
from .phase_field import CHEN2015, PROFILE_PRESERVING, _wall_ghost


@njit(**JIT_INLINE)
def _gradient(c, xe, xw, yn, ys, zf, zb, inv_dx, inv_dx2):
    """Central gradient and Hessian diagonal of the 7-point stencil."""
    gx = 0.5 * (xe - xw) * inv_dx
    gy = 0.5 * (yn - ys) * inv_dx
    gz = 0.5 * (zf - zb) * inv_dx
    gxx = (xe - 2.0 * c + xw) * inv_dx2
    gyy = (yn - 2.0 * c + ys) * inv_dx2
    gzz = (zf - 2.0 * c + zb) * inv_dx2
    return gx, gy, gz, gxx, gyy, gzz


@njit(**JIT_INLINE)
def _mixed(yn_xe, yn_xw, ys_xe, ys_xw, zf_xe, zf_xw, zb_xe, zb_xw, yn_zf, yn_zb, ys_zf, ys_zb,
           inv_dx2):
    """Mixed second derivatives ``(H_xy, H_xz, H_yz)`` from the 4-point cross stencils."""
    gxy = 0.25 * (yn_xe - yn_xw - ys_xe + ys_xw) * inv_dx2
    gxz = 0.25 * (zf_xe - zf_xw - zb_xe + zb_xw) * inv_dx2
    gyz = 0.25 * (yn_zf - yn_zb - ys_zf + ys_zb) * inv_dx2
    return gxy, gxz, gyz


@njit(**JIT_INLINE)
def _hnn(gx, gy, gz, gxx, gyy, gzz, gxy, gxz, gyz):
    """``g^T H g``; the term order makes it the 2D kernel's sum, to the bit, when ``g_z = 0``
    (x-y plane) or ``g_x = 0`` (z-y plane)."""
    return (gx * gx * gxx + 2.0 * gx * gy * gxy + gz * gz * gzz + 2.0 * gz * gy * gyz
            + gy * gy * gyy + 2.0 * gx * gz * gxz)


@njit(**JIT_INLINE)
def _relax(c, xe, xw, yn, ys, zf, zb, yn_xe, yn_xw, ys_xe, ys_xw, zf_xe, zf_xw, zb_xe, zb_xw,
           yn_zf, yn_zb, ys_zf, ys_zb, formulation, inv_dx, inv_dx2, lam, inv_lam2, mobility, dt,
           r, a_well, eps2):
    """Point-implicit profile update of one cell and its growth factors ``(new, G, G2)``."""
    cc = min(max(c, 0.0), 1.0)
    f = cc * (1.0 - cc) * (1.0 - 2.0 * cc)
    fp = 1.0 - 6.0 * cc + 6.0 * cc * cc
    diag = a_well * fp if fp > 0.0 else 0.0
    gx, gy, gz, gxx, gyy, gzz = _gradient(c, xe, xw, yn, ys, zf, zb, inv_dx, inv_dx2)
    if formulation == PROFILE_PRESERVING:
        gxy, gxz, gyz = _mixed(yn_xe, yn_xw, ys_xe, ys_xw, zf_xe, zf_xw, zb_xe, zb_xw, yn_zf,
                               yn_zb, ys_zf, ys_zb, inv_dx2)
        g2 = gx * gx + gy * gy + gz * gz
        den = g2 + eps2
        hnn = _hnn(gx, gy, gz, gxx, gyy, gzz, gxy, gxz, gyz)
        incr = mobility * (hnn / den - f * inv_lam2)
        diag = a_well + 2.0 * r * g2 / den  # the double well's bound max|f'| = 1 (see 2D)
        return c + dt * incr / (1.0 + diag), math.sqrt(g2), 0.5 * hnn / den
    incr = mobility * (gxx + gyy + gzz - f * inv_lam2)
    diag += 6.0 * r
    return c + dt * incr / (1.0 + diag), 6.0 * cc * cc * (1.0 - cc) * (1.0 - cc) / lam, 0.0


@njit(**JIT_INLINE)
def _update(i, ie, iw, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, mk, out, go, g2o, formulation,
            inv_dx, inv_dx2, lam, inv_lam2, mobility, dt, r, a_well, eps2):
    """Relax cell ``i`` of a row (``ie``/``iw``: its east and west neighbours) into the outputs.

    ``rc`` is the row, ``rn``/``rs`` the rows above/below, ``rf``/``rb`` the rows at ``k + 1``
    and ``k - 1``, ``rnf`` the row above at ``k + 1`` and so on.
    """
    new, ga, gb = _relax(rc[i], rc[ie], rc[iw], rn[i], rs[i], rf[i], rb[i], rn[ie], rn[iw],
                         rs[ie], rs[iw], rf[ie], rf[iw], rb[ie], rb[iw], rnf[i], rnb[i], rsf[i],
                         rsb[i], formulation, inv_dx, inv_dx2, lam, inv_lam2, mobility, dt, r,
                         a_well, eps2)
    out[i] = new
    go[i] = ga if mk[i] else 0.0
    g2o[i] = gb if mk[i] else 0.0


@njit(**JIT_INLINE)
def _kick(i, ie, iw, rc, rn, rs, rf, rb, out, inv_dx, inv_dx2, lam, noise, sq_dt, seed, step,
          index):
    """Add the noise increment ``noise sqrt(dt) (2u - 1) lam |g|`` to ``out[i]``."""
    gx, gy, gz, _, _, _ = _gradient(rc[i], rc[ie], rc[iw], rn[i], rs[i], rf[i], rb[i], inv_dx,
                                    inv_dx2)
    grad = math.sqrt(gx * gx + gy * gy + gz * gz)
    if grad > 0.0:
        u = counter_rng.uniform(seed, counter_rng.STREAM_NOISE, step, index)
        out[i] += noise * sq_dt * (2.0 * u - 1.0) * lam * grad


@njit(**JIT_INLINE)
def _shift(i, ie, iw, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, shift_row, inv_dx, inv_dx2, eps2,
           gt_coeff, anisotropy):
    """Write the Gibbs-Thomson shift ``-gt_coeff s(n) div(g/|g|)`` of cell ``i``."""
    gx, gy, gz, gxx, gyy, gzz = _gradient(rc[i], rc[ie], rc[iw], rn[i], rs[i], rf[i], rb[i],
                                          inv_dx, inv_dx2)
    gxy, gxz, gyz = _mixed(rn[ie], rn[iw], rs[ie], rs[iw], rf[ie], rf[iw], rb[ie], rb[iw], rnf[i],
                           rnb[i], rsf[i], rsb[i], inv_dx2)
    g2 = gx * gx + gy * gy + gz * gz
    den = g2 + eps2
    # |g|^2 tr H - g^T H g, ordered to reduce to the 2D numerator when g_z or g_x is 0
    num = (gxx * gy * gy - 2.0 * gx * gy * gxy + gzz * gy * gy - 2.0 * gz * gy * gyz
           + gyy * gx * gx + gyy * gz * gz + gxx * gz * gz + gzz * gx * gx - 2.0 * gx * gz * gxz)
    curv = num / (den * math.sqrt(den))
    curv = min(max(curv, -inv_dx), inv_dx)
    stiff = 1.0
    if anisotropy != 0.0 and g2 > 0.0:
        # 4 sum n^4 - 3 written as sum n^4 - 6 sum_{a<b} n_a^2 n_b^2 (equal on |n| = 1)
        cubic = (gx**4 - 6.0 * gx * gx * gy * gy + gz**4 - 6.0 * gz * gz * gy * gy + gy**4
                 - 6.0 * gx * gx * gz * gz) / (g2 * g2)
        stiff = 1.0 - 15.0 * anisotropy * cubic
    shift_row[i] = -gt_coeff * stiff * curv


@njit(**JIT_PARALLEL)
def profile_step_3d(xi, wall_active, cos_theta, dx, lam, mobility, dt, formulation, mask,
                    gt_coeff, anisotropy, noise, seed, step, xi_star, geom, geom2, eta_shift):
    """Relax the profile point-implicitly and evaluate the growth geometry, all at time n (3D).

    Per cell (module docstring for the stencils), with ``r = D_xi dt/dx^2``::

        xi* = xi + dt D_xi [L(xi) - f(xi)/lam^2] / (1 + d) + noise
        L = g^T H g/|g|^2, d = 2 r |g|^2/(|g|^2 + eps^2) + a_w   (profile-preserving)
        L = lap_7 xi,      d = 6 r + a_w                          (chen2015)

    with ``a_w = D_xi dt max(f'(xi), 0)/lam^2``. Same arguments and semantics as
    :func:`.phase_field.profile_step`, in 3D.

    Parameters
    ----------
    xi
        Phase field at step n, ``(ny, nz, nx)``, C-contiguous.
    wall_active
        ``(nz, nx)`` uint8: 1 where the substrate under the column is an active site.
    cos_theta
        Cosine of the substrate contact angle (wetting ghost).
    dx, lam
        Cell size and interface width [m].
    mobility
        Profile mobility ``D_xi`` [m2 s-1].
    dt
        Time step [s].
    formulation
        ``PROFILE_PRESERVING`` or ``CHEN2015`` of :mod:`.phase_field`.
    mask
        ``(ny, nz, nx)`` uint8: 1 where the interface may react.
    gt_coeff
        ``gamma V_m / F`` [V m]; 0 switches the Gibbs-Thomson shift off.
    anisotropy
        Cubic anisotropy ``eps4`` of the surface energy (stiffness factor of the shift).
    noise
        Amplitude [s^-1/2] of the interface noise ``noise sqrt(dt) (2u - 1) lam |grad xi|``,
        keyed on (seed, step, ``(j nz + k) nx + i``); 0 for none.
    seed, step
        Keys of the noise.
    xi_star
        Out: the phase field after the profile terms (and noise), ``(ny, nz, nx)``.
    geom
        Out: ``mask`` times the geometric factor ``G`` of growth [m-1].
    geom2
        Out: ``mask`` times ``G2 = d2xi/dn2 / 2`` [m-2] (profile-preserving; 0 for chen2015).
    eta_shift
        Out: Gibbs-Thomson shift of the overpotential [V] (written only when ``gt_coeff != 0``).

    Examples
    --------
    A flat front 12 ``lam`` above an active substrate: ``sum(G) dx`` over a column is 1
    (telescoping).

    >>> import numpy as np
    >>> from fastnai._kernels.phase_field_3d import profile_step_3d
    >>> ny, nz, nx, dx, lam = 36, 2, 3, 1e-8, 1.5e-8
    >>> y = (np.arange(ny) + 0.5) * dx
    >>> xi = np.ascontiguousarray(np.broadcast_to(
    ...     (0.5 * (1.0 - np.tanh((y - 18 * dx) / (2 * lam))))[:, None, None], (ny, nz, nx)))
    >>> wall, mask = np.ones((nz, nx), np.uint8), np.ones((ny, nz, nx), np.uint8)
    >>> xi_star, geom, geom2, shift = (np.zeros_like(xi) for _ in range(4))
    >>> profile_step_3d(xi, wall, 0.0, dx, lam, 1e-10, 1e-7, 0, mask, 0.0, 0.0, 0.0, 0, 0,
    ...                 xi_star, geom, geom2, shift)
    >>> print(f"{geom[:, 1, 2].sum() * dx:.4f}")
    1.0000
    >>> bool(np.abs(xi_star - xi).max() < 1e-3)  # the tanh profile is (nearly) steady
    True
    """
    ny, nz, nx = xi.shape
    inv_dx = 1.0 / dx
    inv_dx2 = inv_dx * inv_dx
    inv_lam2 = 1.0 / (lam * lam)
    r = mobility * dt * inv_dx2
    a_well = mobility * dt * inv_lam2
    eps2 = (1e-6 / lam) ** 2
    sq_dt = math.sqrt(dt)
    # The wall ghost plane below row 0, so that every row, row 0 included, reads row views.
    ghost = np.empty((nz, nx))
    for k in range(nz):
        for i in range(nx):
            ghost[k, i] = _wall_ghost(xi[0, k, i], wall_active[k, i], cos_theta, dx, lam)
    n_edges = 2 if nx > 1 else 1  # the periodic edge cells i = 0 and nx - 1
    for j in prange(ny):
        for k in range(nz):
            kf = k + 1 if k + 1 < nz else 0
            kb = k - 1 if k > 0 else nz - 1
            rc = xi[j, k]
            rf = xi[j, kf]
            rb = xi[j, kb]
            if j + 1 < ny:
                rn = xi[j + 1, k]
                rnf = xi[j + 1, kf]
                rnb = xi[j + 1, kb]
            else:  # the mirror above the top row is the row itself
                rn = rc
                rnf = rf
                rnb = rb
            if j > 0:
                rs = xi[j - 1, k]
                rsf = xi[j - 1, kf]
                rsb = xi[j - 1, kb]
            else:
                rs = ghost[k]
                rsf = ghost[kf]
                rsb = ghost[kb]
            out = xi_star[j, k]
            go = geom[j, k]
            g2o = geom2[j, k]
            mk = mask[j, k]
            # the two periodic edge cells by compare-wrap, the interior with affine indices and
            # the formulation fixed, so that the interior loops vectorise
            for e in range(n_edges):
                i = 0 if e == 0 else nx - 1
                ie = i + 1 if i + 1 < nx else 0
                iw = i - 1 if i > 0 else nx - 1
                _update(i, ie, iw, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, mk, out, go, g2o,
                        formulation, inv_dx, inv_dx2, lam, inv_lam2, mobility, dt, r, a_well,
                        eps2)
            if formulation == PROFILE_PRESERVING:
                for i in range(1, nx - 1):
                    _update(i, i + 1, i - 1, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, mk, out, go,
                            g2o, PROFILE_PRESERVING, inv_dx, inv_dx2, lam, inv_lam2, mobility,
                            dt, r, a_well, eps2)
            else:
                for i in range(1, nx - 1):
                    _update(i, i + 1, i - 1, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, mk, out, go,
                            g2o, CHEN2015, inv_dx, inv_dx2, lam, inv_lam2, mobility, dt, r,
                            a_well, eps2)
            # noise and Gibbs-Thomson: extra passes only when on, so the main loops stay lean
            if gt_coeff != 0.0:
                sh = eta_shift[j, k]
                for e in range(n_edges):
                    i = 0 if e == 0 else nx - 1
                    ie = i + 1 if i + 1 < nx else 0
                    iw = i - 1 if i > 0 else nx - 1
                    _shift(i, ie, iw, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, sh, inv_dx, inv_dx2,
                           eps2, gt_coeff, anisotropy)
                for i in range(1, nx - 1):
                    _shift(i, i + 1, i - 1, rc, rn, rs, rf, rb, rnf, rnb, rsf, rsb, sh, inv_dx,
                           inv_dx2, eps2, gt_coeff, anisotropy)
            if noise != 0.0:
                base = (j * nz + k) * nx
                for i in range(nx):
                    ie = i + 1 if i + 1 < nx else 0
                    iw = i - 1 if i > 0 else nx - 1
                    _kick(i, ie, iw, rc, rn, rs, rf, rb, out, inv_dx, inv_dx2, lam, noise, sq_dt,
                          seed, step, base + i)
