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
``cv`` (cyclic voltammetry at a list of scan rates, each from the step's starting state) and
``gitt`` (current pulses and rests).

Sign conventions: ``current_density`` is anodic positive (Na extraction, charge of the half
cell); a discharge (sodiation) has negative current. ``specific_capacity`` is the Na inserted
since the start, from the state, in mA h g-1 of host.

Layout: ``keys`` (case keys and validation, no Numba), ``setup``, ``cell``, ``output``.
Every name of the submodules is an attribute of this package, imported on first use
(so loading a case imports no kernel)."""

from __future__ import annotations

import importlib

from .keys import KEYS, STEP_KEYS, TABLE_ARRAYS, time_dependent, validate

__all__ = ['KEYS', 'STEP_KEYS', 'TABLE_ARRAYS', 'time_dependent', 'validate']

#: name -> submodule, for the names imported on first use
_LAZY = {
    'COLD_START_VOLTAGE': 'cell',
    'Cell': 'cell',
    'Control': 'cell',
    'Recorder': 'cell',
    'Result': 'cell',
    'Setup': 'setup',
    'TABLE_DL': 'setup',
    'TABLE_L0': 'setup',
    'TABLE_SIZE': 'setup',
    'Workspace': 'cell',
    '_band_bending_problem': 'cell',
    '_cold_equilibrium': 'cell',
    '_equilibrium_at': 'cell',
    '_local_ell': 'cell',
    '_region_params': 'setup',
    'build': 'setup',
    'calibrate_series_resistance': 'output',
    'cv_curves': 'output',
    'discharge_capacity': 'output',
    'equilibrium': 'cell',
    'newton_solve': 'cell',
    'profiles': 'output',
    'run': 'output',
    'simulate': 'cell',
    'states': 'cell',
    'to_dataset': 'output',
    'unknowns': 'cell',
}


def __getattr__(name: str):
    if name in ('keys', 'setup', 'cell', 'output'):
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
