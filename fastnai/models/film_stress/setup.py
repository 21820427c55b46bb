"""Set-up of film_stress: a validated case turned into arrays and constants."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import constants

from ..._kernels import film_diffusion as kfd
from ..._kernels import laminate as klam
from ...mesh import graded_mesh
from . import composition as comp

_FORMS = {"log": klam.EIGEN_LOG, "engineering": klam.EIGEN_ENGINEERING, "linear": klam.EIGEN_LINEAR}
_MODES = {"free": klam.MODE_FREE, "no_bending": klam.MODE_FIXED_CURVATURE, "rigid": klam.MODE_FIXED}


# ---------------------------------------------------------------------------------------------
# the stack


@dataclass
class Stack:
    """Layers of the substrate (below z = 0) and the film, with their end-member properties."""

    z_faces: np.ndarray  # reference faces [m], substrate from -h_s to 0, film 0 to h_f
    n_substrate: int
    x_bi: np.ndarray  # per film layer (midpoint)
    beta: np.ndarray  # per layer (0 in the substrate)
    modulus0: np.ndarray  # biaxial modulus at theta = 0 [Pa]
    modulus1: np.ndarray  # at theta = 1
    young0: np.ndarray
    young1: np.ndarray
    poisson0: np.ndarray
    poisson1: np.ndarray
    yield0: np.ndarray
    yield1: np.ndarray
    hardening: np.ndarray

    @property
    def film(self) -> slice:
        return slice(self.n_substrate, self.z_faces.size - 1)

    @property
    def film_points(self) -> slice:
        return slice(2 * self.n_substrate, 2 * (self.z_faces.size - 1))


def build(case) -> Stack:
    """Layers and per-layer properties of a validated case."""
    h_f, h_s = case["film.thickness"], case["substrate.thickness"]
    n_f, n_s = case["mesh.film_layers"], case["mesh.substrate_layers"]
    film_faces = np.linspace(0.0, h_f, n_f + 1)
    # substrate graded toward the interface (its stress is linear in z, exact on any layers;
    # grading only matters for a yielding substrate)
    depth = graded_mesh(h_s, n_s + 1, min(h_f / n_f, h_s / n_s), 1)
    sub_faces = -depth[::-1]
    z_faces = np.concatenate((sub_faces[:-1], film_faces))
    s_mid = 0.5 * (film_faces[:-1] + film_faces[1:]) / h_f
    x = comp.composition_profile(case, s_mid)
    n = n_s + n_f

    def per_layer(film_values, substrate_value):
        out = np.empty(n)
        out[:n_s] = substrate_value
        out[n_s:] = film_values
        return out

    e_sub, nu_sub = case["substrate.youngs_modulus"], case["substrate.poisson_ratio"]
    e0 = comp.mix(x, case["bismuth.youngs_modulus"], case["antimony.youngs_modulus"])
    nu0 = comp.mix(x, case["bismuth.poisson_ratio"], case["antimony.poisson_ratio"])
    e1 = comp.mix(x, case["bismuth.sodiated_youngs_modulus"],
                  case["antimony.sodiated_youngs_modulus"])
    nu1 = comp.mix(x, case["bismuth.sodiated_poisson_ratio"],
                   case["antimony.sodiated_poisson_ratio"])
    beta = comp.mix(x, case["bismuth.swelling"], case["antimony.swelling"])
    plastic = case["model.plasticity"]
    y0 = case["plasticity.yield_stress"] if plastic else math.inf
    y1 = case["plasticity.sodiated_yield_stress"] if plastic else math.inf
    young0, young1 = per_layer(e0, e_sub), per_layer(e1, e_sub)
    poisson0, poisson1 = per_layer(nu0, nu_sub), per_layer(nu1, nu_sub)
    return Stack(z_faces, n_s, x, per_layer(beta, 0.0), young0 / (1.0 - poisson0),
                 young1 / (1.0 - poisson1), young0, young1, poisson0, poisson1,
                 per_layer(np.full(n_f, y0), math.inf), per_layer(np.full(n_f, y1), math.inf),
                 per_layer(np.full(n_f, case["plasticity.hardening"]), 0.0))


def soc_path(case) -> tuple[np.ndarray, np.ndarray]:
    """Film states of charge of the output states and the protocol step of each."""
    soc, steps, now = [0.0], [-1], 0.0
    for k, st in enumerate(case["protocol"]):
        values = np.linspace(now, st["soc"], st["n_states"] + 1)[1:]
        soc.extend(values.tolist())
        steps.extend([k] * values.size)
        now = st["soc"]
    return np.array(soc), np.array(steps)


# ---------------------------------------------------------------------------------------------
# sodiation by diffusion through the thickness


def coupled(case) -> bool:
    """Whether a diffusion run uses the stress-coupled flux."""
    return (case["model.sodiation"] == "diffusion" and case["model.stress_coupling"]
            and case["model.plasticity"] and case["substrate.constraint"] == "free")


@dataclass
class Transport:
    """Film cells (= the laminate's film layers) and their transport properties."""

    h: np.ndarray  # reference cell thickness [m]
    c_max: np.ndarray  # Na sites per reference volume [mol m-3]
    d_cell: np.ndarray  # current-frame diffusivity [m2 s-1]
    beta: np.ndarray
    sc: np.ndarray  # kernel scalars (film_diffusion.S_*)
    one_c: float  # 1C current density [A m-2]


def build_transport(case, stack: Stack) -> Transport:
    f = stack.film
    h = np.diff(stack.z_faces)[f]
    x = stack.x_bi
    c_max = _site_density(case, x)
    d = np.exp(comp.mix(x, math.log(case["bismuth.diffusivity"]),
                        math.log(case["antimony.diffusivity"])))
    vt = constants.R * case["model.temperature"] / kfd.FARADAY
    sc = np.zeros(kfd.N_SCALARS)
    sc[kfd.S_VT] = vt
    if coupled(case):
        # Omega = beta V_host / 3 per mole of Na (SPEC 3.3; V_host = 3 / c_max), at the film-mean
        # composition. Lagged one step behind the mechanics this coupling was unstable (2.6e5
        # steps, GITT D 100x off), so it is solved with the laminate (film_diffusion.coupled_newton).
        omega = float(np.mean(stack.beta[f] / c_max))
        sc[kfd.S_OMEGA_MECH] = omega / (constants.R * case["model.temperature"])
    sc[kfd.S_I0] = case["interface.exchange_current"]
    sc[kfd.S_ALPHA] = case["interface.transfer_coefficient"]
    sc[kfd.S_U0] = float(comp.mix(x[-1], case["bismuth.ocv_u0"], case["antimony.ocv_u0"]))
    sc[kfd.S_OMEGA_U] = case["film.ocv_interaction"]
    one_c = kfd.FARADAY * float(np.sum(h * c_max)) / 3600.0
    return Transport(h, c_max, d, stack.beta[f].copy(), sc, one_c)


@dataclass
class _Control:
    mode: str  # "current", "voltage" or "sweep" (compiled: the start voltage comes from the state)
    value: float  # current density [A m-2], voltage at t0 [V], or the sweep's end voltage
    cutoff: float | None = None
    rate: float = 0.0  # voltage sweep rate [V s-1]
    t0: float = 0.0

    def value_at(self, t: float) -> float:
        return self.value + self.rate * (t - self.t0)


def _site_density(case, x_bi: np.ndarray) -> np.ndarray:
    """Na sites per reference volume at full sodiation (three Na per Bi or Sb atom) [mol m-3]."""
    # molar volumes of the host elements (density / molar mass, handbook): Bi 21.3, Sb 18.2 cm3/mol
    v_bi, v_sb = 21.31e-6, 18.19e-6
    return 3.0 / comp.mix(x_bi, v_bi, v_sb)
