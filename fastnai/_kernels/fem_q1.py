"""Bilinear-quad (Q1) plane-strain elasticity: B-bar element kernels, J2 return, CSR assembly.

The 2D cross-section of SPEC §3.3 (b) lies in the (x, z) plane: x across the strip, z up
through substrate and film, y along the strip (out of plane). Each node carries (u_x, u_z);
degrees of freedom are numbered node by node, ``2 a`` (u_x of node a) and ``2 a + 1`` (u_z).
Strains and stresses are Voigt 4-vectors in the order ``[xx, zz, yy, xz]`` with *engineering*
shear strain ``gamma_xz = 2 eps_xz`` (so ``sigma_xz = mu gamma_xz``); eigenstrain and plastic
strain arrays use the same convention.

Out-of-plane strain: plane strain has ``eps_yy = 0``; generalised plane strain (GPS) has
``eps_yy = e0 + kappa_y z`` with the two global unknowns ``g = (e0, kappa_y)`` whose equations
are the force and moment balance in y. Element matrices are therefore 10 x 10: eight
displacement columns and the two GPS columns ``[0, 0, 1, 0]`` and ``[0, 0, z, 0]``.

Element (counter-clockwise nodes, 2 x 2 Gauss points ``xi, eta = +-1/sqrt(3)``)::

    3 o---------o 2        eps(gp) = B(gp) [u_e; g]
      |  4    3 |          K_e = sum_gp w |J| Bbar^T C Bbar
      |  1    2 |          f_e = sum_gp w |J| Bbar^T C (eps* + eps_p) + N^T b
    0 o---------o 1

B-bar (mean dilatation, selective; Hughes 1980, doi:10.1002/nme.1620151104): the volumetric
part of B at each Gauss point is replaced by its element average, for every column,

    Bbar_i = B_i + (tr_avg - tr(gp)) / 3   (i = xx, zz, yy),   tr = B_xx + B_zz + B_yy,

so that the element does not lock when the flow is (nearly) isochoric (J2 plasticity,
nu -> 1/2). ``bbar = False`` gives the plain (locking) Q1 element.

Assembly scatters element matrices into a CSR pattern computed once per mesh
(:func:`csr_pattern`): for every element the 16 positions of its node-pair 2 x 2 blocks in the
CSR data array, so assembly is a scatter with no search and no sort. Elements are cut into
fixed contiguous chunks and the chunks coloured (:func:`chunk_colouring`) so that no two
chunks of one colour share a node; the parallel kernels run colour by colour, each chunk on one
thread in element order, so every matrix entry receives its contributions in the same order
whatever the number of threads (bitwise-identical results). Global GPS sums go to per-chunk
partial sums reduced in chunk order.

J2 plasticity (radial return, Simo & Taylor 1985, doi:10.1016/0045-7825(85)90070-2;
Simo & Hughes, Computational Inelasticity, 1998, §3.3) with linear isotropic hardening
``sigma_y(alpha) = sigma_y0 + H alpha`` (H = 0: perfect plasticity) and the consistent
tangent. All quantities SI: lengths [m], stresses and moduli [Pa], forces per unit length in y
[N m-1].
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._jit import JIT, JIT_INLINE, JIT_PARALLEL

XX = 0  # Voigt component indices
ZZ = 1
YY = 2
XZ = 3
N_COMP = 4
N_GAUSS = 4
N_COLS = 10  # 8 displacement columns + (e0, kappa_y)

_G = 1.0 / math.sqrt(3.0)
# natural coordinates of the nodes and of the Gauss points (both counter-clockwise)
NODE_XI = np.array([-1.0, 1.0, 1.0, -1.0])
NODE_ETA = np.array([-1.0, -1.0, 1.0, 1.0])
GAUSS_XI = np.array([-_G, _G, _G, -_G])
GAUSS_ETA = np.array([-_G, -_G, _G, _G])


# ----------------------------------------------------------------------------------------------
# mesh-level set-up: pattern and colouring


@njit(**JIT)
def _node_elements(elements, n_nodes):
    """CSR lists of the elements around each node (node -> elements)."""
    n_el = elements.shape[0]
    count = np.zeros(n_nodes + 1, dtype=np.int64)
    for e in range(n_el):
        for a in range(4):
            count[elements[e, a] + 1] += 1
    for i in range(n_nodes):
        count[i + 1] += count[i]
    fill = count[:-1].copy()
    items = np.empty(count[n_nodes], dtype=np.int64)
    for e in range(n_el):
        for a in range(4):
            n = elements[e, a]
            items[fill[n]] = e
            fill[n] += 1
    return count, items


@njit(**JIT_INLINE)
def _sorted_neighbours(a, ptr, items, elements, scratch):
    """The distinct nodes of the elements around node ``a``, ascending, into ``scratch``;
    returns their number."""
    m = 0
    for k in range(ptr[a], ptr[a + 1]):
        e = items[k]
        for j in range(4):
            b = elements[e, j]
            found = False
            for q in range(m):
                if scratch[q] == b:
                    found = True
                    break
            if not found:
                # insertion into the sorted list
                q = m
                while q > 0 and scratch[q - 1] > b:
                    scratch[q] = scratch[q - 1]
                    q -= 1
                scratch[q] = b
                m += 1
    return m


@njit(**JIT)
def csr_pattern(elements, n_nodes):
    """CSR sparsity of the 2-DOF-per-node stiffness matrix and the element scatter map.

    Node ``a`` couples to every node ``b`` sharing an element with it; rows ``2a`` and
    ``2a + 1`` both hold the columns ``2b, 2b + 1`` of its neighbours ``b`` in ascending order,
    so the block of the node pair (a, b) occupies ``p, p + 1`` in row ``2a`` and
    ``p + L, p + L + 1`` in row ``2a + 1`` (``L`` the row length).

    Parameters
    ----------
    elements
        (n_elements, 4) node indices of each quad, int64.
    n_nodes
        Number of nodes.

    Returns
    -------
    indptr, indices
        CSR structure (int64) of the (2 n_nodes)^2 matrix.
    block_position
        (n_elements, 4, 4) int64: position in the data array of entry ``(2 a_i, 2 a_j)`` for
        local nodes i, j of each element.
    """
    n_el = elements.shape[0]
    ptr, items = _node_elements(elements, n_nodes)
    # sorted neighbour list of every node (a quad mesh has at most ~9 neighbours per node)
    n_neighbours = np.zeros(n_nodes, dtype=np.int64)
    max_deg = 0
    for a in range(n_nodes):
        max_deg = max(max_deg, ptr[a + 1] - ptr[a])
    scratch = np.empty(4 * max_deg + 1, dtype=np.int64)
    neighbour_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
    # first pass: counts; second: the sorted lists
    for a in range(n_nodes):
        m = _sorted_neighbours(a, ptr, items, elements, scratch)
        n_neighbours[a] = m
        neighbour_ptr[a + 1] = neighbour_ptr[a] + m
    neighbours = np.empty(neighbour_ptr[n_nodes], dtype=np.int64)
    for a in range(n_nodes):
        m = _sorted_neighbours(a, ptr, items, elements, scratch)
        s = neighbour_ptr[a]
        for q in range(m):
            neighbours[s + q] = scratch[q]
    n_dof = 2 * n_nodes
    indptr = np.zeros(n_dof + 1, dtype=np.int64)
    for a in range(n_nodes):
        length = 2 * n_neighbours[a]
        indptr[2 * a + 1] = indptr[2 * a] + length
        indptr[2 * a + 2] = indptr[2 * a + 1] + length
    indices = np.empty(indptr[n_dof], dtype=np.int64)
    for a in range(n_nodes):
        s = neighbour_ptr[a]
        m = n_neighbours[a]
        for r in range(2):
            base = indptr[2 * a + r]
            for q in range(m):
                b = neighbours[s + q]
                indices[base + 2 * q] = 2 * b
                indices[base + 2 * q + 1] = 2 * b + 1
    block_position = np.empty((n_el, 4, 4), dtype=np.int64)
    for e in range(n_el):
        for i in range(4):
            a = elements[e, i]
            s = neighbour_ptr[a]
            m = n_neighbours[a]
            for j in range(4):
                b = elements[e, j]
                lo = 0
                hi = m - 1
                while lo < hi:  # binary search of b in the sorted neighbours of a
                    mid = (lo + hi) // 2
                    if neighbours[s + mid] < b:
                        lo = mid + 1
                    else:
                        hi = mid
                block_position[e, i, j] = indptr[2 * a] + 2 * lo
    return indptr, indices, block_position


@njit(**JIT)
def chunk_colouring(elements, n_nodes, n_chunks):
    """Cut the elements into contiguous chunks and colour them so that no two chunks of one
    colour share a node (greedy, in chunk order).

    Parameters
    ----------
    elements
        (n_elements, 4) node indices.
    n_nodes
        Number of nodes.
    n_chunks
        Requested number of chunks (clipped to [1, n_elements]).

    Returns
    -------
    chunk_start
        (n_chunks + 1,) first element of each chunk; chunk c is ``chunk_start[c]:chunk_start[c+1]``.
    colour_ptr, colour_chunks
        Chunks of colour k are ``colour_chunks[colour_ptr[k]:colour_ptr[k + 1]]`` (ascending).
    """
    n_el = elements.shape[0]
    n_chunks = max(1, min(n_chunks, n_el))
    chunk_start = np.empty(n_chunks + 1, dtype=np.int64)
    for c in range(n_chunks + 1):
        chunk_start[c] = (c * n_el) // n_chunks
    chunk_of = np.empty(n_el, dtype=np.int64)
    for c in range(n_chunks):
        for e in range(chunk_start[c], chunk_start[c + 1]):
            chunk_of[e] = c
    ptr, items = _node_elements(elements, n_nodes)
    colour = np.full(n_chunks, -1, dtype=np.int64)
    used = np.zeros(n_chunks + 1, dtype=np.int64)  # used[k] == c + 1: colour k taken by a neighbour of c
    n_colours = 0
    for c in range(n_chunks):
        for e in range(chunk_start[c], chunk_start[c + 1]):
            for a in range(4):
                n = elements[e, a]
                for k in range(ptr[n], ptr[n + 1]):
                    d = chunk_of[items[k]]
                    if d != c and colour[d] >= 0:
                        used[colour[d]] = c + 1
        k = 0
        while used[k] == c + 1:
            k += 1
        colour[c] = k
        n_colours = max(n_colours, k + 1)
    colour_ptr = np.zeros(n_colours + 1, dtype=np.int64)
    for c in range(n_chunks):
        colour_ptr[colour[c] + 1] += 1
    for k in range(n_colours):
        colour_ptr[k + 1] += colour_ptr[k]
    fill = colour_ptr[:-1].copy()
    colour_chunks = np.empty(n_chunks, dtype=np.int64)
    for c in range(n_chunks):
        colour_chunks[fill[colour[c]]] = c
        fill[colour[c]] += 1
    return chunk_start, colour_ptr, colour_chunks


@njit(**JIT_PARALLEL)
def gauss_points(nodes, elements, out):
    """Coordinates of the 2 x 2 Gauss points of every element into ``out`` (n_elements, 4, 2) [m]."""
    for e in prange(elements.shape[0]):
        for g in range(N_GAUSS):
            x = 0.0
            z = 0.0
            for a in range(4):
                n = 0.25 * (1.0 + NODE_XI[a] * GAUSS_XI[g]) * (1.0 + NODE_ETA[a] * GAUSS_ETA[g])
                x += n * nodes[elements[e, a], 0]
                z += n * nodes[elements[e, a], 1]
            out[e, g, 0] = x
            out[e, g, 1] = z


# ----------------------------------------------------------------------------------------------
# element kinematics and constitutive updates


@njit(**JIT)
def element_b(nodes, elements, e, bbar, b, wdet, shape):
    """B (or B-bar) matrices of element ``e`` at its four Gauss points.

    Parameters
    ----------
    nodes, elements
        Mesh: (n_nodes, 2) coordinates (x, z) [m] and (n_elements, 4) connectivity.
    e
        Element index.
    bbar
        True: mean-dilatation B-bar; False: plain Q1.
    b
        Output (4 Gauss points, 4 components, 10 columns): strain = b[g] @ [u_e; e0; kappa_y].
    wdet
        Output (4,): Gauss weight times Jacobian determinant [m2] (per metre in y: volume).
    shape
        Output (4 Gauss points, 4 nodes): shape function values.

    Returns
    -------
    float
        Element area [m2].
    """
    area = 0.0
    for g in range(N_GAUSS):
        xi = GAUSS_XI[g]
        eta = GAUSS_ETA[g]
        j11 = 0.0
        j12 = 0.0
        j21 = 0.0
        j22 = 0.0
        zg = 0.0
        for a in range(4):
            dxi = 0.25 * NODE_XI[a] * (1.0 + NODE_ETA[a] * eta)
            deta = 0.25 * NODE_ETA[a] * (1.0 + NODE_XI[a] * xi)
            x = nodes[elements[e, a], 0]
            z = nodes[elements[e, a], 1]
            j11 += x * dxi
            j12 += x * deta
            j21 += z * dxi
            j22 += z * deta
            n = 0.25 * (1.0 + NODE_XI[a] * xi) * (1.0 + NODE_ETA[a] * eta)
            shape[g, a] = n
            zg += n * z
        det = j11 * j22 - j12 * j21
        inv = 1.0 / det
        for c in range(N_COLS):
            for i in range(N_COMP):
                b[g, i, c] = 0.0
        for a in range(4):
            dxi = 0.25 * NODE_XI[a] * (1.0 + NODE_ETA[a] * eta)
            deta = 0.25 * NODE_ETA[a] * (1.0 + NODE_XI[a] * xi)
            nx = (j22 * dxi - j21 * deta) * inv
            nz = (-j12 * dxi + j11 * deta) * inv
            b[g, XX, 2 * a] = nx
            b[g, XZ, 2 * a] = nz
            b[g, ZZ, 2 * a + 1] = nz
            b[g, XZ, 2 * a + 1] = nx
        b[g, YY, 8] = 1.0
        b[g, YY, 9] = zg
        wdet[g] = det
        area += det
    if bbar:
        for c in range(N_COLS):
            avg = 0.0
            for g in range(N_GAUSS):
                avg += wdet[g] * (b[g, XX, c] + b[g, ZZ, c] + b[g, YY, c])
            avg /= area
            for g in range(N_GAUSS):
                corr = (avg - (b[g, XX, c] + b[g, ZZ, c] + b[g, YY, c])) / 3.0
                b[g, XX, c] += corr
                b[g, ZZ, c] += corr
                b[g, YY, c] += corr
    return area


@njit(**JIT)
def lame(young, poisson):
    """Lame constants (lambda, mu) [Pa] from Young's modulus [Pa] and Poisson's ratio."""
    mu = young / (2.0 * (1.0 + poisson))
    lam = young * poisson / ((1.0 + poisson) * (1.0 - 2.0 * poisson))
    return lam, mu


@njit(**JIT)
def elastic_tangent(young, poisson, out):
    """Isotropic 4 x 4 Voigt stiffness [Pa] for ``[xx, zz, yy, xz]`` (engineering shear)."""
    lam, mu = lame(young, poisson)
    for i in range(N_COMP):
        for j in range(N_COMP):
            out[i, j] = 0.0
    for i in range(3):
        for j in range(3):
            out[i, j] = lam
        out[i, i] = lam + 2.0 * mu
    out[XZ, XZ] = mu


@njit(**JIT)
def radial_return(strain, eigenstrain, plastic_old, alpha_old, young, poisson, yield_stress, hardening,
                  stress, plastic_new, tangent):
    """J2 return map at one integration point with the consistent (algorithmic) tangent.

    Trial state ``sigma_tr = C (eps - eps* - eps_p^n)``, deviator ``s``, von Mises
    ``q = sqrt(3/2 s:s)``, yield ``f = q - (sigma_y0 + H alpha_n)``. If f > 0::

        d_alpha   = f / (3 mu + H)
        sigma     = sigma_tr - 3 mu d_alpha s / q           (radial: direction of s kept)
        eps_p     = eps_p^n + d_alpha (3/2) s / q           (Voigt: shear doubled)
        C_alg     = K 1(x)1 + 2 mu th1 I_dev - 2 mu th2 n(x)n,  n = s / |s|,
        th1 = 1 - 3 mu d_alpha / q,   th2 = 3 mu / (3 mu + H) - 3 mu d_alpha / q.

    Exact for any total strain increment whose trial deviator is proportional to the final one
    (uniaxial, biaxial paths with linear hardening). Perfect plasticity: ``hardening = 0``;
    elastic only: ``yield_stress = inf``.

    Parameters
    ----------
    strain, eigenstrain, plastic_old
        Total, eigen- and previous plastic strain, Voigt ``[xx, zz, yy, gamma_xz]`` (4,).
    alpha_old
        Previous equivalent plastic strain.
    young, poisson
        Young's modulus [Pa] and Poisson's ratio.
    yield_stress, hardening
        Initial uniaxial yield stress sigma_y0 [Pa] and linear hardening modulus H [Pa].
    stress, plastic_new, tangent
        Outputs: Cauchy stress [Pa] (4,), plastic strain (4,), consistent tangent [Pa] (4, 4).

    Returns
    -------
    float
        New equivalent plastic strain alpha.
    """
    lam, mu = lame(young, poisson)
    bulk = lam + 2.0 * mu / 3.0
    e0 = strain[0] - eigenstrain[0] - plastic_old[0]
    e1 = strain[1] - eigenstrain[1] - plastic_old[1]
    e2 = strain[2] - eigenstrain[2] - plastic_old[2]
    e3 = strain[3] - eigenstrain[3] - plastic_old[3]
    tr = e0 + e1 + e2
    s0 = lam * tr + 2.0 * mu * e0
    s1 = lam * tr + 2.0 * mu * e1
    s2 = lam * tr + 2.0 * mu * e2
    s3 = mu * e3
    p = (s0 + s1 + s2) / 3.0
    d0 = s0 - p
    d1 = s1 - p
    d2 = s2 - p
    norm = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2 + 2.0 * s3 * s3)
    q = math.sqrt(1.5) * norm
    f = q - (yield_stress + hardening * alpha_old)
    if not f > 0.0:
        stress[0] = s0
        stress[1] = s1
        stress[2] = s2
        stress[3] = s3
        for i in range(N_COMP):
            plastic_new[i] = plastic_old[i]
        elastic_tangent(young, poisson, tangent)
        return alpha_old
    d_alpha = f / (3.0 * mu + hardening)
    ratio = 3.0 * mu * d_alpha / q
    stress[0] = s0 - ratio * d0
    stress[1] = s1 - ratio * d1
    stress[2] = s2 - ratio * d2
    stress[3] = s3 - ratio * s3
    flow = 1.5 * d_alpha / q
    plastic_new[0] = plastic_old[0] + flow * d0
    plastic_new[1] = plastic_old[1] + flow * d1
    plastic_new[2] = plastic_old[2] + flow * d2
    plastic_new[3] = plastic_old[3] + 2.0 * flow * s3
    th1 = 1.0 - ratio
    th2 = 3.0 * mu / (3.0 * mu + hardening) - ratio
    n0 = d0 / norm
    n1 = d1 / norm
    n2 = d2 / norm
    n3 = s3 / norm
    for i in range(3):
        for j in range(3):
            tangent[i, j] = bulk - 2.0 * mu * th1 / 3.0
        tangent[i, i] += 2.0 * mu * th1
        tangent[i, XZ] = 0.0
        tangent[XZ, i] = 0.0
    tangent[XZ, XZ] = mu * th1
    nv = (n0, n1, n2, n3)
    for i in range(N_COMP):
        for j in range(N_COMP):
            tangent[i, j] -= 2.0 * mu * th2 * nv[i] * nv[j]
    return alpha_old + d_alpha


# ----------------------------------------------------------------------------------------------
# element matrices


@njit(**JIT)
def _element_linear(nodes, elements, e, bbar, gps, young, poisson, eigenstrain, plastic, body,
                    b, wdet, shape, cb, ke, fe):
    """Elastic element stiffness ``ke`` (10, 10) and load ``fe`` (10,) of element ``e``."""
    element_b(nodes, elements, e, bbar, b, wdet, shape)
    has_plastic = plastic.shape[0] > 0
    has_body = body.shape[0] > 0
    for r in range(N_COLS):
        fe[r] = 0.0
        for c in range(N_COLS):
            ke[r, c] = 0.0
    nc = N_COLS if gps else 8
    for g in range(N_GAUSS):
        lam, mu = lame(young[e, g], poisson[e, g])
        w = wdet[g]
        # cb = C B (isotropic C applied column by column)
        for c in range(nc):
            tr = b[g, XX, c] + b[g, ZZ, c] + b[g, YY, c]
            cb[XX, c] = lam * tr + 2.0 * mu * b[g, XX, c]
            cb[ZZ, c] = lam * tr + 2.0 * mu * b[g, ZZ, c]
            cb[YY, c] = lam * tr + 2.0 * mu * b[g, YY, c]
            cb[XZ, c] = mu * b[g, XZ, c]
        for r in range(nc):
            for c in range(r, nc):
                ke[r, c] += w * (b[g, XX, r] * cb[XX, c] + b[g, ZZ, r] * cb[ZZ, c]
                                 + b[g, YY, r] * cb[YY, c] + b[g, XZ, r] * cb[XZ, c])
        # eigen-/plastic-strain load: B^T C (eps* + eps_p)
        s0 = eigenstrain[e, g, 0]
        s1 = eigenstrain[e, g, 1]
        s2 = eigenstrain[e, g, 2]
        s3 = eigenstrain[e, g, 3]
        if has_plastic:
            s0 += plastic[e, g, 0]
            s1 += plastic[e, g, 1]
            s2 += plastic[e, g, 2]
            s3 += plastic[e, g, 3]
        tr = s0 + s1 + s2
        t0 = w * (lam * tr + 2.0 * mu * s0)
        t1 = w * (lam * tr + 2.0 * mu * s1)
        t2 = w * (lam * tr + 2.0 * mu * s2)
        t3 = w * mu * s3
        for r in range(nc):
            fe[r] += b[g, XX, r] * t0 + b[g, ZZ, r] * t1 + b[g, YY, r] * t2 + b[g, XZ, r] * t3
        if has_body:
            for a in range(4):
                fe[2 * a] += w * shape[g, a] * body[e, g, 0]
                fe[2 * a + 1] += w * shape[g, a] * body[e, g, 1]
    for r in range(N_COLS):
        for c in range(r):
            ke[r, c] = ke[c, r]


@njit(**JIT)
def _element_tangent(nodes, elements, e, bbar, u, gps_values, young, poisson, eigenstrain,
                     plastic_old, alpha_old, yield_stress, hardening, stress, plastic_new, alpha_new,
                     b, wdet, shape, strain, tangent, cb, ke, fe):
    """Consistent tangent ``ke`` and internal force ``fe`` of element ``e``; updates the state."""
    element_b(nodes, elements, e, bbar, b, wdet, shape)
    for r in range(N_COLS):
        fe[r] = 0.0
        for c in range(N_COLS):
            ke[r, c] = 0.0
    for g in range(N_GAUSS):
        for i in range(N_COMP):
            v = b[g, i, 8] * gps_values[0] + b[g, i, 9] * gps_values[1]
            for a in range(4):
                n = elements[e, a]
                v += b[g, i, 2 * a] * u[2 * n] + b[g, i, 2 * a + 1] * u[2 * n + 1]
            strain[i] = v
        alpha_new[e, g] = radial_return(strain, eigenstrain[e, g], plastic_old[e, g], alpha_old[e, g],
                                        young[e, g], poisson[e, g], yield_stress[e, g], hardening[e, g],
                                        stress[e, g], plastic_new[e, g], tangent)
        w = wdet[g]
        for c in range(N_COLS):
            for i in range(N_COMP):
                cb[i, c] = (tangent[i, 0] * b[g, 0, c] + tangent[i, 1] * b[g, 1, c]
                            + tangent[i, 2] * b[g, 2, c] + tangent[i, 3] * b[g, 3, c])
        for r in range(N_COLS):
            for c in range(r, N_COLS):
                ke[r, c] += w * (b[g, XX, r] * cb[XX, c] + b[g, ZZ, r] * cb[ZZ, c]
                                 + b[g, YY, r] * cb[YY, c] + b[g, XZ, r] * cb[XZ, c])
            fe[r] += w * (b[g, XX, r] * stress[e, g, 0] + b[g, ZZ, r] * stress[e, g, 1]
                          + b[g, YY, r] * stress[e, g, 2] + b[g, XZ, r] * stress[e, g, 3])
    # the consistent tangent of associative J2 is symmetric
    for r in range(N_COLS):
        for c in range(r):
            ke[r, c] = ke[c, r]


@njit(**JIT)
def _scatter(elements, e, block_position, indptr, ke, fe, gps, data, rhs, k_ug, kgg_part, fg_part):
    """Add one element's matrix and vector to the CSR data, the RHS and the GPS coupling."""
    for i in range(4):
        a = elements[e, i]
        length = indptr[2 * a + 1] - indptr[2 * a]
        for j in range(4):
            p = block_position[e, i, j]
            data[p] += ke[2 * i, 2 * j]
            data[p + 1] += ke[2 * i, 2 * j + 1]
            data[p + length] += ke[2 * i + 1, 2 * j]
            data[p + length + 1] += ke[2 * i + 1, 2 * j + 1]
        rhs[2 * a] += fe[2 * i]
        rhs[2 * a + 1] += fe[2 * i + 1]
        if gps:
            for k in range(2):
                k_ug[2 * a, k] += ke[2 * i, 8 + k]
                k_ug[2 * a + 1, k] += ke[2 * i + 1, 8 + k]
    if gps:
        for k in range(2):
            fg_part[k] += fe[8 + k]
            for m in range(2):
                kgg_part[k, m] += ke[8 + k, 8 + m]


