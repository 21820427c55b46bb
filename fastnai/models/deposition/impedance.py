"""Small-signal impedance of the deposition cell about its state, morphology frozen (SPEC 3.4, 3.6).

What is linearised
------------------
The discrete equations of the transient (:meth:`~fastnai.models.deposition.cell.Cell.commit`),
per ``dx^(d-2)`` as there, with the phase field ``xi`` held fixed:

- salt, grid cells ``k`` and the separator column (the same operator ``K_D`` as the transient,
  :class:`~fastnai.electrolyte.MultigridSolver` ``matrix()``; the column exact, not reduced)::

      psi_k dx^2 i w dc_k + (K_D dc)_k = (1 - t+) dx^2 di_f,k / F,
      eps h W i w dc_m + (K_D dc)_m = (1 - t+) W di_f,CE / F     (last column node only)

- potential (the Na-referenced ``Phi`` of the transient; ``A_s`` its operator with the
  Dirichlet top, ``L`` the same faces with the top closed, as in ``face_divergence``)::

      (A_s dPhi)_k - beta (L dc/c)_k = dx^2 (di_f,k + di_dl,k)

- the interface, per unit volume with the transient's Faradaic weight ``G`` (the masked growth
  geometry: ``|grad xi|`` profile-preserving, ``6 xi^2 (1 - xi)^2 / lam`` chen2015; sum G dx^2
  over a flat front is its area): Butler-Volmer linearised about the DC state,
  ``di_f = G [dj/deta (dV - dPhi) + dj/dc dc]`` (the concentration factor ``(c/c_ref)^alpha_a``
  and any Gibbs-Thomson shift, frozen with the shape, included), plus the substrate's own
  dissolution at active bare columns where the transient has it (``j > 0``), and the double
  layer ``di_dl = C_dl a i w (dV - dphi_l)``, ``phi_l = Phi - (RT/F) ln c`` the electrostatic
  potential (the double layer is charged by the metal-solution potential difference; at
  ``t+ = 1/2`` this is the textbook Randles circuit ``C_dl || (R_ct + Z_conc)`` exactly, else the
  concentration term differs by the diffusion potential, ``1 - 2 t+``). ``a`` is the double
  layer's area per volume: ``G`` on the metal interface, and ``(1 - xi)/dx`` in the first row
  over passivated substrate (SEI or VN, connected to the electrode). The double layer's
  charging takes no salt (its ionic excess is second order about the potential of zero charge).

The input is the working-electrode potential ``dV`` (vs the Na reference at the top of the box,
as ``overpotential``), the output its current ``dI`` (anodic positive, per substrate area). The
system ``(i w M - J) dy = b dV`` is solved per frequency by a complex sparse LU (SuperLU,
``scipy.sparse.linalg.splu``, on the operators of :meth:`MultigridSolver.matrix`), the two
right-hand sides of ``dV`` and of the counter electrode with one factorisation, the frequencies
in parallel threads (:func:`_map_frequencies`); the state is not changed. The potential unknown
is ``dPsi = dPhi - beta dc/c`` (:class:`Linearisation`), which leaves the two fields coupled only
cell by cell. On the 256 x 128 box a factorisation takes about 1 s on one core and 140 MB.

The diffuse interface (width ``lam``) is part of the model: the reaction and the double layer
are spread over it, so the salt's impedance differs from a sharp front's by O(k lam) (k the
diffusion wavenumber; a few percent of it where 16 cells resolve sqrt(D/w)), and above about
``sigma / (C_dl lam)`` / 2 pi (MHz) the double layer inside the front is reached through its own
thin electrolyte (a transmission line), which no measurement resolves.

The double layer
----------------
``electrode.double_layer_capacitance`` [F m-2] is used per m2 of *true* interface here; the
transient lumps the same value on the projected area (the charge that carries the current before
any site is active). The two agree for a flat electrode and before nucleation; a rough deposit
has more double layer in the spectrum than in the transient's balance.

The counter electrode and the symmetric cell
--------------------------------------------
The transient's counter electrode (``cell_voltage``) is a flat electrode of the substrate's kind
(same ``j0``, ``alpha_a``, concentration-dependent Butler-Volmer at the salt concentration of the
separator's far end) carrying ``-I``, behind the separator column (ohmic drop ``I L / sigma_sep``
and the diffusion potential ``beta ln(c_CE / c_top)``). Its small signal here: the same
Butler-Volmer linearised, with the same double layer per area in parallel (``di_f,CE`` releases
salt into the column's last node, ``(1 - t+) di_f,CE / F``), so that

    Z_cell = dU / dI = Z_working + R_sep + Z_counter + (concentration coupling),
    U = V - drop - eta_CE                     (the ``voltage`` series),

which at rest is ``Z_working + Z_counter(flat) + separator``. ``electrode_impedance_*`` is
``dV / dI`` of the working electrode alone (its interface and electrolyte box, against the Na
reference at the top of the box); ``impedance_*`` the symmetric cell, what the VN paper measures
(its SEI semicircle is not modelled).

Why the morphology may be frozen
--------------------------------
At 0.5 mA cm-2 a flat front moves at ``J V_m / F`` = 1.2 nm/s. A signal ``dj`` moves it by
``V_m dj / (F w)``: 4 nm for 1 A m-2 at 10 mHz, one percent of the interface width (two cells,
0.4 um); the displaced front changes the current only through the DC gradients it moves
through, ``(V_m/F) |grad Phi| / (w R_ct)`` < 1e-4 of the signal above 1 mHz. So the spectrum is
that of the electrolyte and interface about the present shape; the shape's own motion is the
drift below.

How steady the state is (``spectrum_drift_ratio``)
---------------------------------------------------
A state mid-plating is not steady: nuclei activate and grow, the double layer and the salt
relax. The rate at which the DC state moves the cell's voltage and current, from the last
accepted step, ``|dU/dt| + |Z_cell(f_min)| |dI/dt|`` [V s-1], is compared with the rate at which
a thermal-voltage signal at the lowest frequency sweeps it, ``2 pi f_min RT/F``. Near or above
0.1 the spectrum describes a moving state and a warning says so. Steady flat plating and a state
after a long enough rest give small ratios; the initial state gives 0.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..._kernels import phase_field as kpf
from ...electrolyte import TOP_CLOSED, TOP_COLUMN, TOP_DIRICHLET, MultigridSolver
from ...errors import FastnaiError
from ...protocol_steps import DRIFT_WARNING, warn_if_drifting  # noqa: F401 (re-exported)
from .keys import F, R
from .setup import C_FLOOR, PSI_MIN, bv_overpotential

#: The VN paper's temperature series [K] (Xia et al. 2022, doi:10.1039/d2nh00152g).
TEMPERATURES = (283.15, 298.15, 313.15, 328.15)


# ---------------------------------------------------------------------------------------------
# the interface at the present state


def interface_geometry(cell) -> tuple[np.ndarray, np.ndarray]:
    """The Faradaic weight ``G`` [m-1] (masked growth geometry) and the Gibbs-Thomson shift [V]
    of the cell's present phase field, computed into new arrays (the cell is not touched).

    The profile kernel at ``dt = 0`` and without noise: the same ``G`` the next step grows with.
    """
    s = cell.s
    xi_star, geom, geom2, shift = (np.zeros_like(cell.xi) for _ in range(4))
    common = (s.cos_theta, s.dx, s.lam, s.mobility, 0.0, s.formulation)
    tail = (s.gt_coeff, s.anisotropy, 0.0, s.seed, cell.step_index)
    if s.nz == 1:
        kpf.profile_step(cell.xi, cell.wall_active, *common, cell.mask, *tail, xi_star, geom,
                         geom2, shift)
    else:
        from ..._kernels import phase_field_3d as kpf3

        shape = (s.ny, s.nz, s.nx)
        kpf3.profile_step_3d(cell.xi.reshape(shape), cell.wall_active.reshape(shape[1:]),
                             *common, cell.mask.reshape(shape), *tail, xi_star.reshape(shape),
                             geom.reshape(shape), geom2.reshape(shape), shift.reshape(shape))
    return geom, shift


def interface_coefficients(cell) -> dict[str, np.ndarray]:
    """Per-volume coefficients of the interface at the DC state, ``(ny, nl)`` arrays.

    ``ya`` = d(current)/d(eta) [S m-3], ``yb`` = d(current)/dc [A m-3 per mol m-3], ``jf`` the
    Faradaic current [A m-3] (anodic positive), ``area`` the double layer's area per volume
    [m-1] and ``inv_c`` = d ln c / dc where the transient's logarithm is not floored.
    """
    s = cell.s
    geom, shift = interface_geometry(cell)
    c_rel = cell.conc / s.c_ref
    floored = c_rel <= C_FLOOR
    eta = cell.voltage - cell.phi + (shift if s.gt_coeff != 0.0 else 0.0)
    k = s.j0 * np.maximum(c_rel, C_FLOOR) ** s.alpha_a
    ea = np.exp(s.alpha_a * s.f_rt * eta)
    ec = np.exp(-(1.0 - s.alpha_a) * s.f_rt * eta)
    j = k * (ea - ec)
    inv_c = np.where(floored, 0.0, 1.0 / np.maximum(cell.conc, C_FLOOR * s.c_ref))
    out = {"ya": geom * k * s.f_rt * (s.alpha_a * ea + (1.0 - s.alpha_a) * ec),
           "yb": geom * s.alpha_a * j * inv_c, "jf": geom * j, "area": geom.copy(),
           "inv_c": inv_c}
    cols, j_cols, dj_cols = cell._wall_columns(cell.voltage)  # substrate dissolution, j > 0
    out["ya"][0, cols] += dj_cols / s.dx
    out["yb"][0, cols] += s.alpha_a * j_cols * inv_c[0, cols] / s.dx
    out["jf"][0, cols] += j_cols / s.dx
    passive = cell.wall_active == 0
    out["area"][0, passive] += (1.0 - np.clip(cell.xi[0, passive], 0.0, 1.0)) / s.dx
    return out


def counter_electrode(cell, current: float) -> dict[str, float]:
    """The counter electrode's DC state and slopes: ``eta`` [V], ``y`` = dj/deta [S m-2],
    ``b`` = dj/dc [A m-2 per mol m-3], ``c`` [mol m-3] (as :meth:`Cell.cell_voltage`)."""
    s = cell.s
    c_ce = float(cell.col[-1]) if cell.ncol else float(cell.conc[-1].mean())
    ratio = max(c_ce / s.c_ref, C_FLOOR)
    eta = bv_overpotential(-current, s.j0, s.alpha_a, s.temperature, ratio)
    k = s.j0 * ratio**s.alpha_a
    ea = math.exp(s.alpha_a * s.f_rt * eta)
    ec = math.exp(-(1.0 - s.alpha_a) * s.f_rt * eta)
    above = c_ce / s.c_ref > C_FLOOR
    return {"eta": eta, "y": k * s.f_rt * (s.alpha_a * ea + (1.0 - s.alpha_a) * ec),
            "b": s.alpha_a * k * (ea - ec) / c_ce if above else 0.0, "c": c_ce,
            "inv_c": 1.0 / c_ce if above else 0.0}


# ---------------------------------------------------------------------------------------------
# the linear system


def electrolyte_operators(cell) -> dict[str, sp.csr_matrix]:
    """The transient's electrolyte operators at the present ``psi`` without mass terms: salt
    ``K_D`` (grid and column), potential ``A_s`` (Dirichlet top) and ``L`` (closed top)."""
    s = cell.s
    psi = 1.0 - cell.xi
    h_col = s.sep_length / max(cell.ncol, 1)
    d_sep = s.diffusivity * s.sep_porosity**1.5
    salt = MultigridSolver(s.ny, s.nz, s.nx, cell.ncol)
    salt.assemble(psi, PSI_MIN, s.diffusivity, 0.0, s.dx,
                  TOP_COLUMN if cell.ncol else TOP_DIRICHLET, d_sep, h_col, 0.0)
    out = {"salt": salt.matrix()}
    pot = MultigridSolver(s.ny, s.nz, s.nx)
    pot.assemble(psi, PSI_MIN, s.conductivity, 0.0, s.dx, TOP_DIRICHLET)
    out["potential"] = pot.matrix()
    pot.assemble(psi, PSI_MIN, s.conductivity, 0.0, s.dx, TOP_CLOSED)
    out["closed"] = pot.matrix()
    return out


class Linearisation:
    """``A(w) = A0 + i w A1``, the right-hand sides of ``dV`` and of the counter electrode's
    ``deta`` and the current functional, at a DC state.

    The unknowns are, per grid cell ``k`` (interleaved, then the column nodes), the salt
    ``dc_k`` and ``dPsi_k = dPhi_k - beta dc_k / c_k``, the linearised potential less its
    diffusion potential: ``A_s dPhi - beta L (dc/c) = A_s dPsi + beta (A_s - L) (dc/c)`` and
    ``A_s - L`` is the Dirichlet top's diagonal, so the two fields couple only through
    diagonal (per-cell) terms and the LU fills in as for two independent Laplacians.

    Parameters
    ----------
    cell
        The :class:`~fastnai.models.deposition.cell.Cell` (not changed).
    current
        The DC current density [A m-2] (anodic positive; the counter electrode carries ``-I``).
    """

    def __init__(self, cell, current: float):
        s = cell.s
        self.n_grid, self.ncol = n, m = cell.xi.size, cell.ncol
        self.nl = cell.xi.shape[1]
        self.lu_bytes = 0  # the largest factorisation so far [bytes]
        self.capacitance = s.capacitance
        self.rt = 1.0 / s.f_rt
        self.sep_resistance = (s.sep_length / (s.conductivity * s.sep_porosity**1.5)
                               if s.sep_length > 0.0 else 0.0)
        self.beta = s.beta
        self.c_top = float(cell.conc[-1].mean())
        co = interface_coefficients(cell)
        self.faradaic_current = float(np.sum(co["jf"])) * s.dx**2 / s.width
        self.ce = counter_electrode(cell, current)
        dx2, w = s.dx**2, s.width
        ya, yb, inv_c = co["ya"].ravel(), co["yb"].ravel(), co["inv_c"].ravel()
        cdl = s.capacitance * co["area"].ravel()
        # indices: dc of cell k at 2k, dPsi at 2k + 1, column node j at 2n + j
        self.i_c = np.concatenate((2 * np.arange(n), 2 * n + np.arange(m)))
        self.i_p = 2 * np.arange(n) + 1
        self.a0, self.a1 = self._matrices(cell, ya, yb, inv_c, cdl)
        self.col_scale = np.ones(2 * n + m)
        self.col_scale[self.i_c] = s.c_ref / s.beta  # dc in volts: every block of one order
        salt = (1.0 - s.t_plus) * dx2 / F
        self.rhs_v0 = np.zeros(2 * n + m)
        self.rhs_v1 = np.zeros(2 * n + m)
        self.rhs_v0[self.i_c[:n]] = salt * ya
        self.rhs_v0[self.i_p] = dx2 * ya
        self.rhs_v1[self.i_p] = dx2 * cdl
        self.rhs_ce = np.zeros(2 * n + m)
        if m:
            self.rhs_ce[-1] = (1.0 - s.t_plus) * w / F * self.ce["y"]
        # dI = l0 dV + lc . dc + lpsi . dPsi, each as (value, i w part)
        self.l0 = (float(np.sum(ya)) * dx2 / w, float(np.sum(cdl)) * dx2 / w)
        self.lpsi = (-ya * dx2 / w, -cdl * dx2 / w)
        self.lc = ((yb - s.beta * inv_c * ya) * dx2 / w,
                   (self.rt - s.beta) * inv_c * cdl * dx2 / w)
        if self.l0 == (0.0, 0.0):
            raise FastnaiError("eis: no interface reacts and electrode.double_layer_capacitance "
                               "is 0: the electrode is an open circuit (measure after nucleation "
                               "or give a double layer)")

    def _matrices(self, cell, ya, yb, inv_c, cdl) -> tuple[sp.csc_matrix, sp.csc_matrix]:
        """``A0`` and ``A1`` (CSC, unscaled) in the interleaved numbering."""
        s = cell.s
        n, m = self.n_grid, self.ncol
        dx2 = s.dx**2
        salt = (1.0 - s.t_plus) * dx2 / F
        ops = electrolyte_operators(cell)
        k_salt, a_pot = ops["salt"].tocoo(), ops["potential"].tocoo()
        top = ops["potential"].diagonal() - ops["closed"].diagonal()  # the Dirichlet top face
        bi_c = s.beta * inv_c
        rows = [self.i_c[k_salt.row], self.i_p[a_pot.row], self.i_c[:n], self.i_c[:n],
                self.i_p, self.i_p]
        cols = [self.i_c[k_salt.col], self.i_p[a_pot.col], self.i_c[:n], self.i_p, self.i_p,
                self.i_c[:n]]
        vals = [k_salt.data, a_pot.data, salt * (ya * bi_c - yb), salt * ya, dx2 * ya,
                bi_c * top + dx2 * (ya * bi_c - yb)]
        if m:  # the counter electrode's dj/dc, into the column's last node
            rows.append([2 * n + m - 1])
            cols.append([2 * n + m - 1])
            vals.append([-(1.0 - s.t_plus) * s.width / F * self.ce["b"]])
        shape = (2 * n + m, 2 * n + m)
        a0 = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=shape)
        h_col = s.sep_length / max(m, 1)
        mass = np.concatenate((np.maximum(1.0 - cell.xi, PSI_MIN).ravel() * dx2,
                               np.full(m, s.sep_porosity * h_col * s.width)))
        rows = [self.i_c, self.i_p, self.i_p]
        cols = [self.i_c, self.i_p, self.i_c[:n]]
        vals = [mass, dx2 * cdl, dx2 * cdl * (bi_c - self.rt * inv_c)]
        a1 = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=shape)
        return a0, a1

    def solve(self, omega: float) -> tuple[np.ndarray, np.ndarray]:
        """The responses to ``dV = 1`` and to the counter electrode's ``deta = 1`` at ``omega``."""
        a = (self.a0 + 1j * omega * self.a1) @ sp.diags(self.col_scale)
        rows = np.maximum(abs(a).max(axis=1).toarray().ravel(), 1e-300)
        a = (sp.diags(1.0 / rows) @ a).tocsc()
        rhs = np.column_stack((self.rhs_v0 + 1j * omega * self.rhs_v1,
                               self.rhs_ce.astype(complex))) / rows[:, None]
        lu = splu(a, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.01,
                  options={"SymmetricMode": True})
        # complex values and int32 indices of the factors, and the matrix's copies
        self.lu_bytes = max(self.lu_bytes, 20 * (lu.L.nnz + lu.U.nnz + 4 * a.nnz))
        return tuple(self.col_scale * v for v in lu.solve(rhs).T)

    def impedance(self, omega: float) -> tuple[complex, complex]:
        """``(Z_cell, Z_working)`` [ohm m2 of substrate] at ``omega`` [rad s-1]."""
        n, m = self.n_grid, self.ncol
        y_v, y_ce = self.solve(omega)
        lc = self.lc[0] + 1j * omega * self.lc[1]
        lpsi = self.lpsi[0] + 1j * omega * self.lpsi[1]
        top = self.i_c[n - self.nl:n]

        def current(y):
            return np.dot(lc, y[self.i_c[:n]]) + np.dot(lpsi, y[self.i_p])

        def c_ce(y):
            return y[-1] if m else np.mean(y[top])

        cdl = 1j * omega * self.capacitance
        kappa = self.ce["b"] + cdl * self.rt * self.ce["inv_c"]
        l0 = self.l0[0] + 1j * omega * self.l0[1]
        eta_ce = -((l0 + current(y_v)) + kappa * c_ce(y_v)) / (
            self.ce["y"] + cdl + current(y_ce) + kappa * c_ce(y_ce))
        y = y_v + eta_ce * y_ce
        d_i = l0 + current(y)
        drop = 0.0
        if m:
            drop = -d_i * self.sep_resistance + self.beta * (
                c_ce(y) * self.ce["inv_c"] - np.mean(y[top]) / self.c_top)
        return (1.0 - drop - eta_ce) / d_i, 1.0 / d_i


