"""scikit-fem peer of the 2D plane-strain film-on-substrate elasticity benchmark (BASELINES §4).

The problem (:class:`FilmProblem`): a 600 nm Al-like film on a 3000 nm Si-like substrate,
6000 nm wide, on a uniform tensor grid of ``n x n`` nodes (Q1 quads; n = 71, 224, 707 give
10,082, 100,352 and 999,698 DOFs), eigenstrain -2e-3 (isotropic: xx, zz and the out-of-plane
yy) in the film, plane strain, bottom clamped, symmetry u_x = 0 on the left edge. Elements
whose Gauss points lie above z = 3000 nm are film: the material comes from the position, in
scikit-fem through ``w.x`` inside the forms, in fastnai through the Gauss-point coordinates.

scikit-fem assembles ``K`` and the eigenstrain load ``f = int C eps* : eps(v)`` with its
``BilinearForm``/``LinearForm`` (the usual way a scikit-fem user writes a two-material problem),
condenses the Dirichlet DOFs with ``condense`` and solves with the *same* pyamg set-up and CG as
fastnai (:func:`fastnai.fem.amg_hierarchy`, :func:`fastnai.fem.amg_cg`), rigid-body
near-nullspace, rtol 1e-8.

Quadrature: scikit-fem's default for Q1 is 3 x 3 Gauss points (what BASELINES §4 timed, 27 s
for 1e6 DOFs). On this rectangular mesh 2 x 2 points integrate the bilinear stiffness exactly
too, but the film/substrate interface (z = 3000 nm) cuts through one row of elements, where the
material sampled at the points differs. With ``intorder=2`` scikit-fem samples it at the same
2 x 2 Gauss points as fastnai: the identical discrete problem (solutions agree to the CG
tolerance) and the peer's faster, stricter variant.

Reference: T. Gustafsson and G. D. McBain, scikit-fem: A Python package for finite element
assembly, JOSS 5, 2369 (2020), doi:10.21105/joss.02369.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass

import numpy as np

from fastnai import fem


@dataclass(frozen=True)
class FilmProblem:
    """BASELINES §4: geometry [m], moduli [Pa], eigenstrain of the film, AMG-CG tolerance."""

    width: float = 6000e-9
    substrate_thickness: float = 3000e-9
    film_thickness: float = 600e-9
    young_film: float = 70e9  # Al-like
    poisson_film: float = 0.35
    young_substrate: float = 130e9  # Si-like
    poisson_substrate: float = 0.28
    eigenstrain: float = -2e-3
    rtol: float = 1e-8

    def lines(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniform node lines in x and z (n each)."""
        height = self.substrate_thickness + self.film_thickness
        return np.linspace(0.0, self.width, n), np.linspace(0.0, height, n)

    def material(self, z):
        """(E, nu, eps*) at heights z [m] (arrays of the shape of z)."""
        film = z > self.substrate_thickness
        return (np.where(film, self.young_film, self.young_substrate),
                np.where(film, self.poisson_film, self.poisson_substrate),
                np.where(film, self.eigenstrain, 0.0))


PROBLEM = FilmProblem()
#: grid nodes per side for about 1e4, 1e5 and 1e6 DOFs (2 n^2)
GRID = {10_000: 71, 100_000: 224, 1_000_000: 707}


def require_skfem() -> None:
    """Raise NotImplementedError (asv: skip) when scikit-fem is not installed."""
    if importlib.util.find_spec("skfem") is None:
        raise NotImplementedError("scikit-fem is not installed")


def skfem_setup(n: int, problem: FilmProblem = PROBLEM, intorder: int | None = None):
    """Mesh, vector Q1 basis and the two forms of the problem (scikit-fem objects)."""
    from skfem import Basis, BilinearForm, ElementQuad1, ElementVector, LinearForm, MeshQuad
    from skfem.helpers import ddot, sym_grad, trace

    x, z = problem.lines(n)
    mesh = MeshQuad.init_tensor(x, z)
    kwargs = {} if intorder is None else {"intorder": intorder}
    basis = Basis(mesh, ElementVector(ElementQuad1()), **kwargs)

    def lame(w):
        young, poisson, eigen = problem.material(w.x[1])
        lam = young * poisson / ((1 + poisson) * (1 - 2 * poisson))
        mu = young / (2 * (1 + poisson))
        return lam, mu, eigen

    @BilinearForm
    def stiffness(u, v, w):
        lam, mu, _ = lame(w)
        eu, ev = sym_grad(u), sym_grad(v)
        return 2.0 * mu * ddot(eu, ev) + lam * trace(eu) * trace(ev)

    @LinearForm
    def load(v, w):
        # C eps* for an isotropic eps* (xx = zz = yy): (3 lam + 2 mu) eps* I in the plane
        lam, mu, eigen = lame(w)
        return (3.0 * lam + 2.0 * mu) * eigen * trace(sym_grad(v))

    return mesh, basis, stiffness, load