@njit(**JIT)
def _linear_chunk(first, last, nodes, elements, block_position, indptr, bbar, gps, young, poisson,
                  eigenstrain, plastic, body, data, rhs, k_ug, kgg_part, fg_part):
    b = np.empty((N_GAUSS, N_COMP, N_COLS))
    wdet = np.empty(N_GAUSS)
    shape = np.empty((N_GAUSS, 4))
    cb = np.empty((N_COMP, N_COLS))
    ke = np.empty((N_COLS, N_COLS))
    fe = np.empty(N_COLS)
    for k in range(2):
        fg_part[k] = 0.0
        for m in range(2):
            kgg_part[k, m] = 0.0
    for e in range(first, last):
        _element_linear(nodes, elements, e, bbar, gps, young, poisson, eigenstrain, plastic, body,
                        b, wdet, shape, cb, ke, fe)
        _scatter(elements, e, block_position, indptr, ke, fe, gps, data, rhs, k_ug, kgg_part, fg_part)


@njit(**JIT)
def _tangent_chunk(first, last, nodes, elements, block_position, indptr, bbar, gps, u, gps_values, young,
                   poisson, eigenstrain, plastic_old, alpha_old, yield_stress, hardening, stress,
                   plastic_new, alpha_new, data, f_int, k_ug, kgg_part, fg_part):
    b = np.empty((N_GAUSS, N_COMP, N_COLS))
    wdet = np.empty(N_GAUSS)
    shape = np.empty((N_GAUSS, 4))
    strain = np.empty(N_COMP)
    tangent = np.empty((N_COMP, N_COMP))
    cb = np.empty((N_COMP, N_COLS))
    ke = np.empty((N_COLS, N_COLS))
    fe = np.empty(N_COLS)
    for k in range(2):
        fg_part[k] = 0.0
        for m in range(2):
            kgg_part[k, m] = 0.0
    for e in range(first, last):
        _element_tangent(nodes, elements, e, bbar, u, gps_values, young, poisson, eigenstrain,
                         plastic_old, alpha_old, yield_stress, hardening, stress, plastic_new, alpha_new,
                         b, wdet, shape, strain, tangent, cb, ke, fe)
        _scatter(elements, e, block_position, indptr, ke, fe, gps, data, f_int, k_ug, kgg_part, fg_part)


