"""Na deposition and nucleation on a VN interlayer vs bare Na: Faradaic phase field (SPEC 3.4).

Seed: Y. Xia et al., Nanoscale Horiz. 7, 899 (2022), doi:10.1039/d2nh00152g (VN interlayer
rolled onto Na; nucleation overpotential 68 mV bare vs 36 mV on VN in symmetric cells at
0.5 mA cm-2; exchange currents 0.068 / 0.215 mA cm-2; activation energies 72.96 / 61.42 kJ
mol-1).

Domain and fields
-----------------
A 2D box of ``nx x ny`` square cells of side ``dx`` above the substrate (y = 0), periodic in x,
or (``mesh.nz > 1``) a 3D box of ``nx x nz x ny`` cubes, periodic in x and z: the same model,
with the 3D twin of the profile kernel (:mod:`fastnai._kernels.phase_field_3d`). Internally
every field is ``(ny, nl)``, ``nl = nz nx`` lateral cells per layer; the pointwise kernels, the
electrolyte operators (a lateral neighbour table) and the column-wise morphology are the same
code in 2D and 3D. Balances are per ``dx^(d-2)``: ``width = nl dx`` is the top measure (``Lx``
in 2D, ``Lx Lz / dx`` in 3D), so ``sum(xi) dx^2 c_s / width`` is the Na per substrate area in both.
``xi`` is the phase field (1 Na metal, 0 electrolyte), ``c`` the salt concentration (the Na+
concentration of the binary salt), ``Phi`` the electrolyte potential measured by a Na
reference electrode (``Phi = phi_l + (RT/F) ln(c / c_ref)``; ``potential`` in the result is
Phi, and the Butler-Volmer overpotential is ``eta = V - Phi``). The metal connected to the
electrode is equipotential at ``V``, reported as ``overpotential``: the plating electrode
against a Na reference at the top of the box.

Phase field and growth: :mod:`fastnai._kernels.phase_field` (profile-preserving by default,
Chen 2015 as an option; point-implicit profile terms, explicit Faradaic growth at the
Butler-Volmer normal velocity). The profile-preserving terms conserve the Na of every
connected deposit (``phase_field.conservation = "deposit"``, :meth:`Cell.conserve_deposits`):
what they take from a deposit is given back along its interface, so growth is Faradaic alone
(without it a 1 um nucleus lost 1 % of its Na per 0.2 s step and flat plating ran 0.1-0.2 %
over Butler-Volmer). Electrolyte: the binary-salt equations of SPEC 3.4 in the
electrolyte fraction ``psi = 1 - xi`` (:mod:`fastnai._kernels.electrolyte`), the salt implicit
in time, the potential quasi-static, both solved by CG preconditioned with a compiled
geometric multigrid (or pyamg's AMG, ``electrolyte.solver``; :mod:`fastnai.electrolyte`),
with the single Faradaic source ``s = c_s d xi/dt``; the top is
coupled to a 1D column through the rest of the separator, whose far end is the counter
electrode (a flat electrode of the same kind, stripping what the plating electrode takes).

Control: galvanostatic steps find ``V`` each step by a safeguarded scalar Newton on the charge
balance

    j_app = -F c_s sum(dxi) dA / (dt Lx) + C_dl (V - V_n) / dt + j_substrate(V)

(anodic positive, so plating is ``j_app < 0``), so the Na in the phase field follows the
current exactly; ``C_dl`` is the double layer, which carries the current before any site is
active; ``j_substrate`` is anodic dissolution of the substrate's Na at active sites whose
deposit is gone (stripping past the deposit). Potentiostatic steps hold ``V``.

Nucleation by site activation (critical nuclei, 1.5-2.7 nm, are far below a cell): the
substrate is passivated except at discrete sites (SEI defects on bare Na, VN particles),
patches of at least two cells, that activate as a Poisson process with the classical rate
``A exp(-f(theta_c) dG*_hom(eta)/kT)``, ``dG*_hom = 16 pi gamma^3 Omega^2 / (3 e^2 eta^2)``,
``f = (2 + cos theta)(1 - cos theta)^2 / 4``, ``A = N_site nu0`` (atoms of the site area times
``kT/h``), sampled with the counter-based generator keyed on (seed, step, site). An active site
exposes metal (the wall ghost becomes 1) and so lets the deposit grow from it; nothing is
inserted. The contact angle theta_c is *calibrated*: the angle at which the first site is
expected to activate when the plating electrode reaches the paper's nucleation overpotential
while the double layer charges at 0.5 mA cm-2 (see :func:`calibrated_contact_angle`). The
alternative ``adsorption`` estimate (Young-Dupre with the DFT adsorption energy spread over an
atom's area) gives complete wetting on both substrates and so no barrier at all: every site
activates at once.

Dead Na: components of ``xi > 0.5`` (4-connected, periodic in x), relabelled every step, that do
not touch an active site are cut off from the electrode and stop reacting. The reacting cells
are those within 11.5 interface widths of live metal (where the profile's tail has fallen to
1e-5), less those within two widths of dead metal; the dead Na is reported as
``dead_na_fraction``.

Impedance: an ``eis`` protocol step records the small-signal spectrum of the symmetric cell and
of the working electrode about the present state, the morphology frozen
(:mod:`~fastnai.models.deposition.impedance`); it leaves the run unchanged.

Layout: ``keys`` (case keys and validation, no Numba), ``setup``, ``cell``, ``output``,
``impedance``.
Every name of the submodules is an attribute of this package, imported on first use
(so loading a case imports no kernel)."""

from __future__ import annotations

from .. import lazy_package
from .keys import KEYS, STEP_KEYS, TABLE_ARRAYS, time_dependent, validate

__all__ = ['KEYS', 'STEP_KEYS', 'TABLE_ARRAYS', 'time_dependent', 'validate']

__getattr__, __dir__ = lazy_package(__name__, ('keys', 'setup', 'cell', 'output', 'impedance'))