# ---------------------------------------------------------------------------------------------
# spectra


def spectrum(cell, freqs: np.ndarray, *, current: float) -> dict:
    """The spectrum about the cell's present state (not changed).

    Returns
    -------
    dict
        ``impedance`` (symmetric cell) and ``electrode_impedance`` (working electrode), complex
        [ohm m2 of substrate], ``voltage`` (the cell voltage of the DC state [V]),
        ``current_density`` (its Faradaic current [A m-2]).

    Examples
    --------
    A flat, fully active Na electrode at rest: at 1 mHz the working electrode is R_ct = RT/(F j0)
    (0.0378 ohm m2 at 0.068 mA cm-2) plus the electrolyte's few 1e-5 ohm m2.

    >>> from fastnai.case import load_case
    >>> from fastnai.models.deposition.cell import Cell
    >>> from fastnai.models.deposition.setup import build
    >>> case = load_case({"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
    ...                   "mesh": {"nx": 2, "ny": 32, "dx": "0.2 um"},
    ...                   "protocol": [{"step": "eis"}]},
    ...                  {"nucleation.mode": "none", "initial.deposit_thickness": "3 um"})
    >>> cell = Cell(case, build(case))
    >>> sp = spectrum(cell, np.array([1e-3, 1e5]), current=0.0)
    >>> [round(float(z.real), 4) for z in sp["electrode_impedance"]]
    [0.0378, 0.0]
    """
    lin = Linearisation(cell, current)
    z = np.array(_map_frequencies(lin, 2.0 * math.pi * np.asarray(freqs, dtype=float)))
    return {"impedance": z[:, 0], "electrode_impedance": z[:, 1],
            "voltage": cell.cell_voltage(current)[0], "current_density": lin.faradaic_current}


