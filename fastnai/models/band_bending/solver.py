"""The band_bending problem as arrays and its damped-Newton solve (with continuation)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import constants

from ..._kernels import poisson
from ..._kernels._jit import PARALLEL_MIN_SIZE
from ...errors import ConvergenceError
from ...mesh import graded_mesh


@dataclass(frozen=True)
class Geometry:
    """Box-method geometry of a 1D mesh (node 0 at the contact).

    Areas and volumes are per steradian in radial geometry (the 4 pi cancels everywhere).
    """

    depth: np.ndarray  # distance from the contact [m]
    coordinate: np.ndarray  # x (planar) or r (radial) of each node [m]
    face_area: np.ndarray  # area of the face between node i and i+1 [m2]
    volume: np.ndarray  # dual-cell volume of each node [m3]
    contact_area: float  # [m2]
    name: str  # "x" or "r"


def make_geometry(kind: str, depth: np.ndarray, *, contact_radius: float | None = None) -> Geometry:
    """Face areas and dual-cell volumes for planar, sphere and dot geometry."""
    mid = 0.5 * (depth[1:] + depth[:-1])
    edges = np.concatenate(([depth[0]], mid, [depth[-1]]))
    if kind == "planar":
        return Geometry(depth, depth.copy(), np.ones(mid.size), np.diff(edges), 1.0, "x")
    if kind == "sphere":
        radius = depth[-1]
        r_edges = radius - edges
        return Geometry(depth, radius - depth, (radius - mid) ** 2,
                        (r_edges[:-1] ** 3 - r_edges[1:] ** 3) / 3.0, radius**2, "r")
    if kind == "dot":
        r_edges = contact_radius + edges
        return Geometry(depth, contact_radius + depth, (contact_radius + mid) ** 2,
                        (r_edges[1:] ** 3 - r_edges[:-1] ** 3) / 3.0, contact_radius**2, "r")
    raise ValueError(kind)


def effective_density_of_states(mass_ratio: float, temperature: float) -> float:
    """N = 2 (2 pi m* k T / h^2)^(3/2) [m-3].

    >>> f"{effective_density_of_states(1.0, 300.0):.4g}"  # the free-electron 2.51e19 cm-3
    '2.509e+25'
    """
    m = mass_ratio * constants.m_e
    return 2.0 * (2.0 * math.pi * m * constants.k * temperature / constants.h**2) ** 1.5


def charge_parameters(case, *, donor_density: float | None = None,
                      complete_ionisation: bool = False) -> np.ndarray:
    """The ``params`` vector of the space-charge kernels for a case.

    ``donor_density`` replaces the case's [m-3] (the interface layers of drift_diffusion);
    ``complete_ionisation`` ignores ``donor_level`` and ``donor_degeneracy`` (models without
    those keys).
    """
    temperature = case["model.temperature"]
    p = np.zeros(poisson.N_PARAMS)
    p[poisson.P_VT] = constants.k * temperature / constants.e
    p[poisson.P_NC] = effective_density_of_states(case["semiconductor.electron_effective_mass"],
                                                  temperature)
    p[poisson.P_NV] = effective_density_of_states(case["semiconductor.hole_effective_mass"],
                                                  temperature)
    p[poisson.P_EG] = case["semiconductor.band_gap"]
    p[poisson.P_ND] = case["semiconductor.donor_density"] if donor_density is None else donor_density
    if not complete_ionisation and case["semiconductor.donor_level"] is not None:
        p[poisson.P_DONOR_IONISATION] = 1.0
        p[poisson.P_ED] = case["semiconductor.donor_level"]
    p[poisson.P_GD] = 2.0 if complete_ionisation else case["semiconductor.donor_degeneracy"]
    p[poisson.P_NA] = case["semiconductor.acceptor_density"]
    p[poisson.P_NT] = case["semiconductor.trap_density"]
    p[poisson.P_ET] = case["semiconductor.trap_level"] or 0.0
    p[poisson.P_GT] = case["semiconductor.trap_degeneracy"]
    p[poisson.P_STATISTICS] = (poisson.STATISTICS_BOLTZMANN
                               if case["semiconductor.statistics"] == "boltzmann"
                               else poisson.STATISTICS_FERMI_DIRAC)
    p[poisson.P_HOLES] = 1.0 if case["semiconductor.holes"] else 0.0
    return p


@dataclass
class Solution:
    """Arrays of a converged solve (node 0 at the contact) and solver statistics."""

    geometry: Geometry
    psi: np.ndarray
    params: np.ndarray
    permittivity: float
    conductance: np.ndarray  # face conductances eps A / h [F]
    contact: np.ndarray
    bc_type: int
    psi_neutral: float
    newton_iterations: int
    continuation_steps: int
    history: list


@dataclass(frozen=True)
class Problem:
    """A band-bending problem as arrays and numbers: mesh, charges, contact, solver settings.

    ``layer``: ``(eps_i / delta [F m-2], D_it [m-2 eV-1], CNL [eV])`` of a Cowley-Sze
    interfacial layer (a Robin contact), or None for the intimate (Dirichlet) contact.
    """

    geometry: Geometry
    params: np.ndarray
    permittivity: float  # [F m-1]
    barrier: float  # Phi_B = phi_m - chi [eV]
    layer: tuple[float, float, float] | None = None
    tol: float = 1e-10
    max_iter: int = 200
    continuation: bool = True


def problem(case) -> Problem:
    """The :class:`Problem` of a validated band_bending case."""
    depth = graded_mesh(case["semiconductor.thickness"], case["mesh.n_nodes"],
                        case["mesh.min_spacing"], case["mesh.refinement"])
    delta = case["contact.interfacial_layer_thickness"]
    layer = None
    if delta > 0.0:
        layer = (case["contact.interfacial_layer_permittivity"] * constants.epsilon_0 / delta,
                 case["contact.interface_state_density"], case["contact.charge_neutrality_level"])
    return Problem(make_geometry(case["model.geometry"], depth, contact_radius=case["contact.radius"]),
                   charge_parameters(case),
                   case["semiconductor.relative_permittivity"] * constants.epsilon_0,
                   case["contact.work_function"] - case["semiconductor.electron_affinity"], layer,
                   case["solver.tolerance"], case["solver.max_iterations"],
                   case["solver.continuation"])


def solve(case) -> Solution:
    """Solve the band-bending problem of a validated ``case`` (arrays only, no Dataset)."""
    return solve_problem(problem(case))


def solve_problem(pr: Problem) -> Solution:
    """Damped Newton from a screened initial guess; continuation in the barrier when it fails."""
    geom, params, eps = pr.geometry, pr.params, pr.permittivity
    depth = geom.depth
    conductance = eps * geom.face_area / np.diff(depth)
    psi_neutral = poisson.neutral_potential(params)
    contact = np.zeros(poisson.N_CONTACT)
    contact[poisson.C_PSI] = -pr.barrier
    bc_type = poisson.BC_DIRICHLET
    if pr.layer is not None:
        bc_type = poisson.BC_ROBIN
        contact[poisson.C_LAYER], contact[poisson.C_DIT], contact[poisson.C_CNL] = pr.layer
    _, drho = poisson.space_charge(psi_neutral, params)
    screening = math.sqrt(eps / max(abs(drho), 1e-300))
    decay = min(screening, depth[-1] / 3.0)
    parallel = depth.size >= PARALLEL_MIN_SIZE

    def attempt(psi_contact: float, psi: np.ndarray):
        trial = contact.copy()
        trial[poisson.C_PSI] = psi_contact
        history = np.zeros((pr.max_iter, 2))
        iters = poisson.newton_solve(psi, conductance, geom.volume, geom.contact_area, params,
                                     bc_type, trial, pr.tol, pr.max_iter, parallel, history)
        rows = [tuple(map(float, row)) for row in history[: abs(iters)]]
        return iters, rows

    target = contact[poisson.C_PSI]
    psi = psi_neutral + (target - psi_neutral) * np.exp(-depth / decay)
    iters, history = attempt(target, psi)
    total, steps = abs(iters), 0
    if iters < 0 and pr.continuation:
        psi, iters, history, extra, steps = _continuation(attempt, psi_neutral, target, depth.size)
        total += extra
    if iters < 0 or not np.all(np.isfinite(psi)):
        raise ConvergenceError(
            f"band_bending: Newton did not converge to max|dpsi|/Vt <= {pr.tol:g} in "
            f"{pr.max_iter} iterations (continuation steps: {steps}); try more mesh.n_nodes, a "
            "smaller mesh.min_spacing or solver.max_iterations", history)
    return Solution(geom, psi, params, eps, conductance, contact, bc_type, float(psi_neutral), total,
                    steps, history)


def _continuation(attempt, psi_neutral: float, target: float, n: int):
    """Walk the contact potential from flat band to ``target`` in adaptive steps.

    Returns (psi, last iterations (negative: failed), history, iterations, steps).
    """
    psi = np.full(n, psi_neutral)
    s, ds = 0.0, 0.1
    good = psi.copy()
    total = steps = 0
    iters, history = -1, []
    while s < 1.0:
        s_next = min(1.0, s + ds)
        psi = good.copy()
        iters, history = attempt(psi_neutral + s_next * (target - psi_neutral), psi)
        total += abs(iters)
        steps += 1
        if iters > 0:
            s, good = s_next, psi
            ds = min(2.0 * ds, 0.5)
        else:
            ds *= 0.5
            if ds < 1e-6 or steps > 2000:
                break
    if s < 1.0:
        iters = -1
    return good, iters, history, total, steps