@njit(**JIT)
def _reduce_parts(kgg_parts, fg_parts, k_gg, f_g):
    """Sum the per-chunk GPS partial sums in chunk order (thread-count independent)."""
    for k in range(2):
        f_g[k] = 0.0
        for m in range(2):
            k_gg[k, m] = 0.0
    for c in range(fg_parts.shape[0]):
        for k in range(2):
            f_g[k] += fg_parts[c, k]
            for m in range(2):
                k_gg[k, m] += kgg_parts[c, k, m]


@njit(**JIT_PARALLEL)
def _zero_parallel(data, rhs, k_ug, gps):
    n = data.size
    n_blocks = 256
    for blk in prange(n_blocks):
        for i in range((blk * n) // n_blocks, ((blk + 1) * n) // n_blocks):
            data[i] = 0.0
    for i in prange(rhs.size):
        rhs[i] = 0.0
        if gps:
            k_ug[i, 0] = 0.0
            k_ug[i, 1] = 0.0


@njit(**JIT)
def _zero_serial(data, rhs, k_ug, gps):
    data[:] = 0.0
    rhs[:] = 0.0
    if gps:
        k_ug[:, :] = 0.0


# ----------------------------------------------------------------------------------------------
# assembly drivers (serial twin runs the same chunk/colour order, so both give identical bits)


@njit(**JIT_PARALLEL)
def assemble_linear(nodes, elements, block_position, indptr, chunk_start, colour_ptr, colour_chunks,
                    bbar, gps, young, poisson, eigenstrain, plastic, body, data, rhs, k_ug, k_gg, f_g):
    """Elastic stiffness K (CSR data) and load f, parallel over coloured element chunks.

    Discrete equations (per metre in y)::

        [K_uu  K_ug] [u]   [f_u]      K = sum_e sum_gp w |J| Bbar^T C Bbar
        [K_gu  K_gg] [g] = [f_g],     f = sum_e sum_gp w |J| (Bbar^T C (eps* + eps_p) + N^T b)

    Parameters
    ----------
    nodes, elements
        (n_nodes, 2) coordinates (x, z) [m]; (n_elements, 4) counter-clockwise connectivity.
    block_position, indptr
        Scatter map and row pointer from :func:`csr_pattern`.
    chunk_start, colour_ptr, colour_chunks
        Chunks and colours from :func:`chunk_colouring`.
    bbar, gps
        B-bar element (else plain Q1); generalised plane strain (fill k_ug, k_gg, f_g).
    young, poisson
        (n_elements, 4) Young's modulus [Pa] and Poisson's ratio at the Gauss points.
    eigenstrain
        (n_elements, 4, 4) stress-free strain, Voigt [xx, zz, yy, gamma_xz].
    plastic
        (n_elements, 4, 4) fixed plastic strain, or a (0, 4, 4) array for none.
    body
        (n_elements, 4, 2) body force (b_x, b_z) [N m-3], or a (0, 4, 2) array for none.
    data, rhs
        Outputs: CSR data (overwritten) [N m-2] and load vector (2 n_nodes,) [N m-1].
    k_ug, k_gg, f_g
        Outputs for GPS (ignored otherwise): (2 n_nodes, 2) coupling, (2, 2) and (2,) [N, N m].
    """
    _zero_parallel(data, rhs, k_ug, gps)
    n_chunks = chunk_start.size - 1
    kgg_parts = np.zeros((n_chunks, 2, 2))
    fg_parts = np.zeros((n_chunks, 2))
    for colour in range(colour_ptr.size - 1):
        first_chunk = colour_ptr[colour]
        n_here = colour_ptr[colour + 1] - first_chunk
        for k in prange(n_here):
            c = colour_chunks[first_chunk + k]
            _linear_chunk(chunk_start[c], chunk_start[c + 1], nodes, elements, block_position, indptr,
                          bbar, gps, young, poisson, eigenstrain, plastic, body, data, rhs, k_ug,
                          kgg_parts[c], fg_parts[c])
    _reduce_parts(kgg_parts, fg_parts, k_gg, f_g)


@njit(**JIT)
def assemble_linear_serial(nodes, elements, block_position, indptr, chunk_start, colour_ptr, colour_chunks,
                           bbar, gps, young, poisson, eigenstrain, plastic, body, data, rhs, k_ug, k_gg,
                           f_g):
    """Serial twin of :func:`assemble_linear` (same arguments, same order of sums)."""
    _zero_serial(data, rhs, k_ug, gps)
    n_chunks = chunk_start.size - 1
    kgg_parts = np.zeros((n_chunks, 2, 2))
    fg_parts = np.zeros((n_chunks, 2))
    for colour in range(colour_ptr.size - 1):
        for k in range(colour_ptr[colour], colour_ptr[colour + 1]):
            c = colour_chunks[k]
            _linear_chunk(chunk_start[c], chunk_start[c + 1], nodes, elements, block_position, indptr,
                          bbar, gps, young, poisson, eigenstrain, plastic, body, data, rhs, k_ug,
                          kgg_parts[c], fg_parts[c])
    _reduce_parts(kgg_parts, fg_parts, k_gg, f_g)


@njit(**JIT_PARALLEL)
def assemble_tangent(nodes, elements, block_position, indptr, chunk_start, colour_ptr, colour_chunks,
                     bbar, gps, u, gps_values, young, poisson, eigenstrain, plastic_old, alpha_old,
                     yield_stress, hardening, stress, plastic_new, alpha_new, data, f_int, k_ug, k_gg, f_g):
    """Consistent tangent K_T and internal force f_int = sum B^T sigma of a J2 state, in parallel.

    For a Newton step ``K_T du = f_ext - f_int``: every Gauss point runs :func:`radial_return`
    from the converged state of the previous load step (``plastic_old``, ``alpha_old``) with the
    current total strain ``Bbar [u; g]``, and writes its trial-corrected ``stress``,
    ``plastic_new`` and ``alpha_new``.

    Parameters
    ----------
    u
        (2 n_nodes,) nodal displacements [m].
    gps_values
        (2,) ``(e0, kappa_y)`` [-, m-1]; zeros in plane strain.
    young, poisson, yield_stress, hardening, alpha_old
        (n_elements, 4) moduli [Pa], Poisson's ratio, sigma_y0 [Pa], H [Pa], equivalent plastic strain.
    eigenstrain, plastic_old
        (n_elements, 4, 4) Voigt strains.
    stress, plastic_new, alpha_new
        Outputs at the Gauss points: (n_elements, 4, 4) [Pa], (n_elements, 4, 4), (n_elements, 4).
    data, f_int, k_ug, k_gg, f_g
        Outputs as in :func:`assemble_linear`; ``f_int`` [N m-1], ``f_g`` the GPS internal
        force and moment ``(int sigma_yy, int sigma_yy z)`` [N, N].

    Other arguments as in :func:`assemble_linear`.
    """
    _zero_parallel(data, f_int, k_ug, gps)
    n_chunks = chunk_start.size - 1
    kgg_parts = np.zeros((n_chunks, 2, 2))
    fg_parts = np.zeros((n_chunks, 2))
    for colour in range(colour_ptr.size - 1):
        first_chunk = colour_ptr[colour]
        n_here = colour_ptr[colour + 1] - first_chunk
        for k in prange(n_here):
            c = colour_chunks[first_chunk + k]
            _tangent_chunk(chunk_start[c], chunk_start[c + 1], nodes, elements, block_position, indptr,
                           bbar, gps, u, gps_values, young, poisson, eigenstrain, plastic_old, alpha_old,
                           yield_stress, hardening, stress, plastic_new, alpha_new, data, f_int, k_ug,
                           kgg_parts[c], fg_parts[c])
    _reduce_parts(kgg_parts, fg_parts, k_gg, f_g)


@njit(**JIT)
def assemble_tangent_serial(nodes, elements, block_position, indptr, chunk_start, colour_ptr, colour_chunks,
                            bbar, gps, u, gps_values, young, poisson, eigenstrain, plastic_old, alpha_old,
                            yield_stress, hardening, stress, plastic_new, alpha_new, data, f_int, k_ug,
                            k_gg, f_g):
    """Serial twin of :func:`assemble_tangent`."""
    _zero_serial(data, f_int, k_ug, gps)
    n_chunks = chunk_start.size - 1
    kgg_parts = np.zeros((n_chunks, 2, 2))
    fg_parts = np.zeros((n_chunks, 2))
    for colour in range(colour_ptr.size - 1):
        for k in range(colour_ptr[colour], colour_ptr[colour + 1]):
            c = colour_chunks[k]
            _tangent_chunk(chunk_start[c], chunk_start[c + 1], nodes, elements, block_position, indptr,
                           bbar, gps, u, gps_values, young, poisson, eigenstrain, plastic_old, alpha_old,
                           yield_stress, hardening, stress, plastic_new, alpha_new, data, f_int, k_ug,
                           kgg_parts[c], fg_parts[c])
    _reduce_parts(kgg_parts, fg_parts, k_gg, f_g)


# ----------------------------------------------------------------------------------------------
# recovery and boundary conditions


@njit(**JIT_PARALLEL)
def recover(nodes, elements, bbar, u, gps_values, young, poisson, eigenstrain, plastic, strain, stress):
    """Total strain ``Bbar [u; g]`` and elastic stress ``C (eps - eps* - eps_p)`` at the Gauss points.

    Parameters
    ----------
    u, gps_values
        (2 n_nodes,) displacements [m]; (2,) GPS ``(e0, kappa_y)`` (zeros in plane strain).
    young, poisson
        (n_elements, 4) [Pa], [-].
    eigenstrain
        (n_elements, 4, 4) Voigt.
    plastic
        (n_elements, 4, 4) Voigt, or (0, 4, 4) for none.
    strain, stress
        Outputs (n_elements, 4, 4): Voigt strain (engineering shear) and stress [Pa].
    """
    has_plastic = plastic.shape[0] > 0
    n_el = elements.shape[0]
    n_blocks = min(n_el, 256)
    for blk in prange(n_blocks):
        b = np.empty((N_GAUSS, N_COMP, N_COLS))
        wdet = np.empty(N_GAUSS)
        shape = np.empty((N_GAUSS, 4))
        for e in range((blk * n_el) // n_blocks, ((blk + 1) * n_el) // n_blocks):
            element_b(nodes, elements, e, bbar, b, wdet, shape)
            for g in range(N_GAUSS):
                for i in range(N_COMP):
                    v = b[g, i, 8] * gps_values[0] + b[g, i, 9] * gps_values[1]
                    for a in range(4):
                        n = elements[e, a]
                        v += b[g, i, 2 * a] * u[2 * n] + b[g, i, 2 * a + 1] * u[2 * n + 1]
                    strain[e, g, i] = v
                lam, mu = lame(young[e, g], poisson[e, g])
                e0 = strain[e, g, 0] - eigenstrain[e, g, 0]
                e1 = strain[e, g, 1] - eigenstrain[e, g, 1]
                e2 = strain[e, g, 2] - eigenstrain[e, g, 2]
                e3 = strain[e, g, 3] - eigenstrain[e, g, 3]
                if has_plastic:
                    e0 -= plastic[e, g, 0]
                    e1 -= plastic[e, g, 1]
                    e2 -= plastic[e, g, 2]
                    e3 -= plastic[e, g, 3]
                tr = e0 + e1 + e2
                stress[e, g, 0] = lam * tr + 2.0 * mu * e0
                stress[e, g, 1] = lam * tr + 2.0 * mu * e1
                stress[e, g, 2] = lam * tr + 2.0 * mu * e2
                stress[e, g, 3] = mu * e3


@njit(**JIT_PARALLEL)
def apply_dirichlet(indptr, indices, data, fixed, values, shift):
    """Symmetric Dirichlet conditions by row and column replacement, in place.

    Rows and columns of fixed DOFs are zeroed except the diagonal, which keeps its value
    ``d_i`` (so the matrix keeps its scale for AMG). The right-hand side then becomes
    ``rhs_i = d_i u_i`` on fixed rows and ``rhs_i - sum_(j fixed) K_ij u_j`` on free rows::

        rhs = where(fixed, shift, rhs + shift)

    Parameters
    ----------
    indptr, indices, data
        CSR matrix (data modified in place).
    fixed
        (n_dof,) bool, True where the displacement is prescribed.
    values
        (n_dof,) prescribed values [m] (read where fixed).
    shift
        Output (n_dof,): ``d_i u_i`` on fixed rows, ``-sum_(j fixed) K_ij u_j`` on free rows.
    """
    n = indptr.size - 1
    for i in prange(n):
        if fixed[i]:
            d = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                if indices[k] == i:
                    d = data[k]
                else:
                    data[k] = 0.0
            shift[i] = d * values[i]
        else:
            s = 0.0
            for k in range(indptr[i], indptr[i + 1]):
                j = indices[k]
                if fixed[j]:
                    s += data[k] * values[j]
                    data[k] = 0.0
            shift[i] = -s