@functools.lru_cache(maxsize=1)
def _blas_local_threads():
    """``openblas_set_num_threads_local`` of scipy's bundled OpenBLAS, the BLAS whose ``zgemm``
    and ``ztrsm`` SuperLU's supernodes call, or None where scipy links another BLAS."""
    import ctypes

    import scipy

    for path in sorted((Path(scipy.__file__).parent.parent / "scipy.libs").glob("libscipy_openblas*")):
        try:
            setter = ctypes.CDLL(str(path)).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
        return setter
    return None


def _map_frequencies(lin: Linearisation, omegas: np.ndarray) -> list:
    """``[lin.impedance(w) for w in omegas]``, the frequencies in parallel.

    SuperLU releases the GIL, so threads factorise different frequencies at once; each keeps its
    BLAS to one thread (thread-local), so the workers do not oversubscribe the cores and the
    bits do not depend on their number. The first frequency alone measures a factorisation's
    memory; then as many workers as the run's Numba threads, and the memory available, allow
    (each holds one factorisation: about 4 kB per cell in 2D). Serial, BLAS as it is, where
    scipy's BLAS threads cannot be limited per thread."""
    import numba

    from ...resources import available_memory

    setter = _blas_local_threads()
    if setter is None:
        return [lin.impedance(w) for w in omegas]

    def one(w):
        setter(1)  # thread-local: the caller's BLAS keeps its threads
        return lin.impedance(w)

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(one, omegas[0]).result()
    if omegas.size == 1:
        return [first]
    n_workers = min(int(numba.get_num_threads()), omegas.size - 1,
                    available_memory() // max(2 * lin.lu_bytes, 1))
    with ThreadPoolExecutor(max(1, n_workers)) as pool:
        return [first] + list(pool.map(one, omegas[1:]))


def drift_ratio(t: np.ndarray, voltage: np.ndarray, current: np.ndarray, z_min: complex,
                f_min: float, temperature: float) -> float:
    """``(|dU/dt| + |Z(f_min)| |dI/dt|) / (2 pi f_min RT/F)`` from the last two records of the
    cell voltage ``U`` and current ``I`` (0 with fewer than two records).

    >>> round(drift_ratio([0.0, 1.0], [0.0, 1e-3], [-5.0, -5.0], 0.04, 0.01, 298.15), 3)
    0.619
    """
    if len(t) < 2 or not t[-1] > t[-2]:
        return 0.0
    dt = t[-1] - t[-2]
    rate = abs(voltage[-1] - voltage[-2]) / dt + abs(z_min) * abs(current[-1] - current[-2]) / dt
    return float(rate / (2.0 * math.pi * f_min * R * temperature / F))



# ---------------------------------------------------------------------------------------------
# the VN paper's temperature series


def rct_temperature_series(case, *, temperatures=TEMPERATURES, frequency_min: float = 0.1,
                           frequency_max: float = 1e5, points_per_decade: int = 5,
                           flat: bool = True, deposit_thickness: float = 3e-6,
                           plate_capacity: float | None = None, current_density: float = 5.0,
                           rest_duration: float | None = None) -> dict:
    """R_ct from Randles fits of simulated spectra at a temperature series, and E_a from
    ``T / R_ct = A exp(-E_a / RT)`` (the VN paper's analysis, Xia et al., Nanoscale Horiz. 7, 899
    (2022), doi:10.1039/d2nh00152g).

    A round trip, labelled so: the model's exchange current carries the Arrhenius law of
    ``substrate.activation_energy`` (72.96 kJ mol-1 bare, 61.42 on VN, the paper's own values)
    and nothing else in the model depends on temperature but RT/F (the electrolyte's
    conductivity and diffusivity are constants), so the fit recovers the input. The paper's SEI
    semicircle is not modelled.

    Parameters
    ----------
    case
        A deposition case (its protocol is replaced by the one below).
    temperatures
        [K]; default the paper's 283.15-328.15 K.
    frequency_min, frequency_max, points_per_decade
        The eis step [Hz]: above ~0.1 Hz the salt's finite length (transmissive, unlike the fit's
        reflective Warburg element) stays out of the fitted range.
    flat
        A flat deposit ``deposit_thickness`` [m] thick on a fully active substrate
        (``nucleation.mode = "none"``), in a box narrowed to two columns (the state is
        laterally uniform, so the spectrum per area is the same); else the case's own sites,
        whose nuclei (and so R_ct) depend on temperature through the nucleation rate.
    plate_capacity, current_density, rest_duration
        Optional plating [A s m-2] at ``current_density`` [A m-2] and rest [s] before the eis step
        (default: the spectrum of the initial state, at rest).

    Returns
    -------
    dict
        ``temperature`` [K]; ``rct`` (the symmetric cell's arc, both electrodes: what the paper
        fits) and ``rct_electrode`` (the working electrode alone) [ohm m2], their standard errors
        ``rct_stderr``, ``rct_electrode_stderr``; ``rct_closed_form`` = RT / (F j0(T)) [ohm m2];
        ``activation_energy`` and ``activation_energy_stderr`` [J mol-1] from ``rct``;
        ``input_activation_energy`` [J mol-1]; ``basis``.
    """
    from ... import spectra
    from ...case import load_case
    from .output import run
    from .setup import exchange_current

    raw = _series_raw(case, (frequency_min, frequency_max, points_per_decade), plate_capacity,
                      current_density, rest_duration)
    over = {"nucleation.mode": "none", "initial.deposit_thickness": deposit_thickness,
            "mesh.nx": 2, "mesh.nz": 1} if flat else {}
    out: dict = {name: [] for name in ("rct", "rct_stderr", "rct_electrode",
                                       "rct_electrode_stderr", "rct_closed_form")}
    for temp in temperatures:
        one = load_case(raw, {**over, "electrode.temperature": float(temp)})
        ds = run(one, progress=False)
        f = ds.frequency.values
        for name, part in (("rct", "impedance"), ("rct_electrode", "electrode_impedance")):
            z = ds[f"{part}_real"].values + 1j * ds[f"{part}_imag"].values
            fit = spectra.charge_transfer_resistance(f, z)
            out[name].append(fit.value)
            out[f"{name}_stderr"].append(fit.stderr)
        out["rct_closed_form"].append(R * temp / (F * exchange_current(one)))
    out = {name: np.array(values, dtype=float) for name, values in out.items()}
    out["temperature"] = np.asarray(temperatures, dtype=float)
    ea = spectra.rct_activation_energy(out["temperature"], out["rct"])
    out.update(activation_energy=ea.value, activation_energy_stderr=ea.stderr,
               input_activation_energy=case["substrate.activation_energy"],
               basis="computed (input recovered): T/R_ct of Randles fits to model spectra; the "
                     "model's j0 carries the paper's Arrhenius E_a")
    return out


def _series_raw(case, eis: tuple, plate_capacity, current_density, rest_duration) -> dict:
    """The case as a raw dict with the series' protocol: [plate], [rest], eis."""
    import tomllib

    steps = []
    if plate_capacity:
        steps.append({"step": "plate", "current_density": current_density,
                      "capacity": plate_capacity})
    if rest_duration:
        steps.append({"step": "rest", "duration": rest_duration})
    steps.append({"step": "eis", "frequency_min": eis[0], "frequency_max": eis[1],
                  "points_per_decade": eis[2]})
    raw = tomllib.loads(case.to_toml())
    raw["protocol"] = steps
    return raw
