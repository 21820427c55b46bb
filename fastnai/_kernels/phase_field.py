"""2D phase-field kernels of Na deposition: profile relaxation, Faradaic growth, reductions.

Grid and conventions
--------------------
Cell-centred fields of shape ``(ny, nx)``: row ``j`` is height ``y = (j + 1/2) dx`` above the
substrate, column ``i`` is ``x = (i + 1/2) dx``; periodic in x. ``xi = 1`` is Na metal, ``0``
electrolyte. Below row 0 lies the substrate (SEI-covered Na or the VN layer). Its ghost value
is, per column, ``1`` where a nucleation site is *active* (exposed metal that reacts and that
the deposit grows from) and otherwise the wetting (contact-angle) condition on a passivated
wall, ``d xi/dy = -cos(theta_c) |grad xi|`` with the profile's ``|grad xi| = xi (1 - xi)/lam``:
a metal-electrolyte interface meets the wall at the angle theta_c (measured through the metal).
Above the top row the ghost equals the top row (no flux; the top is electrolyte).

Phase-field equation (SPEC 3.4)
-------------------------------
The equilibrium profile ``xi = [1 - tanh(n / (2 lam))]/2`` across an interface of normal
coordinate ``n`` has ``|grad xi| = xi (1 - xi)/lam`` and ``xi'' = f(xi)/lam^2`` with
``f(xi) = xi (1 - xi)(1 - 2 xi)``; the double-well parameters of the SPEC (``kappa = 6 gamma
lam``, ``W = 3 gamma / lam``) give ``kappa xi'' = 2 W f``, so the profile terms are, with the
profile mobility ``D_xi = L kappa`` [m2 s-1],

- profile-preserving (Sun and Beckermann, J. Comput. Phys. 220, 626 (2007),
  doi:10.1016/j.jcp.2006.05.025): ``D_xi [lap xi - f/lam^2 - |grad xi| div(grad xi/|grad
  xi|)] = D_xi [d2xi/dn2 - f/lam^2]``: the curvature part of the Laplacian is removed, so the
  profile is restored without moving the interface; what remains is the second derivative
  along the normal, ``(xi_x^2 xi_xx + 2 xi_x xi_y xi_xy + xi_y^2 xi_yy)/|grad xi|^2``;
- ``chen2015`` (Chen et al., J. Power Sources 300, 376 (2015),
  doi:10.1016/j.jpowsour.2015.09.055): ``D_xi [lap xi - f/lam^2]``, Allen-Cahn, which also
  moves curved interfaces by their curvature (``D_xi = L_sigma kappa``).

Both are advanced point-implicitly: the increment of explicit Euler is divided by ``1 + d``
with ``d`` the diagonal of the stiff terms (``2 r`` of the normal second derivative, ``4 r``
of the Laplacian, ``r = D_xi dt/dx^2``, plus ``D_xi dt max(f', 0)/lam^2`` of the double well;
``D_xi dt max|f'|/lam^2 = D_xi dt/lam^2`` in the profile-preserving form, whose
normal-derivative diagonal vanishes where ``|grad xi|`` does: at a saddle between coalescing
nuclei, inside the band where ``f' < 0``, the double well would otherwise be explicit and step
out of [0, 1]).
This is a Jacobi-preconditioned Euler step: it keeps the same steady profile as the explicit
scheme, and its amplification factor ``(1 - 2r)/(1 + 2r)`` (1D, worst mode) lies in (-1, 1]
for every ``r``, so the step is limited by front motion, not by the profile terms.

Growth (the Faradaic part) is then added explicitly: ``xi += a G + a^2 G2``, ``a = dt v_n``,
with the geometric
factor ``G = |grad xi|`` (profile-preserving: ``d xi/dt = v_n |grad xi|`` moves the profile
along its normal at ``v_n``; ``sum |grad xi| dx`` across a monotone profile telescopes to 1, so
a flat front moves at exactly ``v_n``) or ``G = h'(xi)/(5 lam) = 6 xi^2 (1 - xi)^2 / lam``
(chen2015: ``h = xi^3 (6 xi^2 - 15 xi + 10)``; ``int h'(xi) dn = 5 lam`` over the profile,
which is what ties Chen's ``L_eta = j0/(n F c_s 5 lam)`` to the exchange current) and the
second-order term ``G2 = (d2xi/dn2)/2`` (profile-preserving only: the Taylor term of a shift by
``a`` along the normal; it sums to zero across a profile, so it adds no Na, but without it the
profile terms relax the first-order shift's distortion away and lose about ``0.2 C`` of the
growth at front Courant number ``C``). The Chen 2015 source, relaxed by Allen-Cahn, moves a
flat front at 6/5 of ``v_n`` under potential control: its projection on the profile's mode,
``int h'(xi) xi' dn / int xi'^2 dn``, is ``1/(5 lam)`` over ``1/(6 lam)``. The normal
velocity is ``v_n = -(V_m / F) j_BV(eta)`` (positive for plating), with the anodic-positive
concentration-dependent Butler-Volmer current (Newman and Thomas-Alyea, Electrochemical
Systems, 3rd ed., eq. 8.8, doi:10.1002/9780470868935)

    j_BV = j0 (c / c_ref)^alpha_a [exp(alpha_a F eta / RT) - exp(-alpha_c F eta / RT)],
    eta = V - Phi + eta_GT,

where ``V`` is the metal's potential and ``Phi`` the electrolyte potential measured by a Na
reference electrode (``phi_l + (RT/F) ln(c / c_ref)``), so ``eta`` is the overpotential
against the local Nernst potential. ``eta_GT = -(gamma V_m / F) (1 - 15 eps4 cos 4 phi)
div(grad xi/|grad xi|)`` is the optional Gibbs-Thomson shift (a convex metal tip has a lower
equilibrium potential; ``1 - 15 eps4 cos 4 phi`` is the surface stiffness of a 4-fold
anisotropic ``gamma (1 + eps4 cos 4 phi)``, phi the normal's angle).

Reductions are over fixed row chunks (:data:`N_CHUNKS`), summed in chunk order: the sums, and
so the galvanostatic voltage, are the same bits on any number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import counter_rng
from ._jit import JIT, JIT_INLINE, JIT_PARALLEL

#: Fixed number of row chunks of the deterministic reductions.
N_CHUNKS = 64

PROFILE_PRESERVING = 0
CHEN2015 = 1


@njit(**JIT_INLINE)
def _wall_ghost(xi0, active, cos_theta, dx, lam):
    """Ghost value below row 0: exposed metal at an active site, else the wetting condition."""
    if active:
        return 1.0
    g = xi0 + dx * cos_theta * xi0 * (1.0 - xi0) / lam
    if g > 1.0:
        return 1.0
    if g < 0.0:
        return 0.0
    return g


# The boundary path's helpers are ordinary compiled calls (LLVM still inlines what pays):
# inlining them at Numba IR level into the four call sites made profile_step take ~45 s to
# compile.
@njit(**JIT)
def _cell(xi, wall_active, cos_theta, dx, lam, j, i, ny, nx):
    """xi at (j, i), ``-nx <= i < 2 nx``: periodic x, the wall ghost below row 0, a mirror on top."""
    if i >= nx:
        i -= nx
    elif i < 0:
        i += nx
    if j < 0:
        return _wall_ghost(xi[0, i], wall_active[i], cos_theta, dx, lam)
    if j >= ny:
        return xi[ny - 1, i]
    return xi[j, i]


@njit(**JIT_INLINE)
def _relax(c, e, w, n, s, ne, nw, se, sw, formulation, inv_dx, inv_dx2, lam, inv_lam2,
           mobility, dt, r, a_well, eps2):
    """Point-implicit profile update of one cell and its growth factors ``(new, G, G2)``."""
    cc = min(max(c, 0.0), 1.0)
    f = cc * (1.0 - cc) * (1.0 - 2.0 * cc)
    fp = 1.0 - 6.0 * cc + 6.0 * cc * cc
    diag = a_well * fp if fp > 0.0 else 0.0
    gxx = (e - 2.0 * c + w) * inv_dx2
    gyy = (n - 2.0 * c + s) * inv_dx2
    if formulation == PROFILE_PRESERVING:
        gx = 0.5 * (e - w) * inv_dx
        gy = 0.5 * (n - s) * inv_dx
        gxy = 0.25 * (ne - nw - se + sw) * inv_dx2
        g2 = gx * gx + gy * gy
        den = g2 + eps2
        hnn = gx * gx * gxx + 2.0 * gx * gy * gxy + gy * gy * gyy
        incr = mobility * (hnn / den - f * inv_lam2)
        # the double well's Lipschitz bound max|f'| = 1 in the divisor: where |grad xi|
        # vanishes inside the band (a saddle between coalescing nuclei, f' < 0) nothing else
        # bounds its step, and with it xi + dt D (-f)/lam^2 / (1 + dt D/lam^2) stays in [0, 1]
        diag = a_well + 2.0 * r * g2 / den
        return c + dt * incr / (1.0 + diag), math.sqrt(g2), 0.5 * hnn / den
    incr = mobility * (gxx + gyy - f * inv_lam2)
    diag += 4.0 * r
    return c + dt * incr / (1.0 + diag), 6.0 * cc * cc * (1.0 - cc) * (1.0 - cc) / lam, 0.0


@njit(**JIT)
def _extras(c, e, w, n, s, ne, nw, se, sw, inv_dx, inv_dx2, eps2, lam, noise, sq_dt, seed, step,
            k, gt_coeff, anisotropy):
    """Noise increment and Gibbs-Thomson shift of one cell (0 where switched off)."""
    gx = 0.5 * (e - w) * inv_dx
    gy = 0.5 * (n - s) * inv_dx
    g2 = gx * gx + gy * gy
    grad = math.sqrt(g2)
    kick = 0.0
    if noise != 0.0 and grad > 0.0:
        u = counter_rng.uniform(seed, counter_rng.STREAM_NOISE, step, k)
        kick = noise * sq_dt * (2.0 * u - 1.0) * lam * grad
    shift = 0.0
    if gt_coeff != 0.0:
        gxx = (e - 2.0 * c + w) * inv_dx2
        gyy = (n - 2.0 * c + s) * inv_dx2
        gxy = 0.25 * (ne - nw - se + sw) * inv_dx2
        den = g2 + eps2
        curv = (gxx * gy * gy - 2.0 * gx * gy * gxy + gyy * gx * gx) / (den * math.sqrt(den))
        curv = min(max(curv, -inv_dx), inv_dx)
        stiff = 1.0
        if anisotropy != 0.0 and g2 > 0.0:
            cos4 = (gx**4 - 6.0 * gx * gx * gy * gy + gy**4) / (g2 * g2)
            stiff = 1.0 - 15.0 * anisotropy * cos4
        shift = -gt_coeff * stiff * curv
    return kick, shift


@njit(**JIT)
def _stencil(xi, wall_active, cos_theta, dx, lam, j, i, ny, nx):
    """The nine values around (j, i) with the boundary conditions (:func:`_cell`)."""
    return (xi[j, i],
            _cell(xi, wall_active, cos_theta, dx, lam, j, i + 1, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j, i - 1, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j + 1, i, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j - 1, i, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j + 1, i + 1, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j + 1, i - 1, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j - 1, i + 1, ny, nx),
            _cell(xi, wall_active, cos_theta, dx, lam, j - 1, i - 1, ny, nx))


@njit(**JIT_PARALLEL)
def profile_step(xi, wall_active, cos_theta, dx, lam, mobility, dt, formulation, mask,
                 gt_coeff, anisotropy, noise, seed, step, xi_star, geom, geom2, eta_shift):
    """Relax the profile point-implicitly and evaluate the growth geometry, all at time n.

    Parameters
    ----------
    xi
        Phase field at step n, ``(ny, nx)``.
    wall_active
        ``(nx,)`` uint8: 1 where the substrate under the column is an active site.
    cos_theta
        Cosine of the substrate contact angle (wetting ghost).
    dx, lam
        Cell size and interface width [m].
    mobility
        Profile mobility ``D_xi`` [m2 s-1].
    dt
        Time step [s].
    formulation
        :data:`PROFILE_PRESERVING` or :data:`CHEN2015`.
    mask
        ``(ny, nx)`` uint8: 1 where the interface may react (metal connected to an active site).
    gt_coeff
        ``gamma V_m / F`` [V m]; 0 switches the Gibbs-Thomson shift off.
    anisotropy
        4-fold anisotropy ``eps4`` of the surface energy (stiffness factor of the shift).
    noise
        Amplitude [s^-1/2] of the interface noise ``noise sqrt(dt) (2u - 1) lam |grad xi|``, a
        numerical perturbation keyed on (seed, step, cell); 0 for none.
    seed, step
        Keys of the noise.
    xi_star
        Out: the phase field after the profile terms (and noise).
    geom
        Out: ``mask`` times the geometric factor ``G`` of growth [m-1].
    geom2
        Out: ``mask`` times the second-order factor ``G2 = d2xi/dn2 / 2`` [m-2]
        (profile-preserving; 0 for chen2015).
    eta_shift
        Out: Gibbs-Thomson shift of the overpotential [V] (written only when ``gt_coeff != 0``).
    """
    ny, nx = xi.shape
    inv_dx = 1.0 / dx
    inv_dx2 = inv_dx * inv_dx
    inv_lam2 = 1.0 / (lam * lam)
    r = mobility * dt * inv_dx2
    a_well = mobility * dt * inv_lam2
    eps2 = (1e-6 / lam) ** 2
    sq_dt = math.sqrt(dt)
    extras = noise != 0.0 or gt_coeff != 0.0
    for j in prange(ny):
        # Row views: above the top row the mirror is the row itself. Row 0 (the wall ghost
        # below it) and the two periodic edge columns go through _cell; the interior of every
        # other row has affine indices, so the loop vectorises.
        rc = xi[j]
        rn = xi[j + 1] if j + 1 < ny else xi[j]
        rs = xi[j - 1] if j > 0 else xi[j]
        out = xi_star[j]
        go = geom[j]
        g2o = geom2[j]
        mk = mask[j]
        lo = 1 if j > 0 else nx
        for i in range(nx):
            if i == lo:  # the interior of a row with j > 0: jump to the vectorised loop
                break
            c, e, w, n, s, ne, nw, se, sw = _stencil(xi, wall_active, cos_theta, dx, lam, j, i,
                                                     ny, nx)
            new, ga, gb = _relax(c, e, w, n, s, ne, nw, se, sw, formulation, inv_dx, inv_dx2,
                                 lam, inv_lam2, mobility, dt, r, a_well, eps2)
            out[i] = new
            go[i] = ga if mk[i] else 0.0
            g2o[i] = gb if mk[i] else 0.0
        if j > 0:
            if formulation == PROFILE_PRESERVING:
                for i in range(1, nx - 1):
                    new, ga, gb = _relax(rc[i], rc[i + 1], rc[i - 1], rn[i], rs[i], rn[i + 1],
                                         rn[i - 1], rs[i + 1], rs[i - 1], PROFILE_PRESERVING,
                                         inv_dx, inv_dx2, lam, inv_lam2, mobility, dt, r,
                                         a_well, eps2)
                    out[i] = new
                    go[i] = ga if mk[i] else 0.0
                    g2o[i] = gb if mk[i] else 0.0
            else:
                for i in range(1, nx - 1):
                    new, ga, gb = _relax(rc[i], rc[i + 1], rc[i - 1], rn[i], rs[i], 0.0, 0.0,
                                         0.0, 0.0, CHEN2015, inv_dx, inv_dx2, lam, inv_lam2,
                                         mobility, dt, r, a_well, eps2)
                    out[i] = new
                    go[i] = ga if mk[i] else 0.0
                    g2o[i] = 0.0
            if nx > 1:
                i = nx - 1
                c, e, w, n, s, ne, nw, se, sw = _stencil(xi, wall_active, cos_theta, dx, lam, j,
                                                         i, ny, nx)
                new, ga, gb = _relax(c, e, w, n, s, ne, nw, se, sw, formulation, inv_dx, inv_dx2,
                                     lam, inv_lam2, mobility, dt, r, a_well, eps2)
                out[i] = new
                go[i] = ga if mk[i] else 0.0
                g2o[i] = gb if mk[i] else 0.0
        if extras:  # noise and Gibbs-Thomson: a second pass, so the main loops stay lean
            for i in range(nx):
                c, e, w, n, s, ne, nw, se, sw = _stencil(xi, wall_active, cos_theta, dx, lam, j,
                                                         i, ny, nx)
                kick, shift = _extras(c, e, w, n, s, ne, nw, se, sw, inv_dx, inv_dx2, eps2, lam,
                                      noise, sq_dt, seed, step, j * nx + i, gt_coeff, anisotropy)
                out[i] += kick
                if gt_coeff != 0.0:
                    eta_shift[j, i] = shift


@njit(**JIT_INLINE)
def _bv(eta, cf, j0, alpha_a, alpha_c, f_rt):
    """Butler-Volmer current [A m-2] and its derivative in eta, anodic positive."""
    ea = math.exp(alpha_a * f_rt * eta)
    ec = math.exp(-alpha_c * f_rt * eta)
    k = j0 * cf
    return k * (ea - ec), k * f_rt * (alpha_a * ea + alpha_c * ec)


@njit(**JIT_INLINE)
def _conc_factor(c, inv_c_ref, alpha_a, c_floor):
    cr = c * inv_c_ref
    if cr < c_floor:
        cr = c_floor
    return cr ** alpha_a


@njit(**JIT_INLINE)
def _cell_current(voltage, j, i, phi, conc, eta_shift, use_shift, j0, inv_c_ref, alpha_a, alpha_c,
                  f_rt, c_floor):
    """Butler-Volmer current of cell (j, i) at metal potential ``voltage``, and d/dV."""
    eta = voltage - phi[j, i]
    if use_shift:
        eta += eta_shift[j, i]
    cf = _conc_factor(conc[j, i], inv_c_ref, alpha_a, c_floor)
    return _bv(eta, cf, j0, alpha_a, alpha_c, f_rt)


@njit(**JIT_PARALLEL)
def growth_sum(voltage, xi_star, geom, geom2, phi, conc, eta_shift, use_shift, j0, inv_c_ref,
               alpha_a, alpha_c, f_rt, speed, dt, c_floor, partial):
    """Total change ``sum(xi_new - xi_star)`` and its derivative in the metal potential ``V``.

    ``xi_new = clip(xi_star + a G + a^2 G2, 0, 1)`` with ``a = dt v_n(eta)``, ``v_n = -speed
    j_BV`` (``speed = V_m/F``): the profile shifted by ``a`` along its normal to second order
    (Lax-Wendroff; the first-order shift alone loses Na to the profile terms at a rate that
    grows with the front Courant number). ``partial`` is ``(N_CHUNKS, 2)`` scratch; the chunks
    are summed in order.
    """
    ny, nx = xi_star.shape
    nch = min(N_CHUNKS, ny)
    for ch in prange(nch):
        j_lo = ch * ny // nch
        j_hi = (ch + 1) * ny // nch
        s = 0.0
        ds = 0.0
        for j in range(j_lo, j_hi):
            for i in range(nx):
                g = geom[j, i]
                if g == 0.0:
                    continue
                jb, djb = _cell_current(voltage, j, i, phi, conc, eta_shift, use_shift, j0, inv_c_ref,
                                        alpha_a, alpha_c, f_rt, c_floor)
                x0 = xi_star[j, i]
                a = -dt * speed * jb
                g2 = geom2[j, i]
                x1 = x0 + a * (g + a * g2)
                if x1 > 1.0:
                    s += 1.0 - x0
                elif x1 < 0.0:
                    s -= x0
                else:  # the increment itself, not x1 - x0: its relative precision at any dt
                    s += a * (g + a * g2)
                    ds -= dt * speed * djb * (g + 2.0 * a * g2)
        partial[ch, 0] = s
        partial[ch, 1] = ds
    total = 0.0
    dtotal = 0.0
    for ch in range(nch):
        total += partial[ch, 0]
        dtotal += partial[ch, 1]
    return total, dtotal


@njit(**JIT_PARALLEL)
def apply_growth(voltage, xi, xi_star, geom, geom2, phi, conc, eta_shift, use_shift, j0,
                 inv_c_ref, alpha_a, alpha_c, f_rt, speed, dt, c_floor, c_s, xi_new, source):
    """Write ``xi_new`` and the Faradaic source ``c_s (xi_new - xi)/dt`` [mol m-3 s-1].

    The source is the whole change of the state over the step (growth, profile terms and
    noise), so the Na that leaves the electrolyte is exactly the Na the phase field gains.
    """
    ny, nx = xi.shape
    inv_dt = 1.0 / dt
    for j in prange(ny):
        for i in range(nx):
            x1 = xi_star[j, i]
            g = geom[j, i]
            if g != 0.0:
                jb, _ = _cell_current(voltage, j, i, phi, conc, eta_shift, use_shift, j0, inv_c_ref,
                                      alpha_a, alpha_c, f_rt, c_floor)
                a = -dt * speed * jb
                x1 = x1 + a * (g + a * geom2[j, i])
            x1 = min(max(x1, 0.0), 1.0)
            xi_new[j, i] = x1
            source[j, i] = c_s * (x1 - xi[j, i]) * inv_dt


@njit(**JIT_PARALLEL)
def field_sum(a, partial):
    """``sum(a)`` over fixed row chunks summed in order (thread-count independent)."""
    ny, nx = a.shape
    nch = min(N_CHUNKS, ny)
    for ch in prange(nch):
        s = 0.0
        for j in range(ch * ny // nch, (ch + 1) * ny // nch):
            for i in range(nx):
                s += a[j, i]
        partial[ch, 0] = s
    total = 0.0
    for ch in range(nch):
        total += partial[ch, 0]
    return total


@njit(**JIT_PARALLEL)
def difference_sum(a, b, partial):
    """``sum(a - b)`` over fixed row chunks summed in order: the change of a field over a
    step to the precision of the change (two :func:`field_sum` differenced lose it to
    cancellation when the change is small)."""
    ny, nx = a.shape
    nch = min(N_CHUNKS, ny)
    for ch in prange(nch):
        s = 0.0
        for j in range(ch * ny // nch, (ch + 1) * ny // nch):
            for i in range(nx):
                s += a[j, i] - b[j, i]
        partial[ch, 0] = s
    total = 0.0
    for ch in range(nch):
        total += partial[ch, 0]
    return total


@njit(**JIT_PARALLEL)
def max_speed(voltage, geom, phi, conc, eta_shift, use_shift, j0, inv_c_ref, alpha_a, alpha_c,
              f_rt, speed, c_floor):
    """Largest ``|v_n|`` over the reacting cells [m s-1] (for the front-motion step limit)."""
    ny, nx = geom.shape
    best = np.zeros(ny)
    for j in prange(ny):
        m = 0.0
        for i in range(nx):
            if geom[j, i] == 0.0:
                continue
            jb, _ = _cell_current(voltage, j, i, phi, conc, eta_shift, use_shift, j0, inv_c_ref,
                                  alpha_a, alpha_c, f_rt, c_floor)
            v = abs(speed * jb)
            if v > m:
                m = v
        best[j] = m
    return best.max()


@njit(**JIT)
def activate_sites(voltage, phi_wall, site_ptr, site_cells, active, rate_prefactor,
                   barrier_coeff, f_theta, kT, dt, seed, step, activation_step):
    """Poisson activation of the substrate's passivated sites over one step.

    Site ``k`` covers the wall cells ``site_cells[site_ptr[k]:site_ptr[k + 1]]`` (flat indices
    of the first cell layer, 2D or 3D); its overpotential is ``eta = V - mean(Phi)`` over
    them (``phi_wall`` is Phi of that layer, flattened). A cathodic ``eta < 0`` gives the
    classical nucleation rate ``k = A exp(-f(theta_c) dG*_hom(eta) / kT)`` with ``dG*_hom =
    barrier_coeff / eta^2`` (``16 pi gamma^3 Omega^2 / (3 e^2)``) and ``A = N_site nu0``; the
    site activates in the step with probability ``1 - exp(-k dt)``, drawn from the
    counter-based generator keyed on (seed, step, site). Returns the number activated.
    """
    count = 0
    for k in range(site_ptr.shape[0] - 1):
        if active[k]:
            continue
        eta = 0.0
        for p in range(site_ptr[k], site_ptr[k + 1]):
            eta += phi_wall[site_cells[p]]
        eta = voltage - eta / (site_ptr[k + 1] - site_ptr[k])
        if eta >= 0.0:
            continue
        barrier = f_theta * barrier_coeff / (eta * eta) / kT
        rate = rate_prefactor * math.exp(-barrier)
        p = -math.expm1(-rate * dt)
        if counter_rng.uniform(seed, counter_rng.STREAM_ACTIVATION, step, k) < p:
            active[k] = 1
            activation_step[k] = step
            count += 1
    return count
