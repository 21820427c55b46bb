"""Finite-volume electrolyte operators (fastnai._kernels.electrolyte) against their definitions.

The operator is ``(A u)_k = M_k u_k + sum_faces K_f (u_k - u_nb)``: these tests build the same
matrix face by face with scipy.sparse, check symmetry, conservation (the faces telescope),
second-order convergence to a closed form, and that 3D reduces to 2D for fields uniform in z.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fastnai._kernels import electrolyte as ke

PSI_MIN = 1e-3


def assemble(psi, lat, *, coef=1.3, mass=0.0, dx=0.5, ncol=0, coef_col=0.7, h_col=0.9,
             mass_col=0.0, top_dirichlet=False):
    indptr, indices = ke.csr_pattern(psi.shape[0], lat, ncol)
    data = np.full(indices.size, np.nan)
    ke.fill(data, indptr, indices, psi, lat, PSI_MIN, coef, mass, dx, ncol, coef_col, h_col,
            mass_col, top_dirichlet)
    n = indptr.size - 1
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def reference(psi, lat, *, coef=1.3, mass=0.0, dx=0.5, ncol=0, coef_col=0.7, h_col=0.9,
              mass_col=0.0, top_dirichlet=False):
    """The operator of the module docstring, built face by face (dense)."""
    ny, nl = psi.shape
    n = ny * nl + ncol
    a = np.zeros((n, n))
    p = np.maximum(psi, PSI_MIN)

    def face(k0, k1, kf):
        a[k0, k0] += kf
        a[k1, k1] += kf
        a[k0, k1] -= kf
        a[k1, k0] -= kf

    for j in range(ny):
        for l in range(nl):
            k = j * nl + l
            a[k, k] += mass * p[j, l] * dx * dx
            for q in range(lat.shape[1]):  # each lateral face is listed by both its cells
                ll = lat[l, q]
                if ll != l:
                    kf = coef * max(0.5 * (psi[j, l] + psi[j, ll]), PSI_MIN)
                    a[k, k] += kf
                    a[k, j * nl + ll] -= kf
            if j + 1 < ny:
                face(k, k + nl, coef * max(0.5 * (psi[j, l] + psi[j + 1, l]), PSI_MIN))
            elif ncol:
                face(k, ny * nl, dx / (0.5 * dx / (coef * p[j, l]) + 0.5 * h_col / coef_col))
            elif top_dirichlet:
                a[k, k] += 2.0 * coef * p[j, l]
    area = nl * dx
    for m in range(ncol):
        r = ny * nl + m
        a[r, r] += mass_col * h_col * area
        if m + 1 < ncol:
            face(r, r + 1, coef_col * area / h_col)
    return a


def random_psi(rng, ny, nl):
    psi = rng.uniform(0.0, 1.0, (ny, nl))
    psi[rng.uniform(size=psi.shape) < 0.2] = 0.0  # metal cells: the floor acts
    return psi


@pytest.mark.parametrize("nx, nz", [(1, 1), (2, 1), (5, 1), (3, 2), (4, 3)])
@pytest.mark.parametrize("ncol, top_dirichlet", [(0, False), (0, True), (3, False)])
def test_operator_is_the_face_by_face_definition(nx, nz, ncol, top_dirichlet):
    rng = np.random.default_rng(nx * 10 + nz + ncol)
    lat = ke.lateral_neighbours(nx, nz)
    psi = random_psi(rng, 4, nx * nz)
    kw = dict(mass=0.4, ncol=ncol, mass_col=0.3, top_dirichlet=top_dirichlet)
    a = assemble(psi, lat, **kw)
    np.testing.assert_allclose(a.toarray(), reference(psi, lat, **kw), rtol=1e-14, atol=1e-14)
    # sorted, duplicate-free rows that hold their diagonal
    for r in range(a.shape[0]):
        cols = a.indices[a.indptr[r]:a.indptr[r + 1]]
        assert np.all(np.diff(cols) > 0) and r in cols


@pytest.mark.parametrize("nx, nz", [(4, 1), (3, 3)])
def test_operator_is_symmetric_and_conserves(nx, nz):
    """Symmetric; with no mass and a closed top the faces telescope: A 1 = 0 (every row), and
    with masses A 1 is the mass of each unknown."""
    rng = np.random.default_rng(7)
    lat = ke.lateral_neighbours(nx, nz)
    psi = random_psi(rng, 5, nx * nz)
    a = assemble(psi, lat, ncol=2)
    assert abs(a - a.T).max() <= 1e-15 * abs(a).max()
    np.testing.assert_allclose(a @ np.ones(a.shape[0]), 0.0, atol=1e-13)
    dx = 0.5
    a = assemble(psi, lat, ncol=2, mass=2.0, mass_col=3.0, dx=dx)
    masses = np.concatenate((2.0 * np.maximum(psi, PSI_MIN).ravel() * dx * dx,
                             np.full(2, 3.0 * 0.9 * nx * nz * dx)))
    np.testing.assert_allclose(a @ np.ones(a.shape[0]), masses, rtol=1e-12)


def test_3d_operator_on_a_field_uniform_in_z_is_the_2d_one():
    rng = np.random.default_rng(3)
    ny, nx, nz = 4, 5, 3
    psi2 = random_psi(rng, ny, nx)
    psi3 = np.repeat(psi2[:, None, :], nz, axis=1).reshape(ny, nz * nx)
    u2 = rng.standard_normal(ny * nx + 2)
    u3 = np.concatenate((np.repeat(u2[:ny * nx].reshape(ny, 1, nx), nz, axis=1).ravel(),
                         u2[ny * nx:]))
    kw = dict(mass=0.4, ncol=2, mass_col=0.3)
    a2 = assemble(psi2, ke.lateral_neighbours(nx), **kw)
    a3 = assemble(psi3, ke.lateral_neighbours(nx, nz), **kw)
    r2, r3 = a2 @ u2, a3 @ u3
    np.testing.assert_allclose(r3[:ny * nz * nx].reshape(ny, nz, nx),
                               np.repeat(r2[:ny * nx].reshape(ny, 1, nx), nz, axis=1),
                               rtol=1e-13, atol=1e-13)
    # the column carries the top area nl dx, nz times the 2D one
    np.testing.assert_allclose(r3[ny * nz * nx:], nz * r2[ny * nx:], rtol=1e-13)


def test_face_divergence_is_minus_the_closed_operator():
    rng = np.random.default_rng(11)
    ny, nx, nz = 5, 4, 2
    lat = ke.lateral_neighbours(nx, nz)
    psi = random_psi(rng, ny, nx * nz)
    u = rng.standard_normal(psi.shape)
    out = np.empty_like(u)
    ke.face_divergence(psi, lat, PSI_MIN, 1.3, u, out)
    a = assemble(psi, lat, coef=1.3)
    np.testing.assert_allclose(out.ravel(), -(a @ u.ravel()), rtol=1e-13, atol=1e-13)


def column_error(ny: int) -> float:
    """Max error of -u'' = 1 on (0, 1), u'(0) = 0, u(1) = 0 (closed form (1 - y^2)/2), as a
    column of ``ny`` cells with the top face held at 0 and the source as the right side."""
    dx = 1.0 / ny
    lat = ke.lateral_neighbours(2)
    a = assemble(np.ones((ny, 2)), lat, coef=1.0, dx=dx, top_dirichlet=True)
    u = spla.spsolve(a.tocsc(), np.full(ny * 2, dx * dx))
    y = (np.arange(ny) + 0.5) * dx
    return float(np.abs(u.reshape(ny, 2)[:, 0] - 0.5 * (1.0 - y * y)).max())


def test_a_column_converges_to_the_closed_form_at_second_order():
    e1, e2 = column_error(8), column_error(16)
    assert e2 < 1e-2
    assert np.log2(e1 / e2) == pytest.approx(2.0, abs=0.15)


def test_metal_cells_keep_the_floor_conductance():
    """A cell of pure metal (psi = 0) keeps faces of coef psi_min: the operator stays SPD."""
    lat = ke.lateral_neighbours(3)
    psi = np.ones((3, 3))
    psi[1, :] = 0.0
    a = assemble(psi, lat, coef=1.0, top_dirichlet=True).toarray()
    assert np.all(np.linalg.eigvalsh(a) > 0.0)
    # cell (1, 0): two metal-metal faces at the floor, two metal-electrolyte faces at psi 1/2
    assert a[3, 3] == pytest.approx(2 * PSI_MIN + 2 * 0.5, rel=1e-14)
