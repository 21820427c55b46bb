"""Small-signal impedance of the drift-diffusion electrode: complex block-tridiagonal solves.

About a state z (Newton unknowns psi, ell, phi per node, :mod:`.drift_diffusion`), the model's
discrete equations are ``M dz/dt + K(z, V) = 0``: the rows of
:func:`~fastnai._kernels.drift_diffusion.assemble` at alpha0 = 0 and dt = 1 are K (fluxes,
Butler-Volmer, Poisson and the Dirichlet rows), and its node terms at alpha0 = 1 less those
are M (:func:`mass_blocks`: vol dc/d ell in the Na+ rows, vol de/d(psi, phi) in the electron
rows). A voltage V(t) = V + Re(dV e^{i w t}) moves the state by Re(dz e^{i w t}) with

    (i w M + dK/dz) dz = -(dK/dV) dV,

dK/dz the blocks of ``assemble`` and dK/dV its border column (-1 in the Dirichlet rows of the
contact and of the flat quasi-Fermi level). The current through the electrolyte interface
(anodic positive) answers with

    dI = (d(A_s j)/dz) . dz + i w C_dl A_s dpsi_s,

the border row of ``assemble`` plus a double layer of capacitance C_dl per area across the
interface, charged by the inner potential psi_s of the electrolyte node (psi = V with the
electrostatics off). The admittance dI/dV of every frequency and particle is one solve: the
frequencies are independent and run in parallel, and a particle's solve is the block Thomas
elimination of :func:`~fastnai._kernels.block_tridiagonal.solve_block_tridiagonal` in complex
arithmetic (each scalar row scaled by its largest coefficient, partial pivoting inside the
3 x 3 pivots, sizes measured by |Re| + |Im| as LAPACK does: 1.6x faster than the modulus).
The sum over particles is in particle order, so the result does not depend on
the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import drift_diffusion as kdd
from . import poisson
from ._jit import JIT, JIT_INLINE, JIT_PARALLEL


@njit(**JIT)
def mass_blocks(z, vol, region, params, tables, sc, site_energy, out):
    """Diagonal blocks M (n, 3, 3) of d(node terms)/dz per unit alpha0 into ``out``.

    Equal to ``assemble(alpha0=1).diag - assemble(alpha0=0).diag`` without the round-off of
    the difference. Rows replaced by Dirichlet conditions (the electron row of the contact
    node) hold no mass.
    """
    n = z.shape[0]
    dd = sc[kdd.S_ELECTRONS] == kdd.ELECTRONS_DRIFT_DIFFUSION
    reg = -1
    consts = poisson.charge_constants(params[0])
    for i in range(n):
        if region[i] != reg:
            reg = region[i]
            consts = poisson.charge_constants(params[reg])
        c, dc, e, de, rho, drho_x, mu, dmu, nn, dnn = kdd._node(z, i, consts, reg, sc, tables,
                                                               site_energy)
        for r in range(3):
            for q in range(3):
                out[i, r, q] = 0.0
        out[i, 1, 1] = vol[i] * dc
        if dd and i > 0:
            out[i, 2, 0] = vol[i] * de
            out[i, 2, 2] = -vol[i] * de


@njit(**JIT_INLINE)
def _size(z):
    """|Re z| + |Im z|: within a factor sqrt 2 of the modulus, without a square root (the
    measure LAPACK's complex pivoting uses, CABS1)."""
    return abs(z.real) + abs(z.imag)


@njit(**JIT_INLINE)
def _pivot_solve3(piv, sol, m):
    """Overwrite ``sol`` (3 x m, complex) with piv^-1 sol; ``piv`` (3 x 3) is destroyed.
    Gaussian elimination with partial pivoting by :func:`_size`."""
    for col in range(3):
        best = _size(piv[col, col])
        p = col
        for r in range(col + 1, 3):
            if _size(piv[r, col]) > best:
                best = _size(piv[r, col])
                p = r
        if p != col:
            for c in range(3):
                tmp = piv[col, c]
                piv[col, c] = piv[p, c]
                piv[p, c] = tmp
            for c in range(m):
                tmp = sol[col, c]
                sol[col, c] = sol[p, c]
                sol[p, c] = tmp
        inv = 1.0 / piv[col, col]
        for r in range(col + 1, 3):
            f = piv[r, col] * inv
            for c in range(col + 1, 3):
                piv[r, c] -= f * piv[col, c]
            for c in range(m):
                sol[r, c] -= f * sol[col, c]
    for col in range(2, -1, -1):
        inv = 1.0 / piv[col, col]
        for c in range(m):
            acc = sol[col, c]
            for j in range(col + 1, 3):
                acc -= piv[col, j] * sol[j, c]
            sol[col, c] = acc * inv


@njit(**JIT)
def solve_shifted(lower, diag, upper, mass, omega, rhs, out, work):
    """Solve (lower, diag + i omega mass, upper) x = rhs for one complex x (n, 3) into ``out``.

    ``lower``, ``diag``, ``upper``, ``mass`` (n, 3, 3) real blocks; ``rhs`` (n, 3) real;
    ``work`` (n, 3, 3) complex scratch (D_i^-1 C_i of the back substitution).
    """
    n = diag.shape[0]
    piv = np.empty((3, 3), dtype=np.complex128)
    sol = np.empty((3, 4), dtype=np.complex128)
    for i in range(n):
        for r in range(3):
            big = 0.0
            for c in range(3):
                big = max(big, abs(diag[i, r, c]) + abs(omega * mass[i, r, c]))
                if i > 0:
                    big = max(big, abs(lower[i, r, c]))
                if i < n - 1:
                    big = max(big, abs(upper[i, r, c]))
            scale = 1.0 / big if big > 0.0 else 1.0
            for c in range(3):
                # real block times complex vector: two real products each, not a complex one
                re = diag[i, r, c]
                im = omega * mass[i, r, c]
                if i > 0:
                    for j in range(3):
                        a = lower[i, r, j]
                        zz = work[i - 1, j, c]
                        re -= a * zz.real
                        im -= a * zz.imag
                piv[r, c] = complex(re * scale, im * scale)
                sol[r, c] = upper[i, r, c] * scale if i < n - 1 else 0.0
            re = rhs[i, r]
            im = 0.0
            if i > 0:
                for j in range(3):
                    a = lower[i, r, j]
                    zz = out[i - 1, j]
                    re -= a * zz.real
                    im -= a * zz.imag
            sol[r, 3] = complex(re * scale, im * scale)
        _pivot_solve3(piv, sol, 4)
        for r in range(3):
            for c in range(3):
                work[i, r, c] = sol[r, c]
            out[i, r] = sol[r, 3]
    for i in range(n - 2, -1, -1):
        for r in range(3):
            acc = out[i, r]
            for c in range(3):
                acc -= work[i, r, c] * out[i + 1, c]
            out[i, r] = acc


@njit(**JIT)
def _admittance_one(lower, diag, upper, mass, bcol, brow, s_node, cdl_area, omega, x, work,
                    rhs):
    """dI/dV of one particle at one angular frequency (scratch ``x``, ``work``, ``rhs``)."""
    n = diag.shape[0]
    for i in range(n):
        for r in range(3):
            rhs[i, r] = -bcol[i, r]
    solve_shifted(lower, diag, upper, mass, omega, rhs, x, work)
    acc = 0.0j
    for i in range(n):
        for r in range(3):
            acc += brow[i, r] * x[i, r]
    return acc + 1j * omega * cdl_area * x[s_node, 0]


@njit(**JIT_PARALLEL)
def admittance(lower, diag, upper, mass, bcol, brow, s_nodes, cdl_area, omegas, out):
    """Admittance dI/dV [A V-1 in the units of A_s j] of P particles at every angular frequency.

    Parameters
    ----------
    lower, diag, upper
        dK/dz blocks of each particle, (P, n, 3, 3) (``assemble`` at alpha0 = 0, dt = 1).
    mass
        :func:`mass_blocks` of each particle, (P, n, 3, 3).
    bcol, brow
        dK/dV and d(A_s j)/dz of each particle, (P, n, 3) (``assemble`` galvanostatic).
    s_nodes
        Electrolyte node of each particle (P,), integer.
    cdl_area
        C_dl A_s of each particle (P,) [F in the units of A_s].
    omegas
        Angular frequencies (F,) [rad s-1].
    out
        (F, P) complex: each particle's admittance; the total is the sum over the particles.
    """
    n_f = omegas.shape[0]
    n_p = diag.shape[0]
    n = diag.shape[1]
    for k in prange(n_f * n_p):
        f = k // n_p
        p = k - f * n_p
        x = np.empty((n, 3), dtype=np.complex128)
        work = np.empty((n, 3, 3), dtype=np.complex128)
        rhs = np.empty((n, 3))
        out[f, p] = _admittance_one(lower[p], diag[p], upper[p], mass[p], bcol[p], brow[p],
                                    s_nodes[p], cdl_area[p], omegas[f], x, work, rhs)


@njit(**JIT)
def response(lower, diag, upper, mass, bcol, omega, out):
    """The state's response dz/dV (n, 3) of one particle at one angular frequency into ``out``
    (complex): for the drift diagnostics and tests."""
    n = diag.shape[0]
    rhs = np.empty((n, 3))
    for i in range(n):
        for r in range(3):
            rhs[i, r] = -bcol[i, r]
    solve_shifted(lower, diag, upper, mass, omega, rhs, out,
                  np.empty((n, 3, 3), dtype=np.complex128))
