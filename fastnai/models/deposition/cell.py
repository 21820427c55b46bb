"""The deposition cell: state, time step and records, driven by fastnai.runner."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..._kernels import electrolyte as kel
from ..._kernels import phase_field as kpf
from ...electrolyte import TOP_COLUMN, TOP_DIRICHLET, MultigridSolver, SpdSolver
from ...errors import ConvergenceError
from ...lifecycle import Lifecycle
from ...protocol import compile_protocol
from ...runner import run_protocol
from ...spectrum_log import SpectrumLog
from .keys import KB, F
from .setup import C_FLOOR, PSI_MIN, Setup, build, bv_overpotential

# ---------------------------------------------------------------------------------------------
# state and one time step


_SERIES = ("t", "current_density", "overpotential", "voltage", "counter_overpotential",
           "separator_drop", "na_inventory", "deposited_charge", "nuclei_count",
           "active_site_density", "front_height_max", "front_height_mean", "roughness",
           "dead_na_fraction", "substrate_stripped", "profile_na", "front_concentration",
           "time_step", "newton_iterations", "protocol_step")


def _periodic_labels(metal: np.ndarray) -> np.ndarray:
    """Face-connected components of ``metal``, merged across the periodic lateral seams
    (every axis but the first, the height)."""
    labels, n = ndimage.label(metal)
    if not n:
        return labels
    parent = np.arange(n + 1)

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for axis in range(1, metal.ndim):
        if metal.shape[axis] < 2:
            continue
        first = np.take(labels, 0, axis=axis).ravel()
        last = np.take(labels, -1, axis=axis).ravel()
        both = (first > 0) & (last > 0)
        for a, b in zip(first[both], last[both], strict=True):
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(a) for a in range(n + 1)])
    return roots[labels]


def _nearest_region(labels: np.ndarray) -> np.ndarray:
    """Every cell's region: the label of the nearest labelled cell (Euclidean, periodic in
    every axis but the first by wrapping up to 32 cells; any partition conserves per region,
    the nearest one keeps the corrections where the interface is)."""
    pads = [(0, 0)] + [(min(n, 32), min(n, 32)) for n in labels.shape[1:]]
    padded = np.pad(labels, pads, mode="wrap")
    idx = ndimage.distance_transform_edt(padded == 0, return_distances=False,
                                         return_indices=True)
    nearest = padded[tuple(idx)]
    crop = tuple(slice(p[0], p[0] + n) for p, n in zip(pads, labels.shape, strict=True))
    return nearest[crop]


class Cell:
    """The state of a deposition run and its time step (2D)."""

    def __init__(self, case, setup: Setup):
        self.case = case
        self.s = s = setup
        ny, nl = s.ny, s.nz * s.nx
        self.xi = np.zeros((ny, nl))
        h0 = case["initial.deposit_thickness"]
        if h0 > 0.0:
            y = (np.arange(ny) + 0.5) * s.dx
            self.xi[:] = (0.5 * (1.0 - np.tanh((y - h0) / (2.0 * s.lam))))[:, None]
        self.conc = np.full((ny, nl), s.c_ref)
        self.ncol = s.sep_nodes if s.sep_length > 0.0 else 0
        self.col = np.full(self.ncol, s.c_ref)
        self.phi = np.zeros((ny, nl))
        self.voltage = 0.0
        self.t = 0.0
        self.step_index = 0
        n_sites = s.site_ptr.size - 1
        self.site_active = np.zeros(n_sites, dtype=np.uint8)
        self.site_step = np.full(n_sites, -1, dtype=np.int64)
        self.site_time = np.full(n_sites, math.nan)
        self.wall_active = np.zeros(nl, dtype=np.uint8)
        if case["nucleation.mode"] == "none":
            self.wall_active[:] = 1
        self.substrate_stripped = 0.0  # mol m-2 taken from the substrate's own Na
        self.deposited_charge = 0.0  # C m-2 passed in the plating direction
        self.v_max = 0.0
        self.dead_fraction = 0.0
        self.profile_change = 0.0
        self.profile_na = 0.0  # mol m-2 the profile terms added (charged against the current)
        # work arrays (allocated once)
        self.xi_star = np.empty_like(self.xi)
        self.geom = np.zeros_like(self.xi)
        self.geom2 = np.zeros_like(self.xi)
        self.eta_shift = np.zeros_like(self.xi)
        self.xi_new = np.empty_like(self.xi)
        self.source = np.zeros_like(self.xi)
        self.mask = np.zeros((ny, nl), dtype=np.uint8)
        self.partial = np.zeros((kpf.N_CHUNKS, 2))
        self.lnc = np.empty_like(self.xi)
        self.div = np.empty_like(self.xi)
        if h0 > 0.0:
            self.settle_profile()
        self.xi0_inventory = self.inventory()
        self.conserve = (s.formulation == kpf.PROFILE_PRESERVING
                         and case["phase_field.conservation"] == "deposit")
        self.multigrid = case["electrolyte.solver"] == "multigrid"
        if self.multigrid:
            self.salt = MultigridSolver(ny, s.nz, s.nx, self.ncol, rtol=1e-8, name="salt")
            self.potential = MultigridSolver(ny, s.nz, s.nx, rtol=1e-8, name="potential")
        else:
            ip, ix = kel.csr_pattern(ny, s.lat, self.ncol)
            self.salt = SpdSolver(ip, ix, rtol=1e-8, name="salt")
            ip, ix = kel.csr_pattern(ny, s.lat, 0)
            self.potential = SpdSolver(ip, ix, rtol=1e-8, name="potential")
        self.update_mask()

    def settle_profile(self, n_steps: int = 400) -> None:
        """Relax a given initial deposit to the discrete equilibrium profile (no current).

        The sampled tanh is not an exact steady state of the discrete profile terms; left as
        it is, its first steps would change the phase field by far more than a small current
        does, and under current control that change is charged against the current.
        """
        s = self.s
        dt = 0.5 * s.dx * s.dx / s.mobility  # r = 1/2
        self.mask[:] = 0
        for _ in range(n_steps):
            self._profile_kernel(dt, 0.0, 0.0, 0.0, 0)
            self.xi, self.xi_star = self.xi_star, self.xi

    def _profile_kernel(self, dt: float, gt_coeff: float, anisotropy: float, noise: float,
                        step: int) -> None:
        """``profile_step`` of :mod:`~fastnai._kernels.phase_field` (2D) or its 3D twin on
        ``(ny, nz, nx)`` views of the fields."""
        s = self.s
        if s.nz == 1:
            kpf.profile_step(self.xi, self.wall_active, s.cos_theta, s.dx, s.lam, s.mobility, dt,
                             s.formulation, self.mask, gt_coeff, anisotropy, noise, s.seed, step,
                             self.xi_star, self.geom, self.geom2, self.eta_shift)
            return
        from ..._kernels import phase_field_3d as kpf3  # compiled only when a 3D case runs

        shape = (s.ny, s.nz, s.nx)
        kpf3.profile_step_3d(self.xi.reshape(shape), self.wall_active.reshape(shape[1:]),
                             s.cos_theta, s.dx, s.lam, s.mobility, dt, s.formulation,
                             self.mask.reshape(shape), gt_coeff, anisotropy, noise, s.seed, step,
                             self.xi_star.reshape(shape), self.geom.reshape(shape),
                             self.geom2.reshape(shape), self.eta_shift.reshape(shape))

    # -- bookkeeping --------------------------------------------------------------------------
    def inventory(self) -> float:
        """Na in the phase field per substrate area [mol m-2]."""
        return kpf.field_sum(self.xi, np.zeros((kpf.N_CHUNKS, 2))) * self.s.dx**2 * self.s.c_s / self.s.width

    def refresh_wall(self) -> None:
        s = self.s
        if self.case["nucleation.mode"] == "none":
            return
        self.wall_active[:] = 0
        for k in np.flatnonzero(self.site_active):
            self.wall_active[s.site_cells[s.site_ptr[k]:s.site_ptr[k + 1]]] = 1

    def update_mask(self) -> None:
        """Relabel the metal: live (connected to an active site) vs dead; the reacting cells."""
        s = self.s
        shape = (s.ny, s.nz, s.nx) if s.nz > 1 else (s.ny, s.nx)
        metal = (self.xi > 0.5).reshape(shape)
        labels = _periodic_labels(metal)  # face connectivity: 4 in 2D, 6 in 3D
        active_cols = self.wall_active.astype(bool)
        flat = labels.reshape(s.ny, -1)
        live_labels = np.unique(flat[0, active_cols])
        live_labels = live_labels[live_labels > 0]
        live = np.isin(labels, live_labels)
        live.reshape(s.ny, -1)[0, active_cols] = True
        dead = metal & ~live
        total = self.inventory() - self.xi0_inventory
        dead_na = float(self.xi.reshape(shape)[dead].sum()) * s.dx**2 * s.c_s / s.width
        self.dead_fraction = dead_na / total if total > 0.0 else 0.0
        modes = ("constant",) + ("wrap",) * (len(shape) - 1)
        grown = ndimage.maximum_filter(live.view(np.uint8), size=2 * s.dilation + 1,
                                       mode=modes, cval=0).view(bool)
        if dead.any():  # the interface of a dead island does not react, even near live metal
            near_dead = ndimage.maximum_filter(dead.view(np.uint8), size=2 * s.dead_reach + 1,
                                               mode=modes, cval=0).view(bool)
            grown &= ~near_dead
            grown |= live
        self.mask[:] = grown.reshape(s.ny, -1)

    def front_concentration(self) -> float:
        """Lowest salt concentration in the first electrolyte cell (xi < 0.5) above the metal
        top of each column [mol m-3] (Sand's time: where it reaches zero)."""
        above = self.xi > 0.5
        any_metal = above.any(axis=0)
        top = np.where(any_metal, self.s.ny - 1 - np.argmax(above[::-1], axis=0), -1) + 1
        top = np.minimum(top, self.s.ny - 1)
        return float(np.min(self.conc[top, np.arange(self.conc.shape[1])]))

    def morphology(self) -> tuple[float, float, float]:
        """Front height per column (top of xi > 0.5, interpolated): max, mean, std [m]."""
        s = self.s
        xi = self.xi
        above = xi > 0.5
        any_metal = above.any(axis=0)
        top = np.where(any_metal, s.ny - 1 - np.argmax(above[::-1], axis=0), -1)
        h = np.zeros(xi.shape[1])
        cols = np.flatnonzero(any_metal)
        j = top[cols]
        x0 = xi[j, cols]
        x1 = np.where(j + 1 < s.ny, xi[np.minimum(j + 1, s.ny - 1), cols], 0.0)
        frac = np.where(x0 > x1, (x0 - 0.5) / np.maximum(x0 - x1, 1e-300), 0.0)
        h[cols] = (j + 0.5 + np.clip(frac, 0.0, 1.0)) * s.dx
        return float(h.max()), float(h.mean()), float(h.std())

    # -- the step -----------------------------------------------------------------------------
    def _wall_columns(self, voltage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Anodic dissolution of the substrate at active, uncovered columns: the columns, and
        per column the current density times the uncovered fraction [A m-2] and its d/dV."""
        s = self.s
        cols = self.wall_active.astype(bool)
        eta = voltage - self.phi[0, cols]
        cr = np.maximum(self.conc[0, cols] / s.c_ref, C_FLOOR)
        k = s.j0 * cr**s.alpha_a
        ea = np.exp(s.alpha_a * s.f_rt * eta)
        ec = np.exp(-(1.0 - s.alpha_a) * s.f_rt * eta)
        j = k * (ea - ec)
        dj = k * s.f_rt * (s.alpha_a * ea + (1.0 - s.alpha_a) * ec)
        bare = 1.0 - np.clip(self.xi[0, cols], 0.0, 1.0)
        pos = j > 0.0
        return cols, np.where(pos, j, 0.0) * bare, np.where(pos, dj, 0.0) * bare

    def _wall_current(self, voltage: float) -> tuple[float, float]:
        """The substrate's dissolution per substrate area: (j, dj/dV)."""
        _, j, dj = self._wall_columns(voltage)
        scale = self.s.dx / self.s.width
        return float(np.sum(j)) * scale, float(np.sum(dj)) * scale

    def _growth(self, voltage: float, dt: float):
        s = self.s
        return kpf.growth_sum(voltage, self.xi_star, self.geom, self.geom2, self.phi, self.conc,
                              self.eta_shift, s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a,
                              1.0 - s.alpha_a, s.f_rt, s.speed, dt, C_FLOOR, self.partial)

    def _balance(self, voltage: float, dt: float, j_app: float) -> tuple[float, float]:
        """Charge balance residual [A m-2] and its derivative in V (the whole change of the
        phase field counts: growth and profile terms)."""
        s = self.s
        total, dtotal = self._growth(voltage, dt)
        total += self.profile_change
        scale = F * s.c_s * s.dx**2 / (dt * s.width)
        jw, djw = self._wall_current(voltage)
        res = -scale * total + s.capacitance * (voltage - self.voltage) / dt + jw - j_app
        return res, -scale * dtotal + s.capacitance / dt + djw

    def solve_voltage(self, dt: float, j_app: float) -> tuple[float, int]:
        """Safeguarded Newton for V on the charge balance (monotone increasing in V)."""
        v = self.voltage
        lo, hi = -math.inf, math.inf
        tol = 1e-12 * max(abs(j_app), self.s.j0, 1e-3)
        for it in range(1, 101):
            res, dres = self._balance(v, dt, j_app)
            if abs(res) <= tol:
                return v, it
            if res > 0.0:
                hi = min(hi, v)
            else:
                lo = max(lo, v)
            if hi - lo <= 1e-13 * max(1.0, abs(v)):  # bracketed to round-off: V is found
                return v, it
            v_new = v - res / dres if dres > 0.0 else math.nan
            if not math.isfinite(v_new) or not lo < v_new < hi:
                if math.isfinite(lo) and math.isfinite(hi):
                    v_new = 0.5 * (lo + hi)
                else:
                    v_new = v + (-0.05 if res > 0.0 else 0.05)
            v_new = min(max(v_new, v - 0.1), v + 0.1)
            if abs(v_new - v) <= 1e-14 * max(1.0, abs(v)):
                return v_new, it
            v = v_new
        raise ConvergenceError(f"deposition: the galvanostatic voltage did not converge at "
                               f"t = {self.t:.6g} s (j = {j_app:g} A m-2, dt = {dt:g} s; is any "
                               "interface reacting?)", [])

    def profile(self, dt: float) -> None:
        """Profile terms of the step: ``xi_star``, the growth geometry and ``profile_change``
        (``sum(xi_star - xi)``, the phase field the profile terms alone add: round-off where
        they conserve each deposit's Na, :meth:`conserve_deposits`)."""
        s = self.s
        self._profile_kernel(dt, s.gt_coeff, s.anisotropy, s.noise, self.step_index)
        if self.conserve:
            self.conserve_deposits()
        self.profile_change = kpf.difference_sum(self.xi_star, self.xi, self.partial)

    def deposit_regions(self) -> np.ndarray:
        """``(ny, nl)`` region of every cell: the deposits (face-connected ``xi > 0.5``, the
        first row over an active site counting as metal: a nucleus before it has a body), each
        cell going to the nearest one; 0 everywhere when there is no deposit."""
        s = self.s
        shape = (s.ny, s.nz, s.nx) if s.nz > 1 else (s.ny, s.nx)
        seeds = self.xi > 0.5
        seeds[0] |= self.wall_active.astype(bool)
        labels = _periodic_labels(seeds.reshape(shape))
        if not labels.any():
            return labels.reshape(s.ny, -1)
        return _nearest_region(labels).reshape(s.ny, -1)

    def conserve_deposits(self) -> None:
        """Give each deposit back the Na the profile terms took from it (or take what they
        added), spread over its interface with the weight ``xi (1 - xi)``: the profile terms
        then move interfaces without creating or destroying Na in any deposit, so growth comes
        from the Faradaic flux alone. A uniform weight along the interface keeps the shape (it
        moves the interface along its normal by the same distance everywhere); for a flat
        front it is the same in every column."""
        region = self.deposit_regions().ravel()
        if not region.any():
            return
        n = int(region.max()) + 1
        xs = self.xi_star.ravel()
        delta = np.bincount(region, weights=xs - self.xi.ravel(), minlength=n)
        weight = xs * (1.0 - xs)
        total = np.bincount(region, weights=weight, minlength=n)
        per = np.divide(delta, total, out=np.zeros(n), where=total > 0.0)
        xs -= per[region] * weight

    def speed_at(self, voltage: float) -> float:
        s = self.s
        return kpf.max_speed(voltage, self.geom, self.phi, self.conc, self.eta_shift,
                             s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a, 1.0 - s.alpha_a,
                             s.f_rt, s.speed, C_FLOOR)

    def advance(self, dt: float, mode: str, value: float) -> tuple[float, int, float]:
        """Phase field over one step: returns (V, Newton iterations, largest front speed)."""
        self.profile(dt)
        if mode == "voltage":
            return value, 0, self.speed_at(value)
        v, its = self.solve_voltage(dt, value)
        return v, its, self.speed_at(v)

    def commit(self, dt: float, voltage: float) -> float:
        """Apply the growth at ``voltage``, solve the electrolyte; returns the current [A m-2]."""
        s = self.s
        kpf.apply_growth(voltage, self.xi, self.xi_star, self.geom, self.geom2, self.phi, self.conc,
                         self.eta_shift, s.gt_coeff != 0.0, s.j0, 1.0 / s.c_ref, s.alpha_a,
                         1.0 - s.alpha_a, s.f_rt, s.speed, dt, C_FLOOR, s.c_s, self.xi_new,
                         self.source)
        self.profile_na += self.profile_change * s.dx**2 * s.c_s / s.width
        cols, j_cols, _ = self._wall_columns(voltage)
        jw = float(np.sum(j_cols)) * s.dx / s.width
        if jw != 0.0:  # substrate dissolution: a negative source in the first row
            self.source[0, cols] -= j_cols / (F * s.dx)
            self.substrate_stripped += jw * dt / F
        d_inv = kpf.difference_sum(self.xi_new, self.xi, self.partial)
        j_far = -F * s.c_s * s.dx**2 * d_inv / (dt * s.width) + jw
        current = j_far + s.capacitance * (voltage - self.voltage) / dt
        self.xi, self.xi_new = self.xi_new, self.xi
        self.voltage = voltage
        self.deposited_charge -= current * dt
        self._electrolyte(dt)
        return current

    def _electrolyte(self, dt: float) -> None:
        s = self.s
        ny, nx = self.xi.shape  # nx: the lateral cells of a layer (nz nx in 3D)
        psi = 1.0 - self.xi
        dx2 = s.dx * s.dx
        d_sep = s.diffusivity * s.sep_porosity**1.5
        h_col = s.sep_length / max(self.ncol, 1)
        if self.multigrid:
            self.salt.assemble(psi, PSI_MIN, s.diffusivity, 1.0 / dt, s.dx,
                               TOP_COLUMN if self.ncol else TOP_DIRICHLET, d_sep, h_col,
                               s.sep_porosity / dt)
        else:
            kel.fill(self.salt.data, self.salt.indptr, self.salt.indices, psi, s.lat, PSI_MIN,
                     s.diffusivity, 1.0 / dt, s.dx, self.ncol, d_sep, h_col, s.sep_porosity / dt,
                     self.ncol == 0)
        rate = self.source.ravel()
        b = np.empty(ny * nx + self.ncol)
        b[:ny * nx] = np.maximum(psi, PSI_MIN).ravel() * dx2 / dt * self.conc.ravel() \
            - (1.0 - s.t_plus) * rate * dx2
        if self.ncol:
            b[ny * nx:] = s.sep_porosity * h_col * s.width / dt * self.col
            b[-1] += (1.0 - s.t_plus) * float(kpf.field_sum(self.source, self.partial)) * dx2
        else:  # no separator: the top face is held at c_ref
            b[(ny - 1) * nx:] += 2.0 * s.diffusivity * np.maximum(psi[-1], PSI_MIN) * s.c_ref
        x0 = np.concatenate((self.conc.ravel(), self.col))
        x, _ = self.salt.solve(b, x0)
        self.conc[:] = x[:ny * nx].reshape(ny, nx)
        self.col[:] = x[ny * nx:]
        if self.multigrid:
            self.potential.assemble(psi, PSI_MIN, s.conductivity, 0.0, s.dx, TOP_DIRICHLET)
        else:
            kel.fill(self.potential.data, self.potential.indptr, self.potential.indices, psi,
                     s.lat, PSI_MIN, s.conductivity, 0.0, s.dx, 0, 1.0, 1.0, 0.0, True)
        np.log(np.maximum(self.conc / s.c_ref, C_FLOOR), out=self.lnc)
        kel.face_divergence(psi, s.lat, PSI_MIN, s.conductivity, self.lnc, self.div)
        b = (-F * self.source * dx2 - s.beta * self.div).ravel()
        x, _ = self.potential.solve(b, self.phi.ravel().copy())
        self.phi[:] = x.reshape(ny, nx)

    def activate(self, dt: float) -> int:
        """Draw site activations over the step just taken (η at its end)."""
        s = self.s
        if s.site_cells.size == 0:
            return 0
        before = self.site_active.copy()
        n = kpf.activate_sites(self.voltage, self.phi[0], s.site_ptr, s.site_cells,
                               self.site_active, s.prefactor, s.barrier_coeff, s.f_theta,
                               KB * s.temperature, dt, s.seed, self.step_index, self.site_step)
        if n:
            self.site_time[(self.site_active == 1) & (before == 0)] = self.t
            self.refresh_wall()
        return n

    def cell_voltage(self, current: float) -> tuple[float, float, float]:
        """Symmetric-cell voltage, counter-electrode overpotential and separator drop [V]."""
        s = self.s
        c_top = float(self.conc[-1].mean())
        c_ce = float(self.col[-1]) if self.ncol else c_top
        sigma_sep = s.conductivity * s.sep_porosity**1.5
        drop = -current * s.sep_length / sigma_sep + s.beta * math.log(
            max(c_ce, C_FLOOR * s.c_ref) / max(c_top, C_FLOOR * s.c_ref))
        eta_ce = bv_overpotential(-current, s.j0, s.alpha_a, s.temperature,
                                  max(c_ce / s.c_ref, C_FLOOR))
        return self.voltage - drop - eta_ce, eta_ce, drop

    # -- checkpoints --------------------------------------------------------------------------
    _STATE = ("xi", "conc", "col", "phi", "site_active", "site_step", "site_time", "wall_active")
    _SCALARS = ("voltage", "t", "step_index", "substrate_stripped", "deposited_charge", "v_max",
                "dead_fraction", "xi0_inventory", "profile_na")

    def checkpoint_state(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name) for name in self._STATE}
        out.update({name: np.asarray(getattr(self, name)) for name in self._SCALARS})
        for name, solver in (("salt", self.salt), ("potential", self.potential)):
            for key, value in solver.state().items():
                out[f"{name}_{key}"] = value
        return out

    def restore_state(self, state: dict) -> None:
        for name in self._STATE:
            getattr(self, name)[...] = state[name]
        for name in self._SCALARS:
            value = state[name]
            setattr(self, name, int(value) if name == "step_index" else float(value))
        for name, solver in (("salt", self.salt), ("potential", self.potential)):
            solver.restore({key[len(name) + 1:]: value for key, value in state.items()
                            if key.startswith(f"{name}_")})
        self.update_mask()


# ---------------------------------------------------------------------------------------------
# the run


@dataclass
class Result:
    """Raw output of :func:`simulate`."""

    setup: Setup
    series: dict[str, np.ndarray]
    snapshot_t: np.ndarray
    snapshots: dict[str, np.ndarray]
    site_time: np.ndarray
    stats: dict[str, int]
    wall_time_s: float
    spectra: dict[str, np.ndarray] | None = None  # eis steps: SpectrumLog.arrays()


#: Each impedance spectrum records its DC state (besides time and step), and Z of the symmetric
#: cell ("") and of the working electrode ("electrode") per frequency.
SPECTRUM_SCALARS = ("voltage", "current_density", "drift_ratio")
SPECTRUM_PARTS = ("", "electrode")


class _Recorder:
    def __init__(self, cell: Cell, snapshot_times: np.ndarray):
        self.cell = cell
        self.series: dict[str, list] = {name: [] for name in _SERIES}
        self.snap_t: list[float] = []
        self.snaps: dict[str, list] = {"phase": [], "c_Na": [], "potential": [], "active_sites": []}
        self.snapshot_times = snapshot_times
        self.next_snapshot = 0
        # impedance spectra: one row per eis step (one frequency grid, checked by the case)
        self.spectra = SpectrumLog(SPECTRUM_SCALARS, SPECTRUM_PARTS)

    def record(self, current: float, dt: float, its: int, step: int) -> None:
        c = self.cell
        u, eta_ce, drop = c.cell_voltage(current)
        hmax, hmean, rough = c.morphology()
        n_active = int(c.site_active.sum())
        values = (c.t, current, c.voltage, u, eta_ce, drop, c.inventory(), c.deposited_charge,
                  n_active, n_active / c.s.area, hmax, hmean, rough, c.dead_fraction,
                  c.substrate_stripped, c.profile_na, c.front_concentration(), dt, its, step)
        for name, v in zip(_SERIES, values, strict=True):
            self.series[name].append(float(v))
        while (self.next_snapshot < self.snapshot_times.size
               and c.t >= self.snapshot_times[self.next_snapshot] * (1.0 - 1e-12)):
            self.snapshot()
            self.next_snapshot += 1

    def snapshot(self) -> None:
        c = self.cell
        self.snap_t.append(c.t)
        self.snaps["phase"].append(c.xi.copy())
        self.snaps["c_Na"].append(c.conc.copy())
        self.snaps["potential"].append(c.phi.copy())
        self.snaps["active_sites"].append(c.wall_active.astype(float))

    def state(self) -> dict[str, np.ndarray]:
        out = {f"series_{k}": np.asarray(v) for k, v in self.series.items()}
        out["snap_t"] = np.asarray(self.snap_t)
        for k, v in self.snaps.items():
            out[f"snap_{k}"] = np.asarray(v) if v else np.zeros((0,))
        out["next_snapshot"] = np.int64(self.next_snapshot)
        out["spectra"] = self.spectra.state()
        return out

    def restore(self, state: dict) -> None:
        self.series = {k: list(np.atleast_1d(state[f"series_{k}"])) for k in _SERIES}
        self.snap_t = list(np.atleast_1d(state["snap_t"]))
        for k in self.snaps:
            arr = state[f"snap_{k}"]
            self.snaps[k] = [a for a in arr] if arr.ndim > 1 else []
        self.next_snapshot = int(state["next_snapshot"])
        self.spectra.restore(state.get("spectra"))


#: Shortest step of the explicit stepper [s]: a step that must be cut below it to keep the
#: front and voltage limits is a ConvergenceError, never a silently committed over-limit step.
MIN_STEP = 1e-12


class Stepper:
    """The explicit time stepper as a :class:`~fastnai.runner.Cell` of the protocol runner.

    Each step: the profile terms, the voltage that carries the applied current (Newton on
    the balance; a held voltage as it is), the growth and the electrolyte; the step is cut
    when the front would move more than ``solver.front_courant`` cells or the voltage more
    than ``2 solver.max_voltage_step``; the next step grows at most ``solver.max_growth``.
    """

    def __init__(self, case, setup: Setup):
        self.s = setup
        self.cell = Cell(case, setup)
        t_total = sum(seg.duration for seg in compile_protocol(case["protocol"]))
        snap_times = np.linspace(0.0, t_total, case["output.n_snapshots"] + 1)[1:]
        self.rec = _Recorder(self.cell, snap_times)
        self.rec.snapshot()
        self.rec.record(0.0, 0.0, 0, 0)
        self.dt_max = case["solver.max_time_step"]
        self.dt0 = self.dt = case["solver.initial_time_step"]
        self.courant = case["solver.front_courant"]
        self.dv_max = case["solver.max_voltage_step"]
        self.growth = case["solver.max_growth"]
        self.max_steps = case["solver.max_steps"]
        self.mode, self.value = "current", 0.0

    @property
    def t(self) -> float:
        return self.cell.t

    def voltage(self) -> float:
        return self.cell.voltage

    def current(self) -> float:
        return self.rec.series["current_density"][-1]

    def cell_voltage(self, current: float) -> float:
        return self.cell.cell_voltage(current)[0]

    def equilibrate(self, segment) -> int:
        raise ValueError("deposition has no equilibrate step")

    def mark_step_start(self) -> None:
        """Nothing to save: deposition protocols have no CV restarts."""

    def restart_from_step_start(self) -> None:
        raise ValueError("deposition has no CV step")

    def impedance(self, segment) -> None:
        """The spectrum about the present state (left unchanged), recorded with its DC state
        (:mod:`~fastnai.models.deposition.impedance`)."""
        from . import impedance

        freqs = np.asarray(segment.frequencies, dtype=float)
        sp = impedance.spectrum(self.cell, freqs, current=self.current())
        ser = self.rec.series
        sp["drift_ratio"] = impedance.drift_ratio(
            ser["t"][-2:], ser["voltage"][-2:], ser["current_density"][-2:], sp["impedance"][0],
            float(freqs[0]), self.s.temperature)
        impedance.warn_if_drifting(sp["drift_ratio"], self.cell.t,
                                   "the cell voltage and current")
        self.rec.spectra.record(self.cell.t, segment.step, freqs, sp,
                                {"": sp["impedance"], "electrode": sp["electrode_impedance"]})

    def begin(self, segment, *, t0: float, v_start: float, target: float, resuming: bool) -> None:
        self.mode = "current" if segment.control == "current" else "voltage"
        self.value = segment.value
        self.step = segment.step
        if not resuming:
            self.dt = self.dt0

    def advance(self, segment, t_end, after_step, engine, stats) -> bool:
        cell = self.cell
        while cell.t < t_end * (1.0 - 1e-13):
            if stats.n_steps >= self.max_steps:
                raise ConvergenceError(f"deposition: solver.max_steps = {self.max_steps} reached "
                                       f"at t = {cell.t:.6g} s", [])
            self._step(min(self.dt, t_end - cell.t), stats)
            if cell.t < t_end * (1.0 - 1e-13):
                after_step(None)
        return False

    def _step(self, h: float, stats) -> None:
        cell, s = self.cell, self.s
        limit_v = self.mode == "current" and s.capacitance > 0.0  # V is a state only with C_dl
        rejected = []
        for _attempt in range(60):
            v, its, vmax = cell.advance(h, self.mode, self.value)
            stats.n_newton_iterations += its
            too_fast = not vmax * h <= 2.0 * self.courant * s.dx  # NaN speeds count as too fast
            too_big = limit_v and not abs(v - cell.voltage) <= 2.0 * self.dv_max
            if not (too_fast or too_big):
                break
            rejected.append((cell.t, h, vmax * h / s.dx, abs(v - cell.voltage), its))
            if h <= MIN_STEP:
                raise self._step_error(f"the step was cut to {h:.3g} s", rejected)
            stats.n_rejected_error += 1
            shrink = 0.5
            if too_fast:
                shrink = min(shrink, self.courant * s.dx / (vmax * h))
            if too_big:
                shrink = min(shrink, self.dv_max / abs(v - cell.voltage))
            h = max(h * max(shrink, 0.05), MIN_STEP)
        else:
            raise self._step_error("60 attempts were rejected", rejected)
        dv = abs(v - cell.voltage)
        current = cell.commit(h, v)
        cell.t += h
        cell.step_index += 1
        stats.n_steps += 1
        cell.activate(h)
        cell.update_mask()
        cell.v_max = vmax
        self.rec.record(current, h, its, self.step)
        nxt = min(self.dt_max, self.growth * h)  # next step: front motion, voltage change, growth
        if vmax > 0.0:
            nxt = min(nxt, self.courant * s.dx / vmax)
        if dv > 0.0 and limit_v:
            nxt = min(nxt, h * self.dv_max / dv)
        self.dt = max(nxt, 1e-12)

    def _step_error(self, what: str, rejected: list) -> ConvergenceError:
        return ConvergenceError(
            f"deposition: {what} at t = {self.cell.t:.9g} s and the front still moves more than "
            f"2 solver.front_courant = {2.0 * self.courant:g} cells or the voltage more than "
            f"2 solver.max_voltage_step = {2.0 * self.dv_max:g} V in a step; lower the current "
            "or refine mesh.dx", rejected,
            columns=("t [s]", "dt [s]", "front [cells]", "|dV| [V]", "Newton its"))

    def state(self) -> dict:
        return {"fields": self.cell.checkpoint_state(), "recorder": self.rec.state(),
                "dt": self.dt}

    def restore(self, state) -> None:
        self.cell.restore_state(state["fields"])
        self.rec.restore(state["recorder"])
        self.dt = float(state["dt"])


def simulate(case, *, lifecycle: Lifecycle | None = None, progress=None) -> Result:
    """Run the protocol through :func:`fastnai.runner.run_protocol`; the raw :class:`Result`.

    Parameters
    ----------
    lifecycle
        Signals, checkpoints and resume (:class:`~fastnai.lifecycle.Lifecycle`); default none.
    progress
        Without ``lifecycle``: None a bar on a terminal / log lines in batch, False silent.
    """
    start = time.perf_counter()
    life = Lifecycle(case, progress=progress) if lifecycle is None else lifecycle
    setup = build(case)
    stepper = Stepper(case, setup)
    stats = run_protocol(stepper, compile_protocol(case["protocol"]), life)
    cell, rec = stepper.cell, stepper.rec
    if not rec.snap_t or rec.snap_t[-1] < cell.t:
        rec.snapshot()
    extra = {"n_salt_iterations": cell.salt.n_iterations,
             "n_potential_iterations": cell.potential.n_iterations,
             "n_preconditioner_builds": cell.salt.n_builds + cell.potential.n_builds}
    series = {k: np.asarray(v) for k, v in rec.series.items()}
    snaps = {k: np.asarray(v) for k, v in rec.snaps.items()}
    return Result(setup, series, np.asarray(rec.snap_t), snaps, cell.site_time.copy(),
                  {**stats.as_attrs(), **{f"solver_{k}": v for k, v in extra.items()}},
                  time.perf_counter() - start, rec.spectra.arrays())
