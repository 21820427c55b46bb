"""Geometric multigrid of the electrolyte (fastnai._kernels.multigrid, fastnai.electrolyte).

Against mathematics, not against itself: the face operator equals the CSR matrix of
``electrolyte.fill`` entry by entry; the coarse operators equal ``P^T A P`` formed with
scipy.sparse; solves match a direct sparse factorisation on random coefficient fields with
jumps of 1e6 (and across odd periodic seams, in 2D and 3D, with the separator column
eliminated); a periodic shift of the data shifts the solution; iteration counts do not grow
with the mesh; a solve is the same bits on 1 and 2 threads; a stalled solve is an error that
carries its residual history.

Small grids, so that CI's ``NUMBA_DISABLE_JIT=1`` run stays quick; the thread test needs a
level above ``PARALLEL_MIN_SIZE`` cells and the mesh-independence test three refinements, so
they run compiled only.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fastnai._kernels import electrolyte as ke
from fastnai._kernels import multigrid as kmg
from fastnai._kernels._jit import PARALLEL_MIN_SIZE
from fastnai.electrolyte import TOP_CLOSED, TOP_COLUMN, TOP_DIRICHLET, MultigridSolver
from fastnai.errors import ConvergenceError

JIT_OFF = bool(numba.config.DISABLE_JIT)
PSI_MIN = 1e-6


def jumpy(rng, shape, contrast=1e6, fraction=0.4):
    """Electrolyte fraction 1 or 1/contrast, cell by cell at random."""
    return np.where(rng.random(shape) < fraction, 1.0 / contrast, 1.0)


def deposit(ny, nl, contrast=1e6):
    """A wavy metal layer (psi = 1/contrast) under electrolyte, with a diffuse edge."""
    y = (np.arange(ny) + 0.5)[:, None] / ny
    front = 0.25 + 0.08 * np.sin(2 * np.pi * 3 * np.arange(nl) / nl)[None, :]
    xi = 0.5 * (1.0 - np.tanh((y - front) * ny / 2.0))
    return np.maximum(1.0 - xi, 1.0 / contrast)


def csr(psi, nz, nx, *, coef=1.3, mass=0.0, dx=0.5, ncol=0, coef_col=0.7, h_col=0.9,
        mass_col=0.0, top_dirichlet=True):
    lat = ke.lateral_neighbours(nx, nz)
    indptr, indices = ke.csr_pattern(psi.shape[0], lat, ncol)
    data = np.zeros(indices.size)
    ke.fill(data, indptr, indices, psi, lat, PSI_MIN, coef, mass, dx, ncol, coef_col, h_col,
            mass_col, top_dirichlet)
    n = indptr.size - 1
    return sp.csr_matrix((data, indices, indptr), shape=(n, n))


def solver(psi, nz, nx, *, ncol=0, top=TOP_DIRICHLET, rtol=1e-12, mass=0.0, maxiter=400):
    s = MultigridSolver(psi.shape[0], nz, nx, ncol, rtol=rtol, maxiter=maxiter)
    s.assemble(psi, PSI_MIN, 1.3, mass, 0.5, top, 0.7, 0.9, 2.0)
    return s


@pytest.mark.parametrize("shape", [(6, 1, 5), (5, 3, 4), (4, 2, 1), (3, 1, 2)])
@pytest.mark.parametrize("top", [TOP_CLOSED, TOP_DIRICHLET, TOP_COLUMN])
def test_face_operator_is_the_csr_operator(shape, top):
    ny, nz, nx = shape
    rng = np.random.default_rng(1)
    psi = jumpy(rng, (ny, nz * nx))
    ncol = 3 if top == TOP_COLUMN else 0
    s = solver(psi, nz, nx, ncol=ncol, top=top, mass=0.7)
    ref = csr(psi, nz, nx, mass=0.7, ncol=ncol, mass_col=2.0, top_dirichlet=top == TOP_DIRICHLET)
    assert abs(s.matrix() - ref).max() <= 1e-14 * abs(ref).max()
    x = rng.standard_normal(ny * nz * nx)
    out = np.empty_like(x)
    kmg.apply(s._kx, s._ky, s._kz, s._d, s.dims, x, s.w, 0.0, out, s._rows)
    grid = ref[:x.size, :x.size]
    np.testing.assert_allclose(out, grid @ x, rtol=1e-13, atol=1e-13 * abs(grid @ x).max())


def aggregation(dims_fine, dims_coarse):
    """The 0/1 prolongation of the module docstring, by its definition."""
    def agg(n_fine, n_coarse):
        return np.minimum(np.arange(n_fine) // (n_fine // n_coarse), n_coarse - 1)

    ay, az, ax = (agg(f, c) for f, c in zip(dims_fine, dims_coarse, strict=True))
    my, mz, mx = dims_coarse
    coarse = ((ay[:, None, None] * mz + az[None, :, None]) * mx + ax[None, None, :]).ravel()
    n = coarse.size
    return sp.csr_matrix((np.ones(n), (np.arange(n), coarse)), shape=(n, my * mz * mx))


@pytest.mark.parametrize("shape", [(8, 1, 12), (7, 1, 9), (6, 5, 6), (5, 3, 7)])
def test_coarse_operators_are_galerkin_products(shape):
    ny, nz, nx = shape
    rng = np.random.default_rng(2)
    psi = jumpy(rng, (ny, nz * nx))
    s = MultigridSolver(ny, nz, nx, rtol=1e-12)
    s.dims, s.offs = kmg.plan(ny, nz, nx, coarsest=4)  # as many levels as the box allows
    total = int(s.offs[-1])
    s._kx, s._ky, s._kz, s._d = (np.zeros(total) for _ in range(4))
    s.assemble(psi, PSI_MIN, 1.3, 0.3, 0.5, TOP_DIRICHLET)
    nc = int(np.prod(s.dims[-1]))
    kmg.build(s._kx, s._ky, s._kz, s._d, s.dims, s.offs, np.zeros((nc, nc)))
    a = s.matrix()
    for lev in range(1, len(s.dims)):
        p = aggregation(s.dims[lev - 1], s.dims[lev])
        a = (p.T @ a @ p).tocsr()
        level = MultigridSolver(*s.dims[lev], rtol=1e-12)
        o, n = s.offs[lev], s.offs[lev + 1] - s.offs[lev]
        for name in ("_kx", "_ky", "_kz", "_d"):
            getattr(level, name)[:n] = getattr(s, name)[o:o + n]
        assert abs(level.matrix() - a).max() <= 1e-12 * abs(a).max(), f"level {lev}"


@pytest.mark.parametrize("shape", [(12, 1, 16), (9, 1, 11), (6, 3, 5), (7, 4, 4)])
def test_solve_matches_direct_factorisation_across_jumps_of_1e6(shape):
    ny, nz, nx = shape
    rng = np.random.default_rng(3)
    psi = jumpy(rng, (ny, nz * nx))
    s = solver(psi, nz, nx)
    b = rng.standard_normal(ny * nz * nx)
    x, its = s.solve(b, np.zeros_like(b))
    ref = spla.spsolve(s.matrix().tocsc(), b)
    assert its > 0
    assert np.linalg.norm(x - ref) <= 1e-10 * np.linalg.norm(ref)


@pytest.mark.parametrize("shape", [(10, 1, 9), (5, 5, 3)])
def test_separator_column_is_eliminated_exactly(shape):
    ny, nz, nx = shape
    rng = np.random.default_rng(4)
    psi = jumpy(rng, (ny, nz * nx))
    s = solver(psi, nz, nx, ncol=6, top=TOP_COLUMN, mass=0.2)
    a = csr(psi, nz, nx, mass=0.2, ncol=6, mass_col=2.0, top_dirichlet=False)
    b = rng.standard_normal(a.shape[0])
    x, _ = s.solve(b, np.zeros_like(b))
    ref = spla.spsolve(a.tocsc(), b)
    assert np.linalg.norm(x - ref) <= 1e-10 * np.linalg.norm(ref)


@pytest.mark.parametrize("shape", [(6, 1, 7), (4, 5, 3)])
def test_periodic_shift_of_the_data_shifts_the_solution(shape):
    """Across the odd seams (serial colour planes): the operator is shift-invariant in x, z."""
    ny, nz, nx = shape
    rng = np.random.default_rng(5)
    psi = jumpy(rng, (ny, nz, nx), contrast=1e3)
    b = rng.standard_normal((ny, nz, nx))
    x0, _ = solver(psi.reshape(ny, -1), nz, nx).solve(b.ravel(), np.zeros(b.size))
    for shift, axis in ((2, 2), (1, 1)):
        p, c = np.roll(psi, shift, axis), np.roll(b, shift, axis)
        x, _ = solver(p.reshape(ny, -1), nz, nx).solve(c.ravel(), np.zeros(c.size))
        expect = np.roll(x0.reshape(ny, nz, nx), shift, axis).ravel()
        assert np.linalg.norm(x - expect) <= 1e-10 * np.linalg.norm(expect)


@pytest.mark.skipif(JIT_OFF, reason="three refinements are too slow as plain Python")
@pytest.mark.parametrize("contrast", [1.0, 1e6])
def test_iterations_do_not_grow_with_the_mesh(contrast):
    """The same deposit on 32 x 64, 64 x 128 and 128 x 256 cells (1e-10 from zero)."""
    rng = np.random.default_rng(6)
    counts = []
    for m in (1, 2, 4):
        ny, nx = 32 * m, 64 * m
        s = solver(deposit(ny, nx, contrast), 1, nx, rtol=1e-10)
        b = rng.standard_normal(ny * nx)
        _, its = s.solve(b, np.zeros_like(b))
        counts.append(its)
    assert max(counts) - min(counts) <= 2, counts
    assert max(counts) <= 16, counts


@pytest.mark.skipif(JIT_OFF, reason="needs a level above PARALLEL_MIN_SIZE cells")
@pytest.mark.parametrize("shape", [(128, 1, 161), (22, 31, 31)])
def test_same_bits_on_one_and_two_threads(shape):
    ny, nz, nx = shape
    assert ny * nz * nx >= PARALLEL_MIN_SIZE
    rng = np.random.default_rng(7)
    psi = deposit(ny, nz * nx)
    b = rng.standard_normal(ny * nz * nx + 4)
    before = numba.get_num_threads()
    out = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            s = solver(psi, nz, nx, ncol=4, top=TOP_COLUMN, mass=0.1, rtol=1e-10)
            out.append(s.solve(b, np.zeros_like(b)))
    finally:
        numba.set_num_threads(before)
    assert out[0][1] == out[1][1]
    np.testing.assert_array_equal(out[0][0], out[1][0])


def test_a_stalled_solve_is_an_error_with_its_residual_history():
    rng = np.random.default_rng(8)
    psi = jumpy(rng, (12, 10))
    s = solver(psi, 1, 10, rtol=1e-15, maxiter=1)
    b = rng.standard_normal(120)
    with pytest.raises(ConvergenceError, match="did not reach rtol") as err:
        s.solve(b, np.zeros_like(b))
    assert err.value.exit_status == 3
    assert len(err.value.history) == 2
    assert err.value.history[0][0] == pytest.approx(np.linalg.norm(b))


def test_plan_halves_every_direction_longer_than_one():
    dims, offs = kmg.plan(7, 3, 10, coarsest=2)
    assert dims.tolist() == [[7, 3, 10], [3, 1, 5], [1, 1, 2]]
    assert offs.tolist() == [0, 210, 225, 227]
