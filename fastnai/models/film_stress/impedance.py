"""Small-signal impedance of the film in diffusion mode about a state (SPEC 3.6).

The film's own discrete equations (Na diffusion through the graded film in the reference frame,
the stress-coupled flux and the Butler-Volmer surface of
:mod:`fastnai._kernels.film_diffusion`, with the laminate's force and moment balance when the
coupling is on) are linearised about the state and solved at every frequency in complex
arithmetic by :mod:`fastnai._kernels.film_impedance`; the state is not changed.

What couples: theta of every cell; the hydrostatic stress sigma_h of each cell through its own
theta (eigenstrain, modulus, the point heights) and through the plate strain (eps0, kappa) that
force and moment balance fix from the whole profile; sigma_h enters the flux
(D c (1 - theta) Omega / RT d sigma_h / dz) and the surface equilibrium potential
U(theta) + Omega sigma_h / F of the Butler-Volmer current. The plastic strain is frozen (the
elastic tangent): a point in compressive flow unloads elastically on the anodic half period and,
after the first cathodic one, lies inside its yield surface, so the periodic small-signal
response is elastic. Without the coupling (``model.stress_coupling = false``, or elastic,
or a constrained substrate) sigma_h does not enter and the spectrum is diffusion plus
Butler-Volmer alone.

Consequence of the elastic tangent: dsigma_h/dtheta ~ -(2/3) M beta / (3 (1 + beta theta))
(M ~ 55 GPa) adds Omega/F dsigma_h/dtheta ~ -3.5 V to dU/dtheta = -V_t/(theta (1 - theta))
(-0.12 V at theta = 0.3), so the small-signal intercalation capacitance of a coupled film is
tens of times below the stress-free one (2.5e3 against 7.4e4 F m-2 for 600 nm at theta = 0.3)
and below what a slow, plastically flowing sodiation sees; the chemical diffusion time shortens
by the same factor while R_D = (-dU/dc) L / (F D_chem) keeps its stress-free value (the
thermodynamic factor cancels).

Discretisation: the Butler-Volmer current sees the top cell's theta, at its centre h/2 below
the surface (:mod:`fastnai._kernels.film_diffusion`), a series error of R_D h / (2 L) in Re Z,
first order in the cell size (6e-3 of |Z| on 60 cells in the closed-form check, 4e-4 on 1000).

Z is per m2 of film (the electrolyte face), anodic current positive, so Re Z > 0 for a
resistor and Im Z < 0 for a capacitor:

    Z(f) = 1 / (i w C_dl + (dI/dV)_Faradaic(f)),

with C_dl = ``interface.double_layer_capacitance`` (default 0) across the surface, in parallel
with the reaction; it enters the impedance only, not the transient. film_stress has no series
resistance, so none enters Z (add R_s of the cell to Re Z by hand).

How steady the state is (``spectrum_drift_ratio``): the largest dtheta/dt of the state's own
rows, over the rate at which a signal of one thermal voltage at the lowest frequency moves it,
2 pi f_min max |dtheta/dV| V_t; near or above 0.1 the spectrum describes a moving state and a
warning says so.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import constants

from ..._kernels import film_diffusion as kfd
from ..._kernels import film_impedance as kfi
from ...protocol_steps import DRIFT_WARNING, warn_if_drifting  # noqa: F401 (re-exported)


class Linearisation:
    """dK/dtheta (tridiagonal plus rank 2), the mass, -dK/dV and the residual of a film state.

    ``cell`` is the :class:`~fastnai.models.film_stress.cell.FilmCell` whose committed plastic
    history, plate strain and sigma_h describe ``theta``; none of them is changed.
    """

    def __init__(self, cell, theta: np.ndarray, voltage: float):
        t = cell.tr
        n = theta.size
        self.theta = np.array(theta, dtype=float)
        self.voltage = float(voltage)
        self.mass = t.h * t.c_max
        self.lower, self.diag, self.upper = np.zeros(n), np.zeros(n), np.zeros(n)
        self.res, g_face = np.zeros(n), np.zeros(max(n - 1, 1))
        self.rank_u, self.rank_v = np.zeros((2, n)), np.zeros((2, n))
        sc = cell._scalars(cell.control)
        sc[kfd.S_CONTROL], sc[kfd.S_VALUE] = 1.0, self.voltage
        self.sc = sc
        sigma_h = cell.sigma_h.copy()
        self.current = float(kfd.assemble(self.theta, np.zeros(n), 0.0, 1.0, t.h, t.c_max, t.d_cell,
                                          t.beta, sigma_h, sc, self.lower, self.diag, self.upper,
                                          self.res, g_face))
        didv, didsigma = kfi.butler_volmer_partials(self.voltage, self.theta[-1], sigma_h[-1], sc)
        self.rhs = np.zeros(n)
        self.rhs[-1] = -didv / kfd.FARADAY
        self.sigma_mismatch = 0.0
        if cell.coupled:
            self._couple(cell, g_face, didsigma, sigma_h)

    def _couple(self, cell, g_face, didsigma, sigma_h) -> None:
        s = cell.stack
        n = self.theta.size
        form, frame, _ = cell._mech
        local, te, tk, sh = (np.empty(n) for _ in range(4))
        sens = np.empty((2, n))
        eps0, kappa = (float(v) for v in cell.strain_state)
        ka, kb, kd = kfi.mechanics(self.theta, s.z_faces, s.n_substrate, s.beta, s.modulus0,
                                   s.modulus1, s.hardening, form, frame, cell.history, eps0, kappa,
                                   local, te, tk, sh, sens)
        # the state's sigma_h is the returned stress of the committed step; frozen plastic strain
        # reproduces it (to round-off) when the history was committed at this theta
        scale = max(float(np.max(np.abs(sigma_h))), 1.0)
        self.sigma_mismatch = float(np.max(np.abs(sh - sigma_h))) / scale
        kfi.condense(g_face, didsigma, local, te, tk, sens, ka, kb, kd, self.diag, self.lower,
                     self.upper, self.rank_u, self.rank_v)

    def admittance(self, omegas: np.ndarray, cdl: float) -> np.ndarray:
        """dI/dV per film area at the angular frequencies (complex) [A m-2 V-1]."""
        out = np.empty(omegas.size, dtype=np.complex128)
        kfi.admittance(self.lower, self.diag, self.upper, self.mass, self.rank_u, self.rank_v,
                       self.rhs, float(cdl), np.ascontiguousarray(omegas, dtype=float), out)
        return out

    def response(self, omega: float) -> np.ndarray:
        """dtheta/dV (complex, per cell) at one angular frequency [V-1]."""
        out = np.empty(self.theta.size, dtype=np.complex128)
        kfi.response(self.lower, self.diag, self.upper, self.mass, self.rank_u, self.rank_v,
                     self.rhs, float(omega), out)
        return out

    def drift_ratio(self, omega_min: float) -> float:
        """max |dtheta/dt| of the state over omega_min max |dtheta/dV| V_t."""
        rate = float(np.max(np.abs(self.res) / self.mass))  # M dtheta/dt = -K
        moved = float(np.max(np.abs(self.response(omega_min))))
        signal = omega_min * moved * self.sc[kfd.S_VT]
        return rate / signal if signal > 0.0 else math.inf


def spectrum(cell, theta: np.ndarray, voltage: float, freqs: np.ndarray, *,
             double_layer_capacitance: float) -> dict:
    """The impedance spectrum of the film ``cell`` about ``theta`` at ``voltage``.

    Returns
    -------
    dict
        ``impedance`` (complex, ohm m2 of film), ``voltage`` [V], ``theta`` (film mean),
        ``current_density`` (DC, A m-2, anodic positive) and ``drift_ratio`` (see the module).
    """
    lin = Linearisation(cell, theta, voltage)
    omegas = 2.0 * math.pi * np.asarray(freqs, dtype=float)
    z = 1.0 / lin.admittance(omegas, double_layer_capacitance)
    return {"impedance": z, "voltage": float(voltage), "theta": float(np.mean(theta)),
            "current_density": lin.current, "drift_ratio": lin.drift_ratio(float(omegas[0]))}



# ---------------------------------------------------------------------------------------------
# graded vs solid-solution film at several states of charge


def eis_protocol(*, initial_soc: float, socs, c_rate: float, rest_duration: float,
                 frequency_min: float, frequency_max: float, points_per_decade: int) -> list[dict]:
    """Sodiation at ``c_rate`` to each of ``socs`` (film-mean theta, ascending from
    ``initial_soc``), each followed by a rest and an eis step.

    >>> p = eis_protocol(initial_soc=0.0, socs=(0.1, 0.25), c_rate=0.5, rest_duration=60.0,
    ...                  frequency_min=1e-3, frequency_max=1e3, points_per_decade=5)
    >>> [s["step"] for s in p][:3], [round(s["max_duration"], 9) for s in p[::3]]
    (['constant_current', 'rest', 'eis'], [720.0, 1080.0])
    """
    protocol, now = [], initial_soc
    eis = {"step": "eis", "frequency_min": frequency_min, "frequency_max": frequency_max,
           "points_per_decade": points_per_decade}
    for soc in socs:
        if not soc > now:
            raise ValueError(f"socs must ascend from initial.soc = {initial_soc:g}, got {list(socs)}")
        protocol += [{"step": "constant_current", "c_rate": c_rate, "cutoff_voltage": 0.0,
                      "max_duration": (soc - now) * 3600.0 / c_rate},
                     {"step": "rest", "duration": rest_duration}, dict(eis)]
        now = soc
    return protocol


def spectra_by_soc(case, *, socs=(0.2, 0.35, 0.5), c_rate: float = 0.1,
                   rest_diffusion_times: float = 10.0, double_layer_capacitance: float = 0.2,
                   frequency_min: float = 1e-5, frequency_max: float = 1e4,
                   points_per_decade: int = 6, max_fit_residual: float = 0.2) -> list[dict]:
    """Impedance of one film in diffusion mode after partial sodiation to each of ``socs``.

    ``case`` (a film_stress case, path or dict; quasi-static cases are switched to
    ``model.sodiation = "diffusion"``) gets the protocol of :func:`eis_protocol`: sodiation at
    ``c_rate``, a rest of ``rest_diffusion_times`` L^2 / D_min (the slower end member's
    diffusivity), an eis step; a double layer of ``double_layer_capacitance`` [F m-2] where
    the case has none (without one a Randles fit cannot split R_ct from the diffusion). The
    fit may miss by up to ``max_fit_residual`` (relative rms) and reports its misfit: with the
    stress coupling the rested film holds Na graded towards its top (less compressed) and its
    diffusion is not one finite-space Warburg; above soc ~ 0.6 the misfit passes 5 %.

    Returns
    -------
    list of dict, one per state of charge
        ``soc`` (the film-mean theta of the spectrum's state), ``surface_theta``, ``voltage``
        [V], ``charge_transfer_resistance`` (R1 of the Randles fit R0-p(C1,R1-Wo1) by
        :func:`fastnai.spectra.charge_transfer_resistance`), its ``_stderr`` and the fit's
        ``randles_residual``; ``charge_transfer_resistance_model`` (RT / (F i0) at the surface
        theta: the linearised Butler-Volmer value, any alpha); ``low_frequency_resistance``
        (Re Z at frequency_min) and ``diffusion_resistance`` (that less the model R_ct; R_D / 3
        of a finite-space Warburg); ``warburg_resistance`` and ``warburg_time`` (the fit's Wo1:
        R_D and L^2 / D [s]); ``drift_ratio`` and ``kramers_kronig_residual``. Resistances in
        ohm m2 of film.
    """
    import tomllib

    from ...case import load_case
    from .output import run

    case = case if hasattr(case, "to_toml") else load_case(case)
    raw = tomllib.loads(case.to_toml())
    d_min = min(case["bismuth.diffusivity"], case["antimony.diffusivity"])
    raw["protocol"] = eis_protocol(
        initial_soc=case["initial.soc"], socs=socs, c_rate=c_rate,
        rest_duration=rest_diffusion_times * case["film.thickness"] ** 2 / d_min,
        frequency_min=frequency_min, frequency_max=frequency_max,
        points_per_decade=points_per_decade)
    over = {"model.sodiation": "diffusion"}
    if case["interface.double_layer_capacitance"] == 0.0:
        over["interface.double_layer_capacitance"] = double_layer_capacitance
    case = load_case(raw, over)
    ds = run(case)
    if "spectrum" not in ds.dims:
        ds = ds.expand_dims("spectrum")
    return [_spectrum_numbers(case, ds.isel(spectrum=k), max_fit_residual)
            for k in range(ds.sizes["spectrum"])]


def _spectrum_numbers(case, one, max_fit_residual: float) -> dict:
    """The numbers :func:`spectra_by_soc` reports for one spectrum of a film Dataset."""
    from ... import spectra as sp

    f = one.frequency.values
    z = one.impedance_real.values + 1j * one.impedance_imag.values
    rct = sp.charge_transfer_resistance(f, z, max_residual=max_fit_residual)
    fit = rct.details["fit"]
    state = int(np.searchsorted(one.t.values, float(one.spectrum_time), side="right")) - 1
    theta_s = float(one.theta.values[state, -1])
    vt = constants.R * case["model.temperature"] / kfd.FARADAY
    rct_model = vt / (case["interface.exchange_current"] * 2.0 * math.sqrt(theta_s * (1.0 - theta_s)))
    return {"soc": float(one.spectrum_theta), "surface_theta": theta_s,
            "voltage": float(one.spectrum_voltage),
            "charge_transfer_resistance": rct.value, "charge_transfer_resistance_stderr": rct.stderr,
            "randles_residual": fit.residual, "charge_transfer_resistance_model": rct_model,
            "low_frequency_resistance": float(z[0].real),
            "diffusion_resistance": float(z[0].real) - rct_model,
            "warburg_resistance": fit.parameters["Wo1_0"].value,
            "warburg_time": fit.parameters["Wo1_1"].value,
            "drift_ratio": float(one.spectrum_drift_ratio),
            "kramers_kronig_residual": float(sp.kramers_kronig(f, z)["max_residual"])}


def graded_vs_solid_solution(graded, solid_solution, **kwargs) -> dict[str, list[dict]]:
    """R_ct and the low-frequency diffusion resistance of a graded and a solid-solution film at
    the same states of charge (:func:`spectra_by_soc`, keyword arguments passed on).

    ``graded`` and ``solid_solution`` are film_stress cases (or paths, e.g.
    ``cases/film_stress_bisb_graded.toml`` and ``cases/film_stress_bisb_solid_solution.toml``,
    run in diffusion mode). Wang et al. (Adv. Sci. 9, 2201209 (2022), doi:10.1002/advs.202201209,
    Fig. S8) measure an R_ct of the solid solution that grows with cycling and stays above the
    graded film's, and tie it to pores and fractures that let the electrolyte in. This model has
    neither pores nor fractures (nor SEI, nor cycling damage): the film is dense, its
    electrolyte area fixed, i0 a function of the surface theta only. The two films differ here
    through the surface composition (U0, the diffusivity) and the stress-coupled distribution of
    Na, which moves the surface theta and so i0; a difference the paper attributes to damage is
    outside what these numbers can show.
    """
    return {"graded": spectra_by_soc(graded, **kwargs),
            "solid_solution": spectra_by_soc(solid_solution, **kwargs)}
