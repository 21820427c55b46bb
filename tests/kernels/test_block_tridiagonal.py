"""Block-tridiagonal and bordered solves against sparse and dense direct solvers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from fastnai._kernels.block_tridiagonal import solve_block_tridiagonal, solve_bordered


def random_system(n, k, rng, row_scales=None):
    lower = rng.normal(size=(n, k, k))
    upper = rng.normal(size=(n, k, k))
    diag = rng.normal(size=(n, k, k))
    for i in range(n):  # block diagonal dominance so that no block pivoting is needed
        diag[i] += np.eye(k) * (np.abs(lower[i]).sum() + np.abs(upper[i]).sum() + 1.0)
    if row_scales is not None:
        lower *= row_scales[:, :, None]
        diag *= row_scales[:, :, None]
        upper *= row_scales[:, :, None]
    return lower, diag, upper


def assemble(lower, diag, upper):
    n, k, _ = diag.shape
    mat = sp.lil_matrix((n * k, n * k))
    for i in range(n):
        mat[i * k:(i + 1) * k, i * k:(i + 1) * k] = diag[i]
        if i > 0:
            mat[i * k:(i + 1) * k, (i - 1) * k:i * k] = lower[i]
        if i < n - 1:
            mat[i * k:(i + 1) * k, (i + 1) * k:(i + 2) * k] = upper[i]
    return mat.tocsc()


@pytest.mark.parametrize(("n", "k", "m"),
                         [(1, 3, 1), (2, 3, 2), (50, 3, 1), (40, 2, 3), (30, 4, 1), (20, 1, 2)])
def test_block_thomas_matches_sparse_direct_solve(n, k, m):
    rng = np.random.default_rng(n * 10 + k)
    lower, diag, upper = random_system(n, k, rng)
    rhs = rng.normal(size=(n, k, m))
    out = np.empty_like(rhs)
    solve_block_tridiagonal(lower, diag, upper, rhs, out, np.empty((n, k, k)), np.empty((k, k + m)))
    mat = assemble(lower, diag, upper)
    for c in range(m):
        ref = spsolve(mat, rhs[:, :, c].ravel())
        np.testing.assert_allclose(out[:, :, c].ravel(), ref, rtol=1e-11, atol=1e-12)


def test_row_scaling_handles_rows_tens_of_orders_apart():
    rng = np.random.default_rng(3)
    n, k = 60, 3
    scales = np.tile(np.array([1e-18, 1.0, 1e22]), (n, 1))  # Poisson, ion, electron rows
    lower, diag, upper = random_system(n, k, rng, scales)
    x_true = rng.normal(size=(n, k, 1))
    rhs = (assemble(lower, diag, upper) @ x_true.ravel()).reshape(n, k, 1)
    out = np.empty_like(rhs)
    solve_block_tridiagonal(lower, diag, upper, rhs, out, np.empty((n, k, k)), np.empty((k, k + 1)))
    np.testing.assert_allclose(out, x_true, rtol=1e-10, atol=1e-10)


def test_solution_may_overwrite_the_right_hand_side():
    rng = np.random.default_rng(8)
    lower, diag, upper = random_system(20, 3, rng)
    rhs = rng.normal(size=(20, 3, 2))
    expected = np.empty_like(rhs)
    solve_block_tridiagonal(lower, diag, upper, rhs, expected, np.empty((20, 3, 3)), np.empty((3, 5)))
    solve_block_tridiagonal(lower, diag, upper, rhs, rhs, np.empty((20, 3, 3)), np.empty((3, 5)))
    np.testing.assert_array_equal(rhs, expected)


def test_bordered_system_matches_dense_solve():
    rng = np.random.default_rng(21)
    n, k = 25, 3
    lower, diag, upper = random_system(n, k, rng)
    r = rng.normal(size=(n, k))
    b = rng.normal(size=(n, k))
    c = rng.normal(size=(n, k))
    d, r_end = 40.0, 1.5
    out = np.empty((n, k))
    lam = solve_bordered(lower, diag, upper, r, b, c, d, r_end, out, np.empty((n, k, k)),
                         np.empty((k, k + 2)), np.empty((n, k, 2)))
    dense = np.zeros((n * k + 1, n * k + 1))
    dense[:-1, :-1] = assemble(lower, diag, upper).toarray()
    dense[:-1, -1] = b.ravel()
    dense[-1, :-1] = c.ravel()
    dense[-1, -1] = d
    ref = np.linalg.solve(dense, np.concatenate([r.ravel(), [r_end]]))
    np.testing.assert_allclose(out.ravel(), ref[:-1], rtol=1e-11, atol=1e-12)
    assert lam == pytest.approx(ref[-1], rel=1e-11)


def test_unsupported_block_size_is_refused():
    n, k = 4, 5
    blocks = np.tile(np.eye(k), (n, 1, 1))
    with pytest.raises(ValueError, match="block size"):
        solve_block_tridiagonal(blocks, blocks, blocks, np.ones((n, k, 1)), np.empty((n, k, 1)),
                                np.empty((n, k, k)), np.empty((k, k + 1)))


def test_ensemble_bordered_matches_dense_solve_and_is_thread_independent(numba_threads):
    from fastnai._kernels.block_tridiagonal import solve_ensemble_bordered

    rng = np.random.default_rng(5)
    n_particles, n, k = 5, 12, 3
    systems = [random_system(n, k, rng) for _ in range(n_particles)]
    lower = np.stack([s[0] for s in systems])
    diag = np.stack([s[1] for s in systems])
    upper = np.stack([s[2] for s in systems])
    r, b, c = (rng.normal(size=(n_particles, n, k)) for _ in range(3))
    d, r_end = 30.0, -2.0
    out = np.empty((n_particles, n, k))
    lam = solve_ensemble_bordered(lower, diag, upper, r, b, c, d, r_end, out,
                                  np.empty((n_particles, n, k, k)),
                                  np.empty((n_particles, k, k + 2)),
                                  np.empty((n_particles, n, k, 2)), np.empty((n_particles, 2)))
    size = n * k
    dense = np.zeros((n_particles * size + 1, n_particles * size + 1))
    for p in range(n_particles):
        sl = slice(p * size, (p + 1) * size)
        dense[sl, sl] = assemble(lower[p], diag[p], upper[p]).toarray()
        dense[sl, -1] = b[p].ravel()
        dense[-1, sl] = c[p].ravel()
    dense[-1, -1] = d
    ref = np.linalg.solve(dense, np.concatenate([r.ravel(), [r_end]]))
    np.testing.assert_allclose(out.ravel(), ref[:-1], rtol=1e-10, atol=1e-12)
    assert lam == pytest.approx(ref[-1], rel=1e-10)
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = np.empty_like(out)
        lam_serial = solve_ensemble_bordered(lower, diag, upper, r, b, c, d, r_end, serial,
                                             np.empty((n_particles, n, k, k)),
                                             np.empty((n_particles, k, k + 2)),
                                             np.empty((n_particles, n, k, 2)),
                                             np.empty((n_particles, 2)))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(out, serial)
    assert lam == lam_serial
