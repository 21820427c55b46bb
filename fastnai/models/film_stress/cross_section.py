"""2D plane-strain cross-section of a graded film strip or island on its substrate (SPEC 3.3 (b)).

The mechanics level ``model.mechanics = "plane_strain"`` of :mod:`fastnai.models.film_stress`:
a half model (symmetry at x = 0) of a film of width ``film.width`` on the substrate, which
extends ``substrate.extension`` (default 10 film thicknesses) beyond the film edge, meshed with
B-bar Q1 elements graded toward the interface and the film edge (:mod:`fastnai.fem`). By default
the stack is a free plate in *generalised* plane strain (eps_yy = e0 + kappa_y z, the two global
unknowns balancing force and moment along y), the mode that agrees with the laminate away from
the edges; ``plane.out_of_plane = "plane_strain"`` with a roller or clamped bottom is the
alternative.

Kinematics are small-strain: the film's swelling enters as the isotropic eigenstrain of the
case's form (Hencky by default) without the thickening of the mesh, so the 2D level is the
check of edges and widths, and the laminate (which integrates over the current thickness) the
reference for through-thickness profiles at large swelling. Moduli are interpolated linearly
in composition and theta (Young's modulus and Poisson ratio), the yield stress linearly in
theta; the substrate stays elastic. Each state of the protocol's uniform-theta sweep is one
load step: an elastic solve, or Newton with the consistent J2 tangent from the previous state's
plastic strain, in ``solver.substeps`` increments.

Reported per state: the stress along the symmetry line (the film's Gauss-point column nearest
x = 0: the centre of a strip or island), the interface and peak film stress there, and the
edge-zone stress -- the largest in-plane film stress outside r < 0.15 h_f of the film-edge
corner (the corner itself is singular and grows with refinement, SPEC 3.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import fem
from ...errors import ConvergenceError
from . import composition as comp


@dataclass
class CrossSection:
    """Mesh, model, constraints and Gauss-point material data of a case."""

    mesh: fem.QuadMesh
    model: fem.Elasticity
    constraints: fem.Constraints
    x_bi: np.ndarray  # (n_el, 4) at film Gauss points (nan in the substrate)
    beta: np.ndarray  # (n_el, 4), 0 in the substrate
    young: tuple[np.ndarray, np.ndarray]  # (n_el, 4) at theta = 0 and 1
    poisson: tuple[np.ndarray, np.ndarray]
    yield_stress: tuple[np.ndarray, np.ndarray]
    hardening: np.ndarray
    centre: np.ndarray  # the film elements at the symmetry line, bottom to top
    centre_z: np.ndarray  # their centroid heights above the interface [m]


def build(case) -> CrossSection:
    """The cross-section of a validated case."""
    h_f, h_s = case["film.thickness"], case["substrate.thickness"]
    width = case["film.width"]
    extension = case["substrate.extension"]
    mesh = fem.film_mesh(width=width, film_thickness=h_f, substrate_thickness=h_s,
                         extension=10.0 * h_f if extension is None else extension,
                         min_spacing=case["mesh.element_size"] or h_f / 16.0,
                         growth=case["mesh.growth"], max_spacing=case["mesh.max_element_size"])
    generalised = case["plane.out_of_plane"] == "generalised"
    model = fem.Elasticity(mesh, generalised=generalised)
    constraints = fem.film_constraints(mesh, case["plane.support"])
    n_el = mesh.n_elements
    gp = model.gauss_points
    film = np.broadcast_to(mesh.film[:, None], (n_el, 4))
    s = np.clip((gp[..., 1] - h_s) / h_f, 0.0, 1.0)
    x = np.where(film, comp.composition_profile(case, s), np.nan)
    xf = np.nan_to_num(x)

    def film_or(value_film, value_sub):
        return np.where(film, value_film, value_sub)

    young0 = film_or(comp.mix(xf, case["bismuth.youngs_modulus"], case["antimony.youngs_modulus"]),
                     case["substrate.youngs_modulus"])
    young1 = film_or(comp.mix(xf, case["bismuth.sodiated_youngs_modulus"],
                              case["antimony.sodiated_youngs_modulus"]),
                     case["substrate.youngs_modulus"])
    nu0 = film_or(comp.mix(xf, case["bismuth.poisson_ratio"], case["antimony.poisson_ratio"]),
                  case["substrate.poisson_ratio"])
    nu1 = film_or(comp.mix(xf, case["bismuth.sodiated_poisson_ratio"],
                           case["antimony.sodiated_poisson_ratio"]),
                  case["substrate.poisson_ratio"])
    beta = film_or(comp.mix(xf, case["bismuth.swelling"], case["antimony.swelling"]), 0.0)
    plastic = case["model.plasticity"]
    y0 = film_or(case["plasticity.yield_stress"] if plastic else math.inf, math.inf)
    y1 = film_or(case["plasticity.sodiated_yield_stress"] if plastic else math.inf, math.inf)
    hard = film_or(case["plasticity.hardening"], 0.0)
    # the film column at the symmetry line: elements whose left edge is x = 0, reported as
    # element means over their four Gauss points (the Gauss-point values of Q1 oscillate
    # through the thickness under bending and plastic flow), bottom to top
    left = mesh.nodes[mesh.elements[:, 0], 0] == 0.0
    cols = np.flatnonzero(left & mesh.film)
    centroid_z = gp[cols, :, 1].mean(axis=1)
    order = np.argsort(centroid_z)
    pts = cols[order]
    centre_z = centroid_z[order] - h_s
    return CrossSection(mesh, model, constraints, x, beta, (young0, young1), (nu0, nu1), (y0, y1),
                        hard, pts, centre_z)


def _eigenstrain(beta, theta, form: str) -> np.ndarray:
    s = beta * theta
    if form == "log":
        return np.log1p(s) / 3.0
    if form == "engineering":
        return np.expm1(np.log1p(s) / 3.0)
    return s / 3.0


@dataclass
class CrossSectionResult:
    soc: np.ndarray
    step: np.ndarray
    centre_stress: np.ndarray  # (n_states, n_centre) sigma_xx along the symmetry line [Pa]
    centre_plastic: np.ndarray  # equivalent plastic strain there
    centre_von_mises: np.ndarray  # von Mises stress there [Pa]
    edge_stress: np.ndarray  # (n_states,) edge-zone sigma_xx [Pa]
    edge_von_mises: np.ndarray
    edge_position: np.ndarray  # (n_states, 2) x, z of the edge-zone value [m]
    gps: np.ndarray  # (n_states, 2) e0, kappa_y
    final_stress: np.ndarray  # (n_el, 4, 4) Voigt at the last state [Pa]
    final_alpha: np.ndarray  # (n_el, 4)
    newton_iterations: int


def sweep(case, xs: CrossSection, soc: np.ndarray, step: np.ndarray) -> CrossSectionResult:
    """The quasi-static uniform-theta sweep through the cross-section."""
    n_el = xs.mesh.n_elements
    form = case["model.kinematics"]
    film = np.broadcast_to(xs.mesh.film[:, None], (n_el, 4))
    solver = fem.LinearSolver(near_nullspace=fem.rigid_body_modes(xs.model.nodes))
    state = fem.PlasticState.zeros(n_el)
    u = np.zeros(xs.model.n_dofs)
    g = np.zeros(2)
    plastic = case["model.plasticity"]
    n_sub = case["solver.substeps"]
    out = {k: [] for k in ("centre", "centre_alpha", "centre_vm", "edge", "edge_vm", "edge_pos",
                           "gps")}
    iterations = 0
    prev = 0.0
    stress = alpha = None
    for k, theta_end in enumerate(soc):
        subs = [theta_end] if (k == 0 or not plastic) else list(
            prev + (theta_end - prev) * np.arange(1, n_sub + 1) / n_sub)
        for theta in subs:
            th = np.where(film, theta, 0.0)
            young = xs.young[0] + (xs.young[1] - xs.young[0]) * th
            nu = xs.poisson[0] + (xs.poisson[1] - xs.poisson[0]) * th
            eig = np.where(film, _eigenstrain(xs.beta, theta, form), 0.0)
            if plastic:
                y = np.full((n_el, 4), math.inf)  # the substrate stays elastic
                y0, y1 = xs.yield_stress
                y[film] = y0[film] + (y1[film] - y0[film]) * theta
                u, g, state, history = fem.solve_elastoplastic(
                    xs.model, xs.constraints, state, young=young, poisson=nu, eigenstrain=eig,
                    yield_stress=y, hardening=xs.hardening, u0=u, gps0=g, solver=solver,
                    rtol=case["solver.tolerance"] ** 0.5 * 1e-3,
                    max_iter=case["solver.max_iterations"])
                iterations += len(history)
                stress, alpha = state.stress, state.alpha
            else:
                sol = fem.solve_elastic(xs.model, xs.constraints, young=young, poisson=nu,
                                        eigenstrain=eig, solver=solver)
                iterations += 1
                stress, g = sol.stress, sol.gps
                alpha = np.zeros((n_el, 4))
        prev = theta_end
        sxx = stress[..., 0]
        vm = fem.von_mises(stress)
        c = xs.centre
        out["centre"].append(sxx[c].mean(axis=1))
        out["centre_alpha"].append(alpha[c].mean(axis=1))
        out["centre_vm"].append(vm[c].mean(axis=1))
        value, x_e, z_e = fem.edge_zone_stress(xs.model, sxx, reduce="abs")
        out["edge"].append(value)
        out["edge_pos"].append((x_e, z_e))
        out["edge_vm"].append(fem.edge_zone_stress(xs.model, vm, reduce="max")[0])
        out["gps"].append(np.asarray(g, dtype=float).copy() if g is not None else np.zeros(2))
    if not np.all(np.isfinite(out["centre"])):
        raise ConvergenceError("film_stress: non-finite stresses in the cross-section", [])
    return CrossSectionResult(np.asarray(soc), np.asarray(step), np.array(out["centre"]),
                              np.array(out["centre_alpha"]), np.array(out["centre_vm"]),
                              np.array(out["edge"]),
                              np.array(out["edge_vm"]), np.array(out["edge_pos"]),
                              np.array(out["gps"]), stress.copy(),
                              alpha.copy(), iterations)

