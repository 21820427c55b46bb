"""Set-up of deposition: a validated case turned into arrays and constants."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._kernels import counter_rng
from ..._kernels import electrolyte as kel
from ..._kernels import phase_field as kpf
from ...protocol import compile_protocol
from .keys import _REF_CURRENT, KB, N_A, E, F, H, R

PSI_MIN = 1e-4  # electrolyte fraction floor inside the metal (diffuse-domain regularisation)
C_FLOOR = 1e-9  # concentration floor (relative to c_ref) in logarithms and the BV factor
# reacting cells reach _TAIL interface widths beyond live metal, where the profile's tail has
# fallen to exp(-_TAIL) ~ 1e-5 (the growth it leaves out)
_TAIL = 11.5


# ---------------------------------------------------------------------------------------------
# nucleation physics


def wetting_factor(theta: float) -> float:
    """Heterogeneous-nucleation factor f(theta) = (2 + cos)(1 - cos)^2 / 4 (cap on a plane)."""
    c = math.cos(theta)
    return (2.0 + c) * (1.0 - c) ** 2 / 4.0


def homogeneous_barrier_coefficient(surface_energy: float, molar_volume: float) -> float:
    """``16 pi gamma^3 Omega^2 / (3 e^2)`` [J V^2]: dG*_hom = this / eta^2 (one e per atom)."""
    omega = molar_volume / N_A
    return 16.0 * math.pi * surface_energy**3 * omega**2 / (3.0 * E**2)


def critical_radius(surface_energy: float, molar_volume: float, eta: float) -> float:
    """Critical nucleus radius ``2 gamma Omega / (e |eta|)`` [m]."""
    return 2.0 * surface_energy * molar_volume / N_A / (E * abs(eta))


def site_prefactor(site_width: float, molar_volume: float, temperature: float,
                   attempt_frequency: float | None = None) -> float:
    """``A = N_site nu0``: Na surface atoms of a ``site_width^2`` patch times ``kT/h`` [s-1]."""
    atom_area = (molar_volume / N_A) ** (2.0 / 3.0)
    nu0 = attempt_frequency if attempt_frequency is not None else KB * temperature / H
    return site_width**2 / atom_area * nu0


def calibrated_contact_angle(*, eta_onset: float, surface_energy: float, molar_volume: float,
                             temperature: float, prefactor: float, capacitance: float,
                             current: float = _REF_CURRENT) -> float:
    """Contact angle [rad] at which the first site activates at ``eta_onset`` (calibration).

    The double layer charges at ``current`` [A m-2], so the electrode reaches ``eta_onset`` after
    ``t = C_dl eta_onset / current``; one expected activation by then needs the barrier
    ``f(theta) dG*_hom(eta_onset) = kT ln(A t)``. Solved for theta by bisection (f rises
    monotonically from 0 at theta = 0 to 1 at 180 degrees).

    Examples
    --------
    >>> a = site_prefactor(0.4e-6, 23.78e-6, 298.15)
    >>> th = calibrated_contact_angle(eta_onset=0.068, surface_energy=0.2, molar_volume=23.78e-6,
    ...                               temperature=298.15, prefactor=a, capacitance=0.1)
    >>> round(math.degrees(th), 1)
    50.4
    """
    t_onset = capacitance * eta_onset / current if capacitance > 0.0 else 1.0
    barrier_kt = math.log(max(prefactor * t_onset, 1.0))
    ghom = homogeneous_barrier_coefficient(surface_energy, molar_volume) / eta_onset**2
    target = barrier_kt * KB * temperature / ghom
    if target >= 1.0:
        return math.pi
    lo, hi = 0.0, math.pi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if wetting_factor(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def adsorption_contact_angle(adsorption_energy_ev: float, surface_energy: float,
                             molar_volume: float) -> float:
    """Young-Dupre contact angle [rad] from a bond-counting adhesion estimate.

    The work of adhesion is the adsorption energy per atom area, ``W = |E_ads| / Omega^(2/3)``,
    and ``cos theta = W / gamma - 1``. With the DFT energies of the VN paper (-1.83 eV on VN,
    -0.86 eV on Na) W is 1.2-2.5 J m-2, far above ``2 gamma``: complete wetting (theta = 0), so
    this estimate predicts no nucleation barrier on either substrate.
    """
    w = abs(adsorption_energy_ev) * E / (molar_volume / N_A) ** (2.0 / 3.0)
    return math.acos(max(-1.0, min(1.0, w / surface_energy - 1.0)))


def exchange_current(case, temperature: float | None = None) -> float:
    """j0 at ``temperature`` (default the case's), Arrhenius from the reference temperature."""
    t = case["electrode.temperature"] if temperature is None else temperature
    return case["substrate.exchange_current_density"] * math.exp(
        -case["substrate.activation_energy"] / R * (1.0 / t - 1.0 / case["substrate.reference_temperature"]))


def bv_current(eta, j0: float, alpha_a: float, temperature: float, conc_ratio=1.0):
    """Anodic-positive Butler-Volmer current [A m-2] (concentration-dependent, Newman 8.8)."""
    f = F / (R * temperature)
    return j0 * np.power(conc_ratio, alpha_a) * (np.exp(alpha_a * f * np.asarray(eta))
                                                 - np.exp(-(1.0 - alpha_a) * f * np.asarray(eta)))


def bv_overpotential(j: float, j0: float, alpha_a: float, temperature: float,
                     conc_ratio: float = 1.0) -> float:
    """eta [V] at which :func:`bv_current` equals ``j`` (Newton on a monotone function)."""
    f = F / (R * temperature)
    k = j0 * conc_ratio**alpha_a
    eta = math.asinh(j / (2.0 * k)) * 2.0 / f  # exact for alpha_a = 1/2
    for _ in range(100):
        ea, ec = math.exp(alpha_a * f * eta), math.exp(-(1.0 - alpha_a) * f * eta)
        g = k * (ea - ec) - j
        dg = k * f * (alpha_a * ea + (1.0 - alpha_a) * ec)
        step = g / dg
        eta -= step
        if abs(step) < 1e-15:
            break
    return eta


# ---------------------------------------------------------------------------------------------
# set-up


@dataclass
class Setup:
    """Derived constants of a case (SI)."""

    nx: int
    ny: int
    nz: int
    dx: float
    lam: float
    width: float
    area: float
    lat: np.ndarray
    temperature: float
    f_rt: float
    j0: float
    alpha_a: float
    c_ref: float
    c_s: float
    speed: float
    mobility: float
    formulation: int
    gt_coeff: float
    anisotropy: float
    noise: float
    seed: int
    cos_theta: float
    contact_angle: float
    f_theta: float
    barrier_coeff: float
    prefactor: float
    site_ptr: np.ndarray
    site_cells: np.ndarray
    site_position: np.ndarray
    site_position_depth: np.ndarray
    capacitance: float
    diffusivity: float
    conductivity: float
    t_plus: float
    beta: float
    sep_length: float
    sep_nodes: int
    sep_porosity: float
    dilation: int
    dead_reach: int


def _sites(case, nx: int, nz: int, dx: float):
    """Site patches on the substrate layer, periodic: ``(site_ptr, site_cells, x, z)``.

    2D: ``round(Lx / spacing)`` patches of ``w`` cells along x. 3D: ``w x w`` patches,
    ``round(Lx / spacing) x round(Lz / spacing)`` of them on a jittered grid (``regular``) or
    as many placed uniformly (``random``). ``site_cells`` are layer indices ``k nx + i``;
    positions are keyed on (seed, step 0 for x, step 1 for z, site).
    """
    spacing = case["substrate.site_spacing"]
    w_cells = max(2, int(round(case["substrate.site_width"] / dx)))
    lx, lz = nx * dx, nz * dx
    mx = max(1, int(round(lx / spacing)))
    mz = max(1, int(round(lz / spacing))) if nz > 1 else 1
    m = mx * mz
    seed = case["nucleation.seed"]
    ux = counter_rng.uniform_array(seed, counter_rng.STREAM_SITE_POSITIONS, 0, m)
    uz = counter_rng.uniform_array(seed, counter_rng.STREAM_SITE_POSITIONS, 1, m)
    grid = np.arange(m)
    if case["substrate.site_layout"] == "random":
        cx, cz = ux * lx, uz * lz
        if nz == 1:
            cx = np.sort(cx)
    else:
        cx = (grid % mx + 0.5) * (lx / mx) + 0.25 * spacing * (2.0 * ux - 1.0)
        cz = (grid // mx + 0.5) * (lz / mz) + 0.25 * spacing * (2.0 * uz - 1.0)
    offsets = np.arange(w_cells)
    sx = np.floor(cx / dx - 0.5 * w_cells).astype(np.int64)
    if nz == 1:
        cells = (sx[:, None] + offsets[None, :]) % nx
        cz = np.zeros(0)
    else:
        sz = np.floor(cz / dx - 0.5 * w_cells).astype(np.int64)
        ix = (sx[:, None, None] + offsets[None, None, :]) % nx
        iz = (sz[:, None, None] + offsets[None, :, None]) % nz
        cells = (iz * nx + ix).reshape(m, -1)
        cz = np.mod(cz, lz)
    ptr = np.arange(m + 1, dtype=np.int64) * cells.shape[1]
    return ptr, cells.ravel().astype(np.int64), np.mod(cx, lx), cz


def build(case) -> Setup:
    """Derived constants, sites and numerical parameters of a case."""
    nx, ny, nz, dx = case["mesh.nx"], case["mesh.ny"], case["mesh.nz"], case["mesh.dx"]
    lam = case["phase_field.interface_cells"] * dx
    temp = case["electrode.temperature"]
    vm = case["phase_field.molar_volume"]
    gamma = case["phase_field.surface_energy"]
    j0 = exchange_current(case)
    alpha = case["substrate.transfer_coefficient"]
    segs = compile_protocol(case["protocol"])
    j_ref = max([abs(sg.value) for sg in segs if sg.control == "current"] + [j0])
    for sg in segs:
        if sg.control == "voltage":
            j_ref = max(j_ref, abs(float(bv_current(sg.value, j0, alpha, temp))))
    if case["phase_field.formulation"] == "profile-preserving":
        mobility = lam * (vm / F) * j_ref / case["phase_field.profile_peclet"]
        formulation = kpf.PROFILE_PRESERVING
    else:
        mobility = case["phase_field.chen_interface_mobility"] * 6.0 * gamma * lam
        formulation = kpf.CHEN2015
    cap = case["electrode.double_layer_capacitance"]
    if case["nucleation.mode"] == "sites":
        width_cells = max(2, int(round(case["substrate.site_width"] / dx)))
        prefactor = site_prefactor(width_cells * dx, vm, temp, case["nucleation.attempt_frequency"])
        model = case["substrate.contact_angle_model"]
        if model == "given":
            theta = math.radians(case["substrate.contact_angle"])
        elif model == "adsorption":
            theta = adsorption_contact_angle(case["substrate.adsorption_energy"], gamma, vm)
        else:
            theta = calibrated_contact_angle(
                eta_onset=case["substrate.nucleation_overpotential"], surface_energy=gamma,
                molar_volume=vm, temperature=case["substrate.reference_temperature"],
                prefactor=prefactor, capacitance=cap if cap > 0.0 else 0.1)
        ptr, cells, pos, pos_z = _sites(case, nx, nz, dx)
    else:
        theta = math.pi / 2.0
        prefactor = 0.0
        ptr, cells, pos, pos_z = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0), \
            np.zeros(0)
    t_plus = case["electrolyte.transference_number"]
    return Setup(
        nx=nx, ny=ny, nz=nz, dx=dx, lam=lam, width=nz * nx * dx,
        area=nx * dx * (nz * dx if nz > 1 else 1.0), lat=kel.lateral_neighbours(nx, nz),
        temperature=temp, f_rt=F / (R * temp),
        j0=j0, alpha_a=alpha, c_ref=case["electrolyte.concentration"], c_s=1.0 / vm,
        speed=vm / F, mobility=mobility, formulation=formulation,
        gt_coeff=gamma * vm / F if case["phase_field.gibbs_thomson"] else 0.0,
        anisotropy=case["phase_field.anisotropy"], noise=case["phase_field.noise"],
        seed=case["nucleation.seed"], cos_theta=math.cos(theta), contact_angle=theta,
        f_theta=wetting_factor(theta), barrier_coeff=homogeneous_barrier_coefficient(gamma, vm),
        prefactor=prefactor, site_ptr=ptr, site_cells=cells, site_position=pos,
        site_position_depth=pos_z,
        capacitance=cap, diffusivity=case["electrolyte.diffusivity"],
        conductivity=case["electrolyte.conductivity"], t_plus=t_plus,
        beta=2.0 * (1.0 - t_plus) / (F / (R * temp)),
        sep_length=case["separator.thickness"], sep_nodes=case["separator.n_nodes"],
        sep_porosity=case["separator.porosity"],
        dilation=int(math.ceil(_TAIL * lam / dx)), dead_reach=int(math.ceil(2.0 * lam / dx)))
