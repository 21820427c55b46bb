"""The complex block-tridiagonal solves of the impedance kernel against scipy, its mass blocks
against the residual's own alpha0 dependence, and its thread independence."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from fastnai._kernels import drift_diffusion as kdd
from fastnai._kernels import impedance as kimp


def random_blocks(rng, n, scales=(1.0, 1e-12, 1e8)):
    """Blocks whose scalar rows differ by many orders of magnitude (like Poisson / Na+ /
    electron rows), diagonally weighted so that the block Thomas elimination is stable, with a
    mass on the diagonal that adds to that weight (as vol dc/d ell does)."""
    lower, diag, upper = (rng.standard_normal((n, 3, 3)) for _ in range(3))
    mass = np.zeros((n, 3, 3))
    for r, s in enumerate(scales):
        lower[:, r] *= s
        upper[:, r] *= s
        diag[:, r] *= s
        sign = np.sign(diag[:, r, r])
        diag[:, r, r] += 8.0 * s * sign
        mass[:, r, r] = s * sign * rng.uniform(0.1, 2.0, n)
    return lower, diag, upper, mass


def random_particles(rng, n_p, n):
    """Blocks (:func:`random_blocks`), border column and row of ``n_p`` particles."""
    blocks = [random_blocks(rng, n) for _ in range(n_p)]
    lower, diag, upper, mass = (np.array([b[k] for b in blocks]) for k in range(4))
    return lower, diag, upper, mass, rng.standard_normal((n_p, n, 3)), rng.standard_normal((n_p, n, 3))


def sparse(lower, diag, upper, mass, omega):
    n = diag.shape[0]
    rows, cols, vals = [], [], []
    for i in range(n):
        for j, blk in ((i - 1, lower[i]), (i, diag[i] + 1j * omega * mass[i]), (i + 1, upper[i])):
            if 0 <= j < n:
                r, c = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
                rows.append(3 * i + r.ravel())
                cols.append(3 * j + c.ravel())
                vals.append(np.asarray(blk, dtype=complex).ravel())
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(3 * n, 3 * n))


def reference_solve(matrix, rhs):
    """SuperLU on the row-equilibrated system: unscaled, rows 20 orders of magnitude apart
    leave SuperLU's answer with relative residuals of 3e-4 at high frequency (the kernel's
    scaled elimination reaches 1e-20)."""
    scale = 1.0 / abs(matrix).max(axis=1).toarray().ravel()
    return spla.spsolve((sp.diags(scale) @ matrix).tocsc(), scale * rhs)


@pytest.mark.parametrize("omega", [0.0, 1e-3, 1.0, 1e5])
def test_shifted_solve_matches_a_sparse_direct_solve(omega):
    rng = np.random.default_rng(7)
    n = 40
    lower, diag, upper, mass = random_blocks(rng, n)
    rhs = rng.standard_normal((n, 3)) * np.array([1.0, 1e-12, 1e8])
    out = np.empty((n, 3), dtype=complex)
    kimp.solve_shifted(lower, diag, upper, mass, omega, rhs, out,
                       np.empty((n, 3, 3), dtype=complex))
    ref = reference_solve(sparse(lower, diag, upper, mass, omega), rhs.ravel().astype(complex))
    scale = np.abs(ref.reshape(n, 3)).max(axis=0)
    np.testing.assert_allclose(out / scale, ref.reshape(n, 3) / scale, atol=1e-11)


def test_admittance_is_the_border_row_times_the_response_plus_the_double_layer():
    rng = np.random.default_rng(3)
    n_p, n = 3, 25
    lower, diag, upper, mass, bcol, brow = random_particles(rng, n_p, n)
    s_nodes = np.array([0, n - 1, 5])
    cdl = np.array([0.0, 0.3, 2.0])
    omegas = np.array([0.1, 10.0])
    out = np.empty((2, n_p), dtype=complex)
    kimp.admittance(lower, diag, upper, mass, bcol, brow, s_nodes, cdl, omegas, out)
    for f, w in enumerate(omegas):
        for p in range(n_p):
            dz = reference_solve(sparse(lower[p], diag[p], upper[p], mass[p], w),
                                 -bcol[p].ravel().astype(complex)).reshape(n, 3)
            expected = np.sum(brow[p] * dz) + 1j * w * cdl[p] * dz[s_nodes[p], 0]
            assert abs(out[f, p] - expected) <= 1e-10 * abs(expected)


def test_mass_blocks_are_the_alpha0_derivative_of_the_assembled_jacobian(default_kernel_state):
    z, args = default_kernel_state
    n = z.shape[0]
    blocks = {}
    for alpha0 in (0.0, 1.0):
        lower, diag, upper = (np.zeros((n, 3, 3)) for _ in range(3))
        res, bcol, brow = (np.zeros((n, 3)) for _ in range(3))
        kdd.assemble(z, args["voltage"], True, alpha0, np.zeros((n, 3)), 1.0, args["vol"],
                     args["area"], args["h"], args["g_face"], args["d0_face"],
                     args["site_energy"], args["region"], args["params"], args["tables"],
                     args["sc"], lower, diag, upper, res, bcol, brow)
        blocks[alpha0] = (lower, diag, upper)
    mass = np.empty((n, 3, 3))
    kimp.mass_blocks(z, args["vol"], args["region"], args["params"], args["tables"], args["sc"],
                     args["site_energy"], mass)
    np.testing.assert_array_equal(blocks[1.0][0], blocks[0.0][0])
    np.testing.assert_array_equal(blocks[1.0][2], blocks[0.0][2])
    diff = blocks[1.0][1] - blocks[0.0][1]
    scale = np.abs(blocks[1.0][1]).max(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(mass / scale, diff / scale, atol=1e-13)
    assert np.all(mass[:, 1, 1] > 0.0)


@pytest.fixture(scope="module", params=["quasi-equilibrium", "drift-diffusion"])
def default_kernel_state(request):
    """The kernel arrays of the default electrode at a state off equilibrium (a Na gradient,
    electrons depleted towards the contact)."""
    import fastnai
    from fastnai.models import drift_diffusion as dd

    c = fastnai.load_case({"model": {"kind": "drift_diffusion", "electrons": request.param},
                           "semiconductor": {"material": "anatase-TiO2"},
                           "contact": {"material": "TiC"}, "mesh": {"n_nodes": 40},
                           "protocol": [{"step": "rest", "duration": 1.0}]})
    s = dd.build(c)
    z = np.empty((s.n_nodes, 3))
    z[:, 0] = np.linspace(0.3, 1.1, s.n_nodes)
    z[:, 1] = np.linspace(-3.0, 1.0, s.n_nodes)
    z[:, 2] = 1.0
    args = {"voltage": 1.0, "vol": s.vol[0], "area": s.area[0], "h": s.h[0],
            "g_face": s.g_face[0], "d0_face": s.d0_face[0], "site_energy": s.site_energy[0],
            "region": s.region[0], "params": s.params, "tables": s.tables, "sc": s.sc[0]}
    return z, args


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="threads need the JIT")
def test_admittance_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(11)
    n_p, n = 4, 300
    lower, diag, upper, mass, bcol, brow = random_particles(rng, n_p, n)
    args = (lower, diag, upper, mass, bcol, brow, np.zeros(n_p, dtype=np.int64), np.ones(n_p),
            np.logspace(-2, 5, 29))
    results = []
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        out = np.empty((29, n_p), dtype=complex)
        kimp.admittance(*args, out)
        results.append(out)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(results[0], results[1])