def skfem_assemble(basis, stiffness, load):
    """K (CSR) and f of the scikit-fem forms."""
    from skfem import asm

    return asm(stiffness, basis), asm(load, basis)


def skfem_dirichlet(basis) -> np.ndarray:
    """Clamped bottom and u_x = 0 on the left edge: the condensed DOFs."""
    # boundary facets only, and a tolerance far below the spacing (np.isclose's absolute 1e-8 m
    # would take the first row of vertical facets, midpoints at dz/2 < 10 nm, for the bottom)
    mesh = basis.mesh
    tol = 1e-9 * float(np.ptp(mesh.p))
    left = basis.get_dofs(mesh.facets_satisfying(lambda x: np.abs(x[0]) < tol, boundaries_only=True))
    bottom = basis.get_dofs(mesh.facets_satisfying(lambda x: np.abs(x[1]) < tol, boundaries_only=True))
    left, bottom = left.nodal["u^1"], bottom.all()
    return np.unique(np.concatenate([left, bottom]))


def skfem_near_nullspace(basis) -> np.ndarray:
    """Rigid-body modes in scikit-fem's DOF numbering."""
    nodes = basis.mesh.p.T
    modes = fem.rigid_body_modes(nodes)  # interleaved (2 a, 2 a + 1)
    out = np.zeros((basis.N, 3))
    out[basis.nodal_dofs[0]] = modes[0::2]
    out[basis.nodal_dofs[1]] = modes[1::2]
    return out


def skfem_solve(n: int, problem: FilmProblem = PROBLEM, intorder: int | None = None) -> dict:
    """Whole scikit-fem + pyamg solve; times of its parts [s] and the nodal displacements."""
    from skfem import condense

    times = {}
    start = time.perf_counter()
    mesh, basis, stiffness, load = skfem_setup(n, problem, intorder)
    times["setup"] = time.perf_counter() - start
    t0 = time.perf_counter()
    matrix, rhs = skfem_assemble(basis, stiffness, load)
    times["assemble"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dirichlet = skfem_dirichlet(basis)
    reduced, reduced_rhs, x, interior = condense(matrix, rhs, D=dirichlet)
    near_nullspace = skfem_near_nullspace(basis)[interior]
    times["condense"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hierarchy = fem.amg_hierarchy(reduced.tocsr(), near_nullspace)
    times["amg_setup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    solution, iterations, converged = fem.amg_cg(reduced, reduced_rhs, hierarchy, rtol=problem.rtol)
    times["cg"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - start
    if not converged:
        raise RuntimeError(f"scikit-fem + pyamg CG did not converge at n = {n}")
    x = x.copy()
    x[interior] = solution
    u = np.column_stack([x[basis.nodal_dofs[0]], x[basis.nodal_dofs[1]]])
    return {"times": times, "iterations": iterations, "nodes": mesh.p.T.copy(), "u": u,
            "n_dofs": basis.N, "matrix": matrix, "rhs": rhs}


def same_order(nodes_a: np.ndarray, nodes_b: np.ndarray) -> np.ndarray:
    """Index ``k`` such that ``nodes_b[k]`` lists the points of ``nodes_a`` in ``nodes_a``'s order."""
    order_a = np.lexsort((nodes_a[:, 1], nodes_a[:, 0]))
    order_b = np.lexsort((nodes_b[:, 1], nodes_b[:, 0]))
    if not np.allclose(nodes_a[order_a], nodes_b[order_b], rtol=0, atol=1e-12 * np.ptp(nodes_a)):
        raise RuntimeError("the two meshes do not have the same nodes")
    index = np.empty_like(order_a)
    index[order_a] = order_b
    return index
