"""Stress in a compositionally graded Bi(x)Sb(1-x) film on Cu while it takes up sodium (SPEC 3.3).

Seed: Z. Wang et al., Adv. Sci. 9, 2201209 (2022), doi:10.1002/advs.202201209, whose FEA finds the
peak stress of a Bi-rich-bottom graded film 35 % below that of the solid solution of the same
mean composition (Bi0.33Sb0.67).

The film (600 nm) is bonded to a Cu foil (100 um) and swells by ~300 % on sodiation; bonded
in-plane, it thickens by lambda_z = 1 + beta(x_Bi) theta. The in-plane eigenstrain is the Hencky
form (1/3) ln(1 + beta theta) by default (engineering and linear forms as options: ``linear``
is the small-strain model, integrated over the reference thickness). Each film point carries
sigma = M(theta, x) (eps - eps* - eps_p) with the biaxial modulus M = E/(1 - nu) interpolated
linearly in composition (Bi/Sb end members) and in theta (host/sodiated phase), and J2
plasticity with a yield stress falling linearly from the host's to the sodiated phase's. At
these swellings elastic stresses would reach tens of GPa and yield starts at ~1 % state of
charge, so plasticity and large-swelling kinematics are on by default.

Mechanics: the 1D laminate of :mod:`fastnai._kernels.laminate` (force and moment balance over
the current thickness, one curvature; the film-substrate stack is a free plate by default). The
state of charge follows the ``[[protocol]]``: ``sodiate`` / ``desodiate`` sweep a uniform theta
quasi-statically (as the paper's FEA did), committing plastic history, so a cycle shows tension
on desodiation.

With ``model.sodiation = "diffusion"`` Na enters at the surface instead: theta(z, t) follows
the film-diffusion kernel (:mod:`fastnai._kernels.film_diffusion`, reference frame,
D / lambda_z^2, log-mixed in composition) under the shared BDF2 engine, with an open-circuit
curve U(theta, x_Bi) and Butler-Volmer kinetics at the surface, so constant-current, rest,
constant-voltage and GITT steps run on the film; the laminate is balanced (and its plastic state
committed) at every accepted step. With plasticity on the flux carries the stress-coupled term
D c (1 - theta) Omega / RT d sigma_h / dz (SPEC 3.3), solved together with the laminate.
An ``eis`` step records the small-signal impedance about the state (SPEC 3.6,
:mod:`.impedance`): the same equations linearised with the plastic strain frozen (the elastic
tangent), per m2 of film, with an optional double layer; the state is left unchanged.

Failure measures per state (SPEC 3.3): channel cracking G = Z sigma^2 h / E' (tension only,
Z = 1.976), delamination G = int (1 - nu^2) sigma^2 / (2E) dz (the uniform-film formula
(1 - nu^2) sigma^2 h / (2E) pointwise, the laminate energy released by a graded film), and
buckle-driven delamination of a straight-sided blister of half-width b (Hutchinson and Suo 1992,
doi:10.1016/S0065-2156(08)70164-9): sigma_c = pi^2 E' h^2 / (12 b^2) and
G = (1 - nu^2) h (sigma - sigma_c)(sigma + 3 sigma_c) / (2E) for compression above sigma_c.
Each is compared with ``failure.toughness``; the state of charge where each first trips is
reported.

Layout: ``keys`` (case keys and validation, no Numba), ``setup``, ``cell``, ``output``,
``impedance``.
Every name of the submodules is an attribute of this package, imported on first use
(so loading a case imports no kernel)."""

from __future__ import annotations

from .. import lazy_package
from .keys import KEYS, STEP_KEYS, TABLE_ARRAYS, time_dependent, validate

__all__ = ['KEYS', 'STEP_KEYS', 'TABLE_ARRAYS', 'time_dependent', 'validate']

__getattr__, __dir__ = lazy_package(
    __name__, ('keys', 'setup', 'cell', 'output', 'composition', 'cross_section', 'impedance'))
