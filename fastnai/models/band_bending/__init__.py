"""Poisson-Fermi band bending at a metal/semiconductor contact (SPEC section 3.1).

The semiconductor (anatase TiO2 by default) lies beside a metal contact (TiCxN1-x). Energies are
referenced to the Fermi level (E_F = 0), and with no current flowing E_F is flat. Poisson's
equation

    div(eps grad psi) = -q (p - n + N_D+ - N_A - n_t),   E_C = -q psi,

is solved on a graded 1D mesh in planar, spherical-particle or metal-dot geometry, with
Fermi-Dirac (or Boltzmann) electrons and holes, donors with optional incomplete ionisation,
acceptors and electron traps. The contact is the Dirichlet condition psi(0) = -Phi_B/q with
Phi_B = phi_m - chi, or, with an interfacial layer, the Cowley-Sze Robin condition carrying
interface states. The far boundary has zero field; bulk neutrality there is a diagnostic.

Seed system: Cai et al., Small 18, 2200694 (2022), doi:10.1002/smll.202200694.

The semiclassical density at the contact is an upper bound: the electron Fermi wavelength
(~4 nm at 1e20 cm-3) is comparable to the accumulation width, and confinement lowers n(0).

Layout: ``keys`` (case keys and validation, no Numba), ``solver``, ``output``.
Every name of the submodules is an attribute of this package, imported on first use
(so loading a case imports no kernel)."""

from __future__ import annotations

from .. import lazy_package
from .keys import KEYS, time_dependent, validate

__all__ = ['KEYS', 'time_dependent', 'validate']

__getattr__, __dir__ = lazy_package(__name__, ('keys', 'solver', 'output'))
