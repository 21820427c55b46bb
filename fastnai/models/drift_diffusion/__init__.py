"""Coupled Na+ / electron drift-diffusion through a metal/TiO2 junction (SPEC section 3.2).

Na+ hops between interstitial sites of anatase TiO2 (site density c_max) with the exact
lattice-hopping flux of :mod:`fastnai._kernels.hopping`; electrons are in quasi-equilibrium with
the contact (flat quasi-Fermi level, the default) or move by Scharfetter-Gummel drift-diffusion;
trapped electrons (Ti3+) are algebraic in the electron quasi-Fermi level; Poisson's equation
couples them through the space charge. The metal contact (TiCxN1-x, or the current collector
of pristine TiO2) is a Dirichlet boundary for psi and the electrons and blocks Na+; the
electrolyte interface exchanges Na+ by neutral-insertion Butler-Volmer kinetics. The kernel
module docstring gives the equations.

The seed paper (Cai et al., Small 18, 2200694 (2022), doi:10.1002/smll.202200694) attributes a
5.5-fold rise of the apparent diffusivity to the built-in field. This model gives
heterostructure and pristine electrodes identical transport parameters (they differ only in
contact work function and doping) so that simulated CVs, analysed exactly as the paper did,
test that claim.

Protocols (``[[protocol]]`` entries, run in order after the initial equilibrium):
``equilibrate`` (the equilibrium state at a voltage), ``rest`` (open circuit),
``constant_current`` (C-rate to a cut-off voltage), ``constant_voltage`` / ``potential_step``,
``cv`` (cyclic voltammetry at a list of scan rates, each from the step's starting state),
``gitt`` (current pulses and rests), ``eis`` (the small-signal impedance spectrum about the
state, which it leaves unchanged; ``impedance``) and ``sine`` (a voltage or current sine in
time: the time-domain check of the spectrum, and the nonlinear regime).

Sign conventions: ``current_density`` is anodic positive (Na extraction, charge of the half
cell); a discharge (sodiation) has negative current. ``specific_capacity`` is the Na inserted
since the start, from the state, in mA h g-1 of host.

Layout: ``keys`` (case keys and validation, no Numba), ``setup``, ``cell``, ``output``,
``impedance``.
Every name of the submodules is an attribute of this package, imported on first use
(so loading a case imports no kernel)."""

from __future__ import annotations

from .. import lazy_package
from .keys import KEYS, STEP_KEYS, TABLE_ARRAYS, time_dependent, validate

__all__ = ['KEYS', 'STEP_KEYS', 'TABLE_ARRAYS', 'time_dependent', 'validate']

__getattr__, __dir__ = lazy_package(__name__, ('keys', 'setup', 'cell', 'output', 'impedance'))
