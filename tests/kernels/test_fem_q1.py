"""B-bar Q1 kernels against plain-numpy twins and exact invariants: element matrices, CSR pattern
and colouring, parallel assembly (bitwise equal whatever the thread count), Dirichlet rows, J2
radial return (exact on proportional paths) and its consistent tangent.

Small meshes throughout, so that CI's ``NUMBA_DISABLE_JIT=1`` run stays quick.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastnai._kernels import fem_q1

JIT_OFF = bool(numba.config.DISABLE_JIT)
G = 1.0 / np.sqrt(3.0)
GAUSS = [(-G, -G), (G, -G), (G, G), (-G, G)]  # counter-clockwise, as the kernel numbers them
NODE_XI = np.array([-1.0, 1.0, 1.0, -1.0])
NODE_ETA = np.array([-1.0, -1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------------------------
# numpy twins


def voigt_stiffness(young, poisson):
    lam = young * poisson / ((1 + poisson) * (1 - 2 * poisson))
    mu = young / (2 * (1 + poisson))
    d = np.zeros((4, 4))
    d[:3, :3] = lam
    d[[0, 1, 2], [0, 1, 2]] += 2 * mu
    d[3, 3] = mu
    return d


def element_numpy(xy, young, poisson, *, bbar=True, eigenstrain=None):
    """K_e (10, 10) and eigenstrain load f_e (10,) of one quad, written the textbook way."""
    bs, ws = [], []
    for xi, eta in GAUSS:
        n = 0.25 * (1 + NODE_XI * xi) * (1 + NODE_ETA * eta)
        dn = np.column_stack([0.25 * NODE_XI * (1 + NODE_ETA * eta), 0.25 * NODE_ETA * (1 + NODE_XI * xi)])
        jac = xy.T @ dn  # d(x, z) / d(xi, eta)
        dndx = dn @ np.linalg.inv(jac)
        b = np.zeros((4, 10))
        b[0, 0:8:2] = dndx[:, 0]
        b[1, 1:8:2] = dndx[:, 1]
        b[3, 0:8:2] = dndx[:, 1]
        b[3, 1:8:2] = dndx[:, 0]
        b[2, 8] = 1.0
        b[2, 9] = n @ xy[:, 1]
        bs.append(b)
        ws.append(np.linalg.det(jac))
    if bbar:
        traces = [b[:3].sum(axis=0) for b in bs]
        avg = sum(w * t for w, t in zip(ws, traces, strict=True)) / sum(ws)
        for b, t in zip(bs, traces, strict=True):
            b[:3] += (avg - t) / 3.0
    d = voigt_stiffness(young, poisson)
    k = sum(w * b.T @ d @ b for w, b in zip(ws, bs, strict=True))
    eps = np.zeros(4) if eigenstrain is None else eigenstrain
    f = sum(w * b.T @ d @ eps for w, b in zip(ws, bs, strict=True))
    return k, f


def grid(n_x, n_z, *, seed=None, jitter=0.2):
    """Structured quad mesh of [0, n_x] x [0, n_z] with optionally jittered interior nodes."""
    x, z = np.meshgrid(np.arange(n_x + 1.0), np.arange(n_z + 1.0))
    nodes = np.column_stack([x.ravel(), z.ravel()])
    if seed is not None:
        rng = np.random.default_rng(seed)
        interior = (nodes[:, 0] > 0) & (nodes[:, 0] < n_x) & (nodes[:, 1] > 0) & (nodes[:, 1] < n_z)
        nodes[interior] += rng.uniform(-jitter, jitter, (interior.sum(), 2))
    i, j = np.meshgrid(np.arange(n_x), np.arange(n_z))
    first = (j * (n_x + 1) + i).ravel()
    elements = np.column_stack([first, first + 1, first + n_x + 2, first + n_x + 1]).astype(np.int64)
    return nodes, elements


class Assembly:
    """Everything the assembly kernels need for one mesh."""

    def __init__(self, nodes, elements, n_chunks=4):
        self.nodes, self.elements = nodes, elements
        self.n_el = elements.shape[0]
        self.n_dof = 2 * nodes.shape[0]
        self.indptr, self.indices, self.block_position = fem_q1.csr_pattern(elements, nodes.shape[0])
        self.chunks = fem_q1.chunk_colouring(elements, nodes.shape[0], n_chunks)

    def linear(self, young, poisson, eigenstrain, *, bbar=True, gps=False, parallel=True, body=None,
               plastic=None):
        data = np.full(self.indices.size, np.nan)
        rhs = np.full(self.n_dof, np.nan)
        k_ug = np.full((self.n_dof, 2), np.nan)
        k_gg = np.empty((2, 2))
        f_g = np.empty(2)
        kernel = fem_q1.assemble_linear if parallel else fem_q1.assemble_linear_serial
        kernel(self.nodes, self.elements, self.block_position, self.indptr, *self.chunks, bbar, gps,
               young, poisson, eigenstrain, np.zeros((0, 4, 4)) if plastic is None else plastic,
               np.zeros((0, 4, 2)) if body is None else body, data, rhs, k_ug, k_gg, f_g)
        return data, rhs, k_ug, k_gg, f_g

    def dense(self, data):
        a = np.zeros((self.n_dof, self.n_dof))
        for i in range(self.n_dof):
            for k in range(self.indptr[i], self.indptr[i + 1]):
                a[i, self.indices[k]] += data[k]
        return a


def material(n_el, seed=0):
    rng = np.random.default_rng(seed)
    young = rng.uniform(50e9, 150e9, (n_el, 4))
    poisson = rng.uniform(0.2, 0.45, (n_el, 4))
    eigen = rng.normal(0.0, 1e-3, (n_el, 4, 4))
    return young, poisson, eigen


# ----------------------------------------------------------------------------------------------
# element


@pytest.mark.parametrize("bbar", [True, False])
def test_single_element_matrix_and_load_match_numpy_twin(bbar):
    xy = np.array([[0.0, 0.0], [2.0, 0.3], [2.4, 1.9], [-0.2, 1.1]]) * 1e-6
    nodes, elements = xy, np.array([[0, 1, 2, 3]], dtype=np.int64)
    eps = np.array([1e-3, -2e-3, 5e-4, 3e-4])
    asm = Assembly(nodes, elements, n_chunks=1)
    young = np.full((1, 4), 70e9)
    poisson = np.full((1, 4), 0.33)
    data, rhs, k_ug, k_gg, f_g = asm.linear(young, poisson, np.broadcast_to(eps, (1, 4, 4)).copy(),
                                            bbar=bbar, gps=True)
    k_ref, f_ref = element_numpy(xy, 70e9, 0.33, bbar=bbar, eigenstrain=eps)
    scale = np.abs(k_ref).max()
    np.testing.assert_allclose(asm.dense(data), k_ref[:8, :8], rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(k_ug, k_ref[:8, 8:], rtol=0, atol=1e-13 * np.abs(k_ref[:8, 8:]).max())
    np.testing.assert_allclose(k_gg, k_ref[8:, 8:], rtol=1e-13)
    np.testing.assert_allclose(rhs, f_ref[:8], rtol=0, atol=1e-13 * np.abs(f_ref).max())
    np.testing.assert_allclose(f_g, f_ref[8:], rtol=1e-13)


@pytest.mark.parametrize("bbar", [True, False])
def test_element_is_symmetric_with_exactly_three_rigid_body_modes(bbar):
    xy = np.array([[0.0, 0.0], [1.0, 0.2], [1.3, 1.0], [0.1, 0.8]])
    asm = Assembly(xy, np.array([[0, 1, 2, 3]], dtype=np.int64), n_chunks=1)
    data = asm.linear(np.full((1, 4), 1.0), np.full((1, 4), 0.3), np.zeros((1, 4, 4)), bbar=bbar)[0]
    k = asm.dense(data)
    np.testing.assert_array_equal(k, k.T)
    eig = np.linalg.eigvalsh(k)
    assert np.all(eig[:3] < 1e-14 * eig[-1]) and eig[3] > 1e-3 * eig[-1]
    rigid = np.zeros((8, 3))
    rigid[0::2, 0] = 1.0
    rigid[1::2, 1] = 1.0
    rigid[0::2, 2] = -xy[:, 1]
    rigid[1::2, 2] = xy[:, 0]
    assert np.abs(k @ rigid).max() < 1e-14 * eig[-1]


def test_bbar_volumetric_strain_is_constant_over_the_element():
    """Mean dilatation: eps_xx + eps_zz + eps_yy of Bbar u is the same at all four points."""
    xy = np.array([[0.0, 0.0], [1.0, 0.2], [1.3, 1.0], [0.1, 0.8]])
    u = np.random.default_rng(3).normal(size=8)
    strain = np.empty((1, 4, 4))
    stress = np.empty((1, 4, 4))
    fem_q1.recover(xy, np.array([[0, 1, 2, 3]], dtype=np.int64), True, u, np.zeros(2), np.ones((1, 4)),
                   np.full((1, 4), 0.3), np.zeros((1, 4, 4)), np.zeros((0, 4, 4)), strain, stress)
    trace = strain[0, :, :3].sum(axis=1)
    np.testing.assert_allclose(trace, trace.mean(), rtol=1e-12)
    assert np.ptp(strain[0, :, 0]) > 1e-3  # the deviatoric part does vary


def test_gauss_points_are_the_bilinear_images_of_the_reference_points():
    nodes, elements = grid(2, 1, seed=1)
    out = np.empty((elements.shape[0], 4, 2))
    fem_q1.gauss_points(nodes, elements, out)
    for e in range(elements.shape[0]):
        for g, (xi, eta) in enumerate(GAUSS):
            n = 0.25 * (1 + NODE_XI * xi) * (1 + NODE_ETA * eta)
            np.testing.assert_allclose(out[e, g], n @ nodes[elements[e]], rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# pattern, colouring, assembly


def test_csr_pattern_is_the_node_adjacency_with_sorted_columns():
    nodes, elements = grid(3, 2)
    elements = elements[np.random.default_rng(0).permutation(elements.shape[0])]
    indptr, indices, _ = fem_q1.csr_pattern(elements, nodes.shape[0])
    expected = np.zeros((2 * nodes.shape[0],) * 2, dtype=bool)
    for el in elements:
        dofs = np.ravel(np.column_stack([2 * el, 2 * el + 1]))
        expected[np.ix_(dofs, dofs)] = True
    for i in range(expected.shape[0]):
        cols = indices[indptr[i]:indptr[i + 1]]
        np.testing.assert_array_equal(cols, np.flatnonzero(expected[i]))


@pytest.mark.parametrize("n_chunks", [1, 3, 5, 12])
def test_chunk_colouring_separates_chunks_that_share_nodes(n_chunks):
    nodes, elements = grid(4, 3)
    start, colour_ptr, colour_chunks = fem_q1.chunk_colouring(elements, nodes.shape[0], n_chunks)
    assert start[0] == 0 and start[-1] == elements.shape[0] and np.all(np.diff(start) > 0)
    assert sorted(colour_chunks.tolist()) == list(range(start.size - 1))
    for k in range(colour_ptr.size - 1):
        seen = set()
        for c in colour_chunks[colour_ptr[k]:colour_ptr[k + 1]]:
            touched = set(elements[start[c]:start[c + 1]].ravel().tolist())
            assert not (touched & seen)
            seen |= touched


@pytest.mark.parametrize("gps", [False, True])
def test_assembly_matches_dense_sum_of_numpy_element_matrices(gps):
    nodes, elements = grid(3, 2, seed=7)
    nodes = nodes * 1e-6
    asm = Assembly(nodes, elements, n_chunks=3)
    young, poisson, eigen = material(elements.shape[0])
    # one material per element so that the numpy twin (constant over the element) applies
    young[:] = young[:, :1]
    poisson[:] = poisson[:, :1]
    eigen[:] = eigen[:, :1]
    data, rhs, k_ug, k_gg, f_g = asm.linear(young, poisson, eigen, gps=gps)
    k_ref = np.zeros((asm.n_dof + 2,) * 2)
    f_ref = np.zeros(asm.n_dof + 2)
    for e, el in enumerate(elements):
        k_e, f_e = element_numpy(nodes[el], young[e, 0], poisson[e, 0], eigenstrain=eigen[e, 0])
        dofs = np.r_[np.ravel(np.column_stack([2 * el, 2 * el + 1])), asm.n_dof, asm.n_dof + 1]
        k_ref[np.ix_(dofs, dofs)] += k_e
        f_ref[dofs] += f_e
    n = asm.n_dof
    np.testing.assert_allclose(asm.dense(data), k_ref[:n, :n], rtol=0, atol=1e-12 * np.abs(k_ref).max())
    np.testing.assert_allclose(rhs, f_ref[:n], rtol=0, atol=1e-12 * np.abs(f_ref).max())
    if gps:
        np.testing.assert_allclose(k_ug, k_ref[:n, n:], rtol=0, atol=1e-12 * np.abs(k_ref[:n, n:]).max())
        np.testing.assert_allclose(k_gg, k_ref[n:, n:], rtol=1e-12)
        np.testing.assert_allclose(f_g, f_ref[n:], rtol=1e-12)


def test_body_force_load_integrates_constant_force_exactly():
    """sum of nodal loads = b * area, for each component (partition of unity)."""
    nodes, elements = grid(3, 2, seed=2)
    asm = Assembly(nodes, elements)
    body = np.broadcast_to([3.0, -2.0], (elements.shape[0], 4, 2)).copy()
    rhs = asm.linear(np.ones((elements.shape[0], 4)), np.full((elements.shape[0], 4), 0.3),
                     np.zeros((elements.shape[0], 4, 4)), body=body)[1]
    area = 6.0  # jittered interior nodes leave the outer boundary, hence the area, unchanged
    np.testing.assert_allclose([rhs[0::2].sum(), rhs[1::2].sum()], [3.0 * area, -2.0 * area], rtol=1e-13)


def test_parallel_assembly_is_bitwise_identical_for_one_and_two_threads_and_serial_twin():
    n = 6 if JIT_OFF else 40
    nodes, elements = grid(n, n, seed=11)
    asm = Assembly(nodes, elements, n_chunks=8 if JIT_OFF else 24)
    young, poisson, eigen = material(elements.shape[0], seed=5)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(asm.linear(young, poisson, eigen, gps=True))
    finally:
        numba.set_num_threads(before)
    results.append(asm.linear(young, poisson, eigen, gps=True, parallel=False))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_dirichlet_row_column_replacement_matches_numpy_twin():
    nodes, elements = grid(2, 2, seed=4)
    asm = Assembly(nodes, elements)
    young, poisson, eigen = material(elements.shape[0], seed=1)
    data, rhs = asm.linear(young, poisson, eigen)[:2]
    k = asm.dense(data)
    fixed = np.zeros(asm.n_dof, dtype=bool)
    fixed[[0, 1, 5, 9]] = True
    values = np.where(fixed, np.arange(asm.n_dof) * 1e-4, 0.0)
    shift = np.empty(asm.n_dof)
    fem_q1.apply_dirichlet(asm.indptr, asm.indices, data, fixed, values, shift)
    new_rhs = np.where(fixed, shift, rhs + shift)
    k_ref = k.copy()
    rhs_ref = rhs - k @ values
    k_ref[fixed, :] = 0.0
    k_ref[:, fixed] = 0.0
    k_ref[fixed, fixed] = np.diag(k)[fixed]
    rhs_ref[fixed] = np.diag(k)[fixed] * values[fixed]
    np.testing.assert_allclose(asm.dense(data), k_ref, rtol=0, atol=1e-12 * np.abs(k).max())
    np.testing.assert_allclose(new_rhs, rhs_ref, rtol=1e-12, atol=1e-12 * np.abs(rhs).max())
    # the constrained system returns the prescribed values
    sol = np.linalg.solve(asm.dense(data), new_rhs)
    np.testing.assert_allclose(sol[fixed], values[fixed], rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# J2 radial return


E, NU = 100e9, 0.3
MU = E / (2 * (1 + NU))


def call_return(strain, *, eigen=None, plastic_old=None, alpha_old=0.0, yield_stress=200e6, hardening=0.0):
    stress, plastic, tangent = np.empty(4), np.empty(4), np.empty((4, 4))
    alpha = fem_q1.radial_return(np.asarray(strain, float), np.zeros(4) if eigen is None else eigen,
                                 np.zeros(4) if plastic_old is None else plastic_old, alpha_old, E, NU,
                                 yield_stress, hardening, stress, plastic, tangent)
    return stress, plastic, alpha, tangent


@pytest.mark.parametrize("hardening", [0.0, 10e9])
def test_radial_return_is_exact_for_uniaxial_stress(hardening):
    """Total strain of a uniaxial-stress state sigma_xx = s > sigma_y: one return gives it back."""
    sy = 200e6
    alpha = 4e-3
    s = sy + hardening * alpha
    strain = s / E * np.array([1.0, -NU, -NU, 0.0]) + alpha * np.array([1.0, -0.5, -0.5, 0.0])
    stress, plastic, alpha_new, _ = call_return(strain, yield_stress=sy, hardening=hardening)
    np.testing.assert_allclose(stress, [s, 0.0, 0.0, 0.0], rtol=0, atol=1e-9 * s)
    np.testing.assert_allclose(plastic, alpha * np.array([1.0, -0.5, -0.5, 0.0]), rtol=0, atol=1e-12)
    assert alpha_new == pytest.approx(alpha, rel=1e-10)


@pytest.mark.parametrize("hardening", [0.0, 5e9])
def test_radial_return_is_exact_for_the_compressed_film_equibiaxial_state(hardening):
    """sigma_xx = sigma_yy = -s, sigma_zz = 0 (a film swelling on a rigid substrate)."""
    sy, alpha = 300e6, 2e-3
    s = sy + hardening * alpha
    el = -s * np.array([(1 - NU) / E, -2 * NU / E, (1 - NU) / E, 0.0])
    pl = alpha * np.array([-0.5, 1.0, -0.5, 0.0])
    stress, plastic, alpha_new, _ = call_return(el + pl, yield_stress=sy, hardening=hardening)
    np.testing.assert_allclose(stress, [-s, 0.0, -s, 0.0], rtol=0, atol=1e-9 * s)
    np.testing.assert_allclose(plastic, pl, rtol=0, atol=1e-12)
    assert alpha_new == pytest.approx(alpha, rel=1e-10)


def test_radial_return_general_state_lies_on_the_yield_surface_and_keeps_pressure_and_direction():
    rng = np.random.default_rng(8)
    sy, h = 250e6, 3e9
    plastic_old = rng.normal(0, 1e-3, 4)
    plastic_old[:3] -= plastic_old[:3].mean()
    eigen = rng.normal(0, 1e-3, 4)
    strain = rng.normal(0, 1e-2, 4)
    stress, plastic, alpha, _ = call_return(strain, eigen=eigen, plastic_old=plastic_old, alpha_old=1e-3,
                                            yield_stress=sy, hardening=h)
    trial, _, _, _ = call_return(strain, eigen=eigen, plastic_old=plastic_old, yield_stress=np.inf)

    def dev(s):
        d = s.copy()
        d[:3] -= s[:3].mean()
        return d

    q = np.sqrt(1.5 * (np.sum(dev(stress)[:3] ** 2) + 2 * stress[3] ** 2))
    assert q == pytest.approx(sy + h * alpha, rel=1e-12)
    assert stress[:3].mean() == pytest.approx(trial[:3].mean(), rel=1e-12)
    direction = dev(stress) / np.linalg.norm(dev(stress))  # radial: the deviator keeps its direction
    np.testing.assert_allclose(direction, dev(trial) / np.linalg.norm(dev(trial)), rtol=1e-10)
    assert abs((plastic - plastic_old)[:3].sum()) < 1e-15  # isochoric flow
    # elastic relation with the new plastic strain
    np.testing.assert_allclose(stress, voigt_stiffness(E, NU) @ (strain - eigen - plastic), rtol=1e-10,
                               atol=1e-6)


def test_radial_return_below_yield_is_elastic():
    strain = np.array([1e-4, -2e-4, 0.0, 1e-4])
    stress, plastic, alpha, tangent = call_return(strain, alpha_old=0.01)
    np.testing.assert_allclose(stress, voigt_stiffness(E, NU) @ strain, rtol=1e-14)
    np.testing.assert_array_equal(plastic, 0.0)
    assert alpha == 0.01
    np.testing.assert_allclose(tangent, voigt_stiffness(E, NU), rtol=1e-14)


@pytest.mark.parametrize("hardening", [0.0, 8e9])
def test_consistent_tangent_matches_finite_differences(hardening):
    rng = np.random.default_rng(21)
    strain = rng.normal(0, 5e-3, 4)
    plastic_old = np.array([1e-3, -4e-4, -6e-4, 2e-4])
    tangent = call_return(strain, plastic_old=plastic_old, alpha_old=1e-3, hardening=hardening)[3]
    assert call_return(strain, plastic_old=plastic_old, alpha_old=1e-3, hardening=hardening)[2] > 1e-3
    h = 1e-8
    fd = np.empty((4, 4))
    for j in range(4):
        step = np.zeros(4)
        step[j] = h
        plus = call_return(strain + step, plastic_old=plastic_old, alpha_old=1e-3, hardening=hardening)[0]
        minus = call_return(strain - step, plastic_old=plastic_old, alpha_old=1e-3, hardening=hardening)[0]
        fd[:, j] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=0, atol=1e-6 * MU)
    np.testing.assert_allclose(tangent, tangent.T, rtol=0, atol=1e-9 * MU)


def test_tangent_assembly_of_elastic_material_is_the_linear_system():
    """With infinite yield: K_T = K and f_int = K u - f_eigen (same pattern, same element)."""
    nodes, elements = grid(3, 2, seed=9)
    asm = Assembly(nodes, elements, n_chunks=2)
    n_el = elements.shape[0]
    young, poisson, eigen = material(n_el, seed=2)
    u = np.random.default_rng(1).normal(0, 1e-3, asm.n_dof)
    g = np.array([2e-4, -1e-4])
    data, rhs, k_ug, k_gg, f_g = asm.linear(young, poisson, eigen, gps=True)
    out = [np.empty(asm.indices.size), np.empty(asm.n_dof), np.empty((asm.n_dof, 2)), np.empty((2, 2)),
           np.empty(2)]
    stress, plastic, alpha = np.empty((n_el, 4, 4)), np.empty((n_el, 4, 4)), np.empty((n_el, 4))
    fem_q1.assemble_tangent(nodes, elements, asm.block_position, asm.indptr, *asm.chunks, True, True, u, g,
                            young, poisson, eigen, np.zeros((n_el, 4, 4)), np.zeros((n_el, 4)),
                            np.full((n_el, 4), np.inf), np.zeros((n_el, 4)), stress, plastic, alpha, *out)
    np.testing.assert_allclose(out[0], data, rtol=1e-13, atol=1e-13 * np.abs(data).max())
    k = asm.dense(data)
    f_int = k @ u + k_ug @ g - rhs
    np.testing.assert_allclose(out[1], f_int, rtol=0, atol=1e-12 * np.abs(rhs).max())
    np.testing.assert_allclose(out[4], k_ug.T @ u + k_gg @ g - f_g, rtol=0, atol=1e-12 * np.abs(f_g).max())
    strain_r, stress_r = np.empty((n_el, 4, 4)), np.empty((n_el, 4, 4))
    fem_q1.recover(nodes, elements, True, u, g, young, poisson, eigen, np.zeros((0, 4, 4)), strain_r,
                   stress_r)
    np.testing.assert_allclose(stress, stress_r, rtol=1e-12, atol=1e-12 * np.abs(stress_r).max())
    np.testing.assert_array_equal(plastic, 0.0)
