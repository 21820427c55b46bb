"""Impedance spectra as experimentalists analyse them: circuit fits, Kramers-Kronig, Warburg, readers.

Pure functions on arrays in SI units (SPEC 3.5, 3.6), for simulated and measured spectra alike.
Frequencies are in Hz (omega = 2 pi f), impedances complex in ohm, or ohm m2 for an area-specific
spectrum (a fastnai result, or a measured one read with ``area``); any consistent unit works.

Sign convention: ``impedance`` arrays hold the complex Z itself, so Im Z < 0 for capacitive
behaviour (a capacitor is Z = 1/(i omega C)). Instrument exports hold -Im Z instead (EC-Lab
``-Im(Z)/Ohm``, the ``-Z''`` of most Nyquist plots): :func:`read_mpt` and :func:`read_spectrum_csv`
convert them with Z = Re - i (-Im Z), and a fastnai Dataset's ``impedance_imag`` is Im Z already.

Equivalent circuits are fitted by impedance.py (Murbach et al., J. Open Source Softw. 5, 2349
(2020), doi:10.21105/joss.02349; MIT licence), an optional dependency: ``pip install fastnai[fit]``.
Its circuit strings join elements in series with ``-`` and in parallel with ``p(a,b)``, each
element named by its type and a number (``R0``, ``CPE1``). Element impedances (omega = 2 pi f):

- ``R``: Z = R  [ohm]
- ``C``: Z = 1 / (i omega C)  [F]
- ``L``: Z = i omega L  [H]
- ``CPE``: Z = 1 / (Q (i omega)^alpha), parameters ``CPE_0`` = Q [ohm-1 s^alpha],
  ``CPE_1`` = alpha [-] (bounded to [0, 1])
- ``W`` (semi-infinite Warburg): Z = A_W (1 - i) / sqrt(omega), A_W = sigma [ohm s-1/2]
- ``Wo`` (finite space, reflecting or "open" end): Z = Z0 coth(sqrt(i omega tau)) / sqrt(i omega tau),
  ``Wo_0`` = Z0 [ohm], ``Wo_1`` = tau = L^2/D [s]; capacitive at low frequency
  (Z -> Z0/3 + Z0/(i omega tau)). The ideal-lattice-gas slab of SPEC 3.6 is this element with
  Z0 = R_D = |dU/dc| L / (F D).
- ``Ws`` (finite length, transmissive or "short" end): Z = Z0 tanh(sqrt(i omega tau)) / sqrt(i omega tau),
  same parameters; resistive at low frequency (Z -> Z0).
- also ``La``, ``G``, ``Gs``, ``K``, ``Zarc``, ``TLMQ``, ``T``: see ``impedance.models.circuits.elements``.

Both finite Warburg elements tend to Z0 / sqrt(i omega tau) = sigma (1 - i) / sqrt(omega) with
sigma = Z0 / sqrt(2 tau) for omega tau >> 1. The units impedance.py attaches to the parameters are
those of Z in ohm; for Z in ohm m2 read ohm as ohm m2, F as F m-2 and so on.

Sources:
- linear Kramers-Kronig test: M. Schoenleber et al., Electrochim. Acta 131, 20 (2014),
  doi:10.1016/j.electacta.2014.01.034.
- Warburg coefficient and diffusivity: C. Ho, I. D. Raistrick and R. A. Huggins, J. Electrochem.
  Soc. 127, 343 (1980), doi:10.1149/1.2129668, Eqs. 20-23; A. J. Bard and L. R. Faulkner,
  Electrochemical Methods, 2nd ed. (Wiley, 2001), section 10.3.
- R_ct Arrhenius analysis: Xia et al., Nanoscale Horiz. 7, 899 (2022), doi:10.1039/d2nh00152g.
- EC-Lab text export (``.mpt``): BioLogic EC-Lab software manual, "Export as text".
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning

from .analysis import F, Fit, _line_fit, activation_energy, read_csv
from .errors import FastnaiError

__all__ = [
    "CircuitFit", "Spectrum", "fit_circuit", "kramers_kronig", "warburg_coefficient",
    "warburg_diffusivity", "charge_transfer_resistance", "rct_activation_energy",
    "read_spectrum_csv", "read_mpt", "read_spectrum", "spectrum_from_dataset",
]

#: The Randles circuit of :func:`charge_transfer_resistance`: R0 in series with C_dl (or a CPE)
#: parallel to R_ct and a finite-space Warburg element.
RANDLES = "R0-p(C1,R1-Wo1)"
RANDLES_CPE = "R0-p(CPE1,R1-Wo1)"


def _impedance_py():
    """The two impedance.py entry points fastnai uses, or a FastnaiError saying how to get them."""
    try:
        from impedance.models.circuits import CustomCircuit
        from impedance.validation import linKK
    except ImportError as exc:
        raise FastnaiError("circuit fitting and the Kramers-Kronig test need impedance.py, which is "
                           f"not installed ({exc}); install it with: pip install fastnai[fit]") from None
    return CustomCircuit, linKK


def _plain_repr():
    """Print numpy floats as plain numbers while impedance.py runs.

    impedance.py builds Python source from the parameter values and ``eval``s it; numpy >= 2
    prints ``np.float64(1.0)`` there, which that source cannot resolve (impedance.py issue
    #296), so its 1.25 printing is restored for the duration of the call.
    """
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np.printoptions(legacy="1.25")
    return contextlib.nullcontext()


def _spectrum_arrays(frequency, impedance) -> tuple[np.ndarray, np.ndarray]:
    """Validated 1-D float frequency [Hz] and complex impedance arrays of one length."""
    f = np.asarray(frequency, dtype=float)
    z = np.asarray(impedance, dtype=complex)
    if f.ndim != 1 or f.shape != z.shape:
        raise FastnaiError(f"frequency and impedance must be 1-D arrays of one length, got shapes "
                           f"{f.shape} and {z.shape}")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(z))):
        raise FastnaiError("the spectrum contains NaN or infinite values")
    if np.any(f <= 0.0):
        raise FastnaiError("frequencies must be positive [Hz]")
    if np.any(z == 0.0):
        raise FastnaiError("the spectrum contains Z = 0, where relative residuals are undefined")
    return f, z


@dataclass(frozen=True, eq=False)
class CircuitFit:
    """An equivalent circuit fitted to a spectrum by :func:`fit_circuit`.

    Attributes
    ----------
    circuit
        impedance.py circuit string, e.g. ``"R0-p(C1,R1-Wo1)"``.
    names, units
        Names of the fitted parameters (``R0``, ``Wo1_0`` ...) and their units as impedance.py
        states them for Z in ohm.
    values, stderr
        Fitted values and their standard errors (square roots of the diagonal of the covariance
        scipy's ``curve_fit`` returns, which impedance.py passes on as ``conf_``).
    residual
        Relative rms misfit sqrt(mean(|Z_fit - Z|^2 / |Z|^2)) [-].
    constants
        Parameters held fixed, name -> value.
    """

    circuit: str
    names: tuple[str, ...]
    units: tuple[str, ...]
    values: np.ndarray
    stderr: np.ndarray
    residual: float
    constants: Mapping[str, float] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Fit]:
        """Name -> :class:`~fastnai.analysis.Fit` (value, stderr, ``{"unit": ...}``)."""
        return {name: Fit(float(v), float(e), {"unit": unit})
                for name, unit, v, e in zip(self.names, self.units, self.values, self.stderr,
                                                    strict=True)}

    def predict(self, frequency) -> np.ndarray:
        """Complex impedance of the fitted circuit at ``frequency`` [Hz]."""
        custom_circuit, _ = _impedance_py()
        model = custom_circuit(self.circuit, initial_guess=[float(v) for v in self.values],
                               constants=dict(self.constants))
        model.parameters_ = np.asarray(self.values, dtype=float)  # fitted: predict() does not warn
        with _plain_repr():
            return np.asarray(model.predict(np.asarray(frequency, dtype=float)), dtype=complex)


def _fit_kwargs(weights, z: np.ndarray) -> dict:
    """impedance.py / curve_fit keywords of a weighting choice."""
    if isinstance(weights, str):
        if weights == "modulus":
            return {"weight_by_modulus": True}
        if weights == "unit":
            return {"weight_by_modulus": False}
        raise FastnaiError(f"weights must be 'modulus', 'unit' or an array of standard deviations, "
                           f"got {weights!r}")
    sigma = np.asarray(weights, dtype=float)
    if sigma.shape != z.shape or not np.all(sigma > 0.0) or not np.all(np.isfinite(sigma)):
        raise FastnaiError(f"weights as an array must hold one positive standard deviation per "
                           f"point ({z.size}), got shape {sigma.shape}")
    return {"sigma": np.concatenate([sigma, sigma]), "absolute_sigma": True}


def fit_circuit(frequency, impedance, circuit: str, initial_guess: Sequence[float], *,
                constants: Mapping[str, float] | None = None, weights="modulus",
                bounds=None, max_residual: float = 0.05) -> CircuitFit:
    """Fit an equivalent circuit to a spectrum by complex nonlinear least squares (impedance.py).

    Minimises sum_k w_k^-2 [(Re Z_fit - Re Z)^2 + (Im Z_fit - Im Z)^2] with scipy's
    ``curve_fit`` (trust region reflective, bounded) as ``impedance.models.circuits.CustomCircuit``
    sets it up; element formulas are in the module docstring. With ``weights="modulus"`` (w_k =
    |Z_k|) or ``"unit"`` the covariance is scaled by the reduced chi-square, so the errors reflect
    the scatter about the fit; with an array of standard deviations they are taken as absolute.

    Parameters
    ----------
    frequency, impedance
        The spectrum: [Hz] and complex Z with Im Z < 0 for capacitive behaviour [ohm or ohm m2].
    circuit
        impedance.py circuit string, e.g. ``"R0-p(C1,R1-Wo1)"``.
    initial_guess
        One start value per free parameter, in the order of ``CircuitFit.names``.
    constants
        Parameters held fixed, e.g. ``{"R0": 1e-4, "Wo1_1": 100.0}``.
    weights
        ``"modulus"`` (relative errors, impedance.py's standard choice), ``"unit"``, or the
        standard deviation of Re Z and of Im Z at each point [Z's unit].
    bounds
        ``(lower, upper)`` per free parameter; default 0 to inf (CPE alpha at most 1).
    max_residual
        Largest acceptable relative rms misfit [-].

    Raises
    ------
    FastnaiError
        When impedance.py is missing, the circuit or guess is malformed, the optimiser fails,
        the misfit exceeds ``max_residual`` or a standard error is not finite.

    Examples
    --------
    >>> f = np.logspace(-1, 4, 31)
    >>> z = 2.0 + 10.0 / (1 + 2j * np.pi * f * 10.0 * 1e-4)
    >>> fit = fit_circuit(f, z, "R0-p(R1,C1)", [1.0, 5.0, 1e-3])
    >>> [round(fit.parameters[k].value, 9) for k in ("R0", "R1", "C1")]
    [2.0, 10.0, 0.0001]
    """
    f, z = _spectrum_arrays(frequency, impedance)
    custom_circuit, _ = _impedance_py()
    consts = {str(k): float(v) for k, v in (constants or {}).items()}
    kwargs = _fit_kwargs(weights, z)
    try:
        model = custom_circuit(circuit, initial_guess=[float(g) for g in initial_guess],
                               constants=consts)
        names, units = model.get_param_names()
    except (ValueError, TypeError, AttributeError, SyntaxError, NameError) as exc:
        raise FastnaiError(f"circuit {circuit!r} with initial guess {list(initial_guess)}: {exc}") from None
    try:
        with warnings.catch_warnings(), _plain_repr():
            # an undetermined covariance comes back as inf and is reported below, with the residual
            warnings.simplefilter("ignore", OptimizeWarning)
            model.fit(f, z, bounds=bounds, **kwargs)
    except (RuntimeError, ValueError, TypeError, AssertionError, np.linalg.LinAlgError) as exc:
        raise FastnaiError(f"the fit of {circuit!r} did not converge ({type(exc).__name__} from "
                           f"impedance.py/scipy: {exc}); check the initial guess lies within the bounds "
                           "(default: every parameter positive, CPE alpha <= 1)") from None
    values = np.asarray(model.parameters_, dtype=float)
    stderr = np.full(values.shape, math.nan) if model.conf_ is None else np.asarray(model.conf_, float)
    result = CircuitFit(circuit, tuple(names), tuple(units), values, stderr, math.nan, consts)
    residual = float(np.sqrt(np.mean(np.abs(result.predict(f) - z) ** 2 / np.abs(z) ** 2)))
    result = CircuitFit(circuit, tuple(names), tuple(units), values, stderr, residual, consts)
    summary = ", ".join(f"{n} = {v:.4g}" for n, v in zip(names, values, strict=True))
    if not residual <= max_residual:
        raise FastnaiError(f"the fit of {circuit!r} did not converge: relative rms residual "
                           f"{residual:.3g} > {max_residual:g} ({summary}); try another initial guess "
                           "or circuit")
    if not np.all(np.isfinite(stderr)):
        raise FastnaiError(f"the fit of {circuit!r} did not converge: standard errors are not finite "
                           f"(residual {residual:.3g}; {summary}); a parameter is undetermined by "
                           "the data or sits on a bound")
    return result


def kramers_kronig(frequency, impedance, *, c: float = 0.5, max_M: int = 50, threshold: float = 0.01,
                   fit_type: str = "complex", add_capacitance: bool = True) -> dict:
    """Linear Kramers-Kronig test of Schoenleber et al. (2014), fitted by impedance.py's ``linKK``.

    Fits Z_KK = R_0 + i omega L + 1/(i omega C) + sum_k R_k / (1 + i omega tau_k), k = 1..M,
    with the tau_k fixed and spaced logarithmically from 1/omega_max to 1/omega_min, by linear
    least squares on Z/|Z|. Every such model obeys the Kramers-Kronig relations, so a spectrum
    of a linear, causal, stable and time-invariant system is reproduced to within its noise,
    while drift or nonlinearity leaves residuals. Overfitting shows as negative R_k:
    mu = 1 - sum_{R_k<0} |R_k| / sum_{R_k>=0} |R_k| falls.

    Choice of M: Schoenleber et al. grow M until mu < c (c = 0.85). On spectra that span many
    decades mu also dips while the fit still underfits (a model spectrum over 1 mHz-1 MHz gave
    mu = 0.38 at M = 8 with 20 % residuals, and 0.77 at M = 50 with 1e-5), so here every M from
    1 to ``max_M`` is fitted and the one with the smallest largest residual among those with
    mu >= c is taken (the best fit that does not overfit); when no M has mu >= c, the smallest
    largest residual over all M. The cutoff is 0.5, not Schoenleber's 0.85: two ideal RC arcs
    over 1 mHz-100 kHz fit to 2e-5 at M = 44 with mu = 0.76, while the best fit with mu >= 0.85
    leaves 2.4 % (M = 15).

    Parameters
    ----------
    frequency, impedance
        The spectrum [Hz], complex [ohm or ohm m2].
    c, max_M
        mu cutoff and largest number of RC elements (capped at n_points - 3).
    threshold
        The spectrum is ``valid`` when every |residual| is below it [-]; with noisy data use
        about 3-4 times the relative noise.
    fit_type
        ``"complex"`` (Schoenleber's Eq. 14), ``"real"`` or ``"imag"`` (fit one part, predict the
        other).
    add_capacitance
        Include the series capacitance C, needed for spectra without a low-frequency intercept
        (blocking electrodes, finite-space diffusion).

    Returns
    -------
    dict
        ``M``, ``mu``, ``impedance_fit`` (complex), ``residuals_real`` and ``residuals_imag``
        ((Z - Z_KK)/|Z|), ``max_residual``, ``threshold``, ``valid``, ``mu_reached`` (whether
        the chosen M has mu >= c).

    Examples
    --------
    >>> f = np.logspace(-2, 4, 61)
    >>> z = 1.0 + 10.0 / (1 + 2j * np.pi * f * 0.01)
    >>> kramers_kronig(f, z)["valid"], kramers_kronig(f, np.conj(z))["valid"]
    (True, False)
    """
    f, z = _spectrum_arrays(frequency, impedance)
    _, lin_kk = _impedance_py()
    n_max = min(int(max_M), f.size - 3)
    if n_max < 1:
        raise FastnaiError(f"the Kramers-Kronig test needs at least 4 points, got {f.size}")
    if fit_type not in ("complex", "real", "imag"):
        raise FastnaiError(f"fit_type must be 'complex', 'real' or 'imag', got {fit_type!r}")
    best = None
    # linKK prints progress every 10 elements, and mu divides by zero when no R_k is positive;
    # with c = None it fits exactly max_M elements
    with contextlib.redirect_stdout(io.StringIO()), _plain_repr(), np.errstate(divide="ignore",
                                                                               invalid="ignore"):
        for m_try in range(1, n_max + 1):
            m, mu, z_fit, res_re, res_im = lin_kk(f, z, c=None, max_M=m_try, fit_type=fit_type,
                                                   add_cap=add_capacitance)
            worst = float(max(np.max(np.abs(res_re)), np.max(np.abs(res_im))))
            key = (not mu >= c, worst)  # mu >= c first, then the smallest residual
            if best is None or key < best[0]:
                best = (key, m, mu, z_fit, res_re, res_im, worst)
    _, m, mu, z_fit, res_re, res_im, worst = best
    return {"M": int(m), "mu": float(mu), "impedance_fit": np.asarray(z_fit, dtype=complex),
            "residuals_real": np.asarray(res_re, dtype=float),
            "residuals_imag": np.asarray(res_im, dtype=float), "max_residual": worst,
            "threshold": float(threshold), "valid": bool(worst < threshold),
            "mu_reached": bool(mu >= c)}


def warburg_coefficient(frequency, impedance, *, f_max: float, f_min: float = 0.0) -> Fit:
    """Warburg coefficient sigma from Re Z and -Im Z against omega^-1/2 (semi-infinite region).

    Where diffusion is semi-infinite, Z = R_inf + sigma omega^-1/2 (1 - i) [Ho 1980, Eq. 20;
    Bard-Faulkner Eq. 10.3.22 at low frequency], so Re Z = a + sigma omega^-1/2 and
    -Im Z = b + sigma omega^-1/2 are parallel lines (b = 2 sigma^2 C_dl for a Randles cell). Both
    are fitted together by least squares with one slope and two intercepts over
    f_min <= f <= f_max. Choose the window above the finite-length transition (omega L^2/D >~ 20)
    and below the charge-transfer arc.

    Parameters
    ----------
    frequency, impedance
        The spectrum [Hz], complex [ohm or ohm m2].
    f_max, f_min
        The semi-infinite window [Hz].

    Returns
    -------
    Fit
        sigma [ohm s-1/2, or ohm m2 s-1/2]; ``details`` holds the separate slopes
        ``sigma_real``, ``sigma_imag`` (with stderrs; they agree only inside a true Warburg
        region), the intercepts and ``n_points``.

    Examples
    --------
    >>> f = np.logspace(-2, 1, 16)
    >>> z = 0.5 + 0.02 * (1 - 1j) / np.sqrt(2 * np.pi * f)
    >>> round(warburg_coefficient(f, z, f_max=10.0).value, 12)
    0.02
    """
    f, z = _spectrum_arrays(frequency, impedance)
    sel = (f <= f_max) & (f >= f_min)
    n = int(np.count_nonzero(sel))
    if n < 3:
        raise FastnaiError(f"{n} points lie in {f_min:g} <= f <= {f_max:g} Hz; the Warburg fit needs 3")
    x = 1.0 / np.sqrt(2.0 * np.pi * f[sel])
    design = np.zeros((2 * n, 3))
    design[:, 0] = np.concatenate([x, x])
    design[:n, 1] = 1.0
    design[n:, 2] = 1.0
    y = np.concatenate([z.real[sel], -z.imag[sel]])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    cov = float(resid @ resid) / (2 * n - 3) * np.linalg.inv(design.T @ design)
    s_re, se_re, a_re, _ = _line_fit(x, z.real[sel])
    s_im, se_im, a_im, _ = _line_fit(x, -z.imag[sel])
    if coef[0] <= 0.0:
        raise FastnaiError(f"the Warburg slope is {coef[0]:.3g} <= 0 in {f_min:g}-{f_max:g} Hz: "
                           "no diffusion region there")
    return Fit(float(coef[0]), float(math.sqrt(cov[0, 0])),
               {"sigma_real": s_re, "sigma_real_stderr": se_re, "sigma_imag": s_im,
                "sigma_imag_stderr": se_im, "intercept_real": float(coef[1]),
                "intercept_imag": float(coef[2]), "n_points": n})


def warburg_diffusivity(sigma: Fit | float, *, dU_dc: float | None = None, dU_dx: float | None = None,
                        molar_volume: float | None = None, area: float = 1.0,
                        n_electrons: float = 1.0) -> Fit:
    """Chemical diffusivity from the Warburg coefficient of an insertion electrode [Ho 1980, Eq. 23].

        sigma = V_m |dE/dx| / (sqrt(2) n F S sqrt(D)) = |dU/dc| / (sqrt(2) n F S sqrt(D))

    so D = (|dU/dc| / (sqrt(2) n F S sigma))^2, with c = x / V_m the concentration of the
    inserted ion; this is the high-frequency limit of SPEC 3.6's slab, R_D coth(sqrt s)/sqrt s
    with R_D = |dU/dc| L / (F D). stderr(D) = 2 D stderr(sigma) / sigma.

    Parameters
    ----------
    sigma
        Warburg coefficient, e.g. from :func:`warburg_coefficient` [ohm m2 s-1/2, or ohm s-1/2
        with ``area``].
    dU_dc
        Slope of the equilibrium potential against concentration [V m3 mol-1] (sign ignored).
    dU_dx, molar_volume
        Alternatively the slope against mole fraction x [V] and the molar volume V_m
        [m3 mol-1], dU/dc = V_m dU/dx.
    area
        Electrode-electrolyte area S when sigma is in ohm s-1/2 [m2]; 1 for area-specific sigma.
    n_electrons
        Charge number of the inserted ion.

    Returns
    -------
    Fit
        D [m2 s-1].

    Examples
    --------
    >>> sigma = 1e-5 / (math.sqrt(2) * F * math.sqrt(1e-14))
    >>> f"{warburg_diffusivity(sigma, dU_dc=-1e-5).value:.6g}"
    '1e-14'
    """
    if (dU_dc is None) == (dU_dx is None):
        raise FastnaiError("give exactly one of dU_dc [V m3 mol-1] and dU_dx [V] (with molar_volume)")
    if dU_dx is not None:
        if molar_volume is None:
            raise FastnaiError("dU_dx needs molar_volume [m3 mol-1] to give dU/dc = V_m dU/dx")
        dU_dc = molar_volume * dU_dx
    s, se = (sigma.value, sigma.stderr) if isinstance(sigma, Fit) else (float(sigma), 0.0)
    if not s > 0.0 or dU_dc == 0.0 or not area > 0.0:
        raise FastnaiError(f"sigma, dU/dc and area must be non-zero and positive, got sigma = {s}, "
                           f"dU/dc = {dU_dc}, area = {area}")
    d = (abs(dU_dc) / (math.sqrt(2.0) * n_electrons * F * area * s)) ** 2
    return Fit(d, 2.0 * d * se / s, {"dU_dc": abs(dU_dc), "sigma": s, "sigma_stderr": se})


def _randles_guess(f: np.ndarray, z: np.ndarray, cpe: bool) -> list[float]:
    """Start values for R0-p(C1,R1-Wo1) read off the spectrum (sorted by frequency)."""
    order = np.argsort(f)[::-1]  # high to low frequency
    fh, zh = f[order], z[order]
    r0 = max(float(zh.real[0]), 1e-12 * float(np.max(np.abs(z))))
    mim = -zh.imag
    peaks = [k for k in range(1, fh.size - 1) if mim[k] > 0 and mim[k] >= mim[k - 1] and mim[k] > mim[k + 1]]
    if not peaks:
        raise FastnaiError("no charge-transfer arc (a maximum of -Im Z) in the spectrum: pass "
                           "initial_guess")
    k = peaks[0]
    r1 = max(2.0 * (float(zh.real[k]) - r0), 2.0 * float(mim[k]))
    c1 = 1.0 / (2.0 * np.pi * fh[k] * r1)
    z0 = max(3.0 * (float(zh.real[-1]) - r0 - r1), r1)
    tau = 1.0 / (2.0 * np.pi * fh[-1])
    return [r0, c1, 0.9, r1, z0, tau] if cpe else [r0, c1, r1, z0, tau]


def charge_transfer_resistance(frequency, impedance, *, initial_guess: Sequence[float] | None = None,
                               cpe: bool = False, weights="modulus",
                               max_residual: float = 0.05) -> Fit:
    """R_ct from a Randles fit, R0 + [C_dl || (R_ct + Z_Wo)] (or a CPE for C_dl).

    Fits ``"R0-p(C1,R1-Wo1)"`` (``"R0-p(CPE1,R1-Wo1)"`` with ``cpe``) with :func:`fit_circuit`
    and returns R1. Without ``initial_guess`` the start values are read off the spectrum: R0
    from Re Z at the highest frequency, R_ct and C_dl from the first maximum of -Im Z below it
    (apex of the charge-transfer semicircle: R_ct ~ 2 (Re Z - R0), C_dl = 1/(omega R_ct)),
    Z0 and tau of the Warburg element from the lowest frequency.

    Returns
    -------
    Fit
        R_ct [ohm or ohm m2]; ``details`` holds the whole :class:`CircuitFit` as ``"fit"``.

    Examples
    --------
    >>> f = np.logspace(-2, 5, 50)
    >>> s = np.sqrt(2j * np.pi * f * 10.0)
    >>> z = 0.1 + 1 / (2j * np.pi * f * 1e-4 + 1 / (1.0 + 2.0 / (s * np.tanh(s))))
    >>> round(charge_transfer_resistance(f, z).value, 9)
    1.0
    """
    f, z = _spectrum_arrays(frequency, impedance)
    guess = _randles_guess(f, z, cpe) if initial_guess is None else list(initial_guess)
    fit = fit_circuit(f, z, RANDLES_CPE if cpe else RANDLES, guess, weights=weights,
                      max_residual=max_residual)
    r1 = fit.parameters["R1"]
    return Fit(r1.value, r1.stderr, {"unit": r1.details["unit"], "fit": fit})


def rct_activation_energy(temperatures, rct) -> Fit:
    """Activation energy of charge transfer from R_ct at several temperatures (the VN paper's method).

    T / R_ct = A exp(-E_a / (R T)) [Xia et al., Nanoscale Horiz. 7, 899 (2022),
    doi:10.1039/d2nh00152g]; this is :func:`fastnai.analysis.activation_energy`, accepting the
    R_ct as floats or as the Fits :func:`charge_transfer_resistance` returns.

    Returns
    -------
    Fit
        E_a [J mol-1].

    Examples
    --------
    >>> t = np.array([283.15, 298.15, 313.15])
    >>> round(rct_activation_energy(t, t / np.exp(-50000.0 / (8.314462618 * t))).value)
    50000
    """
    return activation_energy(temperatures, [float(r) for r in rct])


@dataclass(frozen=True, eq=False)
class Spectrum:
    """An impedance spectrum: ``frequency`` [Hz] ascending, complex ``impedance`` with Im Z < 0
    for capacitive behaviour, in ``units`` ("ohm", or "ohm m2" when area-specific), and the
    ``source`` it was read from."""

    frequency: np.ndarray
    impedance: np.ndarray
    source: str = ""
    units: str = "ohm"


def _make_spectrum(f, z, source: str, units: str) -> Spectrum:
    """Spectrum sorted by ascending frequency, after the checks of a valid spectrum."""
    f, z = _spectrum_arrays(f, z)
    order = np.argsort(f, kind="stable")
    return Spectrum(f[order], z[order], str(source), units)


# Column headers the CSV reader recognises, after lower-casing, removing the unit and spaces/underscores
_ALIASES = {
    "frequency": ("freq", "frequency", "f"),
    "real": ("z'", "re(z)", "zreal", "zre", "rez", "real", "re"),
    "imag": ("-z''", "-im(z)", "-zimag", "-zim", "-imz", "-imag", "z''", "im(z)", "zimag", "zim", "imz",
             "imag", "im"),
}
_PREFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6}
_UNIT = re.compile(r"^(?P<prefix>[mkM]?)(?:(?P<hz>Hz)|(?:Ohms?|ohms?|\u03a9)"
                   r"(?P<area>[\s.*\u00b7]*(?P<len>cm|m)(?:2|\^2|\u00b2))?)$")


def _split_header(header: str) -> tuple[str, str | None]:
    """``"Z' (Ohm)"`` -> ``("z'", "Ohm")``; the unit follows a slash or sits in trailing brackets."""
    text = header.strip()
    unit = None
    if "/" in text:
        text, unit = text.split("/", 1)
    else:
        match = re.match(r"^(.*?)\s*[(\[]([^()\[\]]*)[)\]]$", text)
        if match and _UNIT.match(match.group(2).strip()):
            text, unit = match.group(1), match.group(2)
    base = text.strip().lower().replace("\u2032", "'").replace("\u2033", "''").replace('"', "''")
    return re.sub(r"[\s_.]", "", base), (unit.strip() if unit else None)


def _unit_scale(header: str, unit: str | None, *, frequency: bool) -> tuple[float, bool]:
    """Factor to SI and whether the unit is area-specific (ohm cm2), from a header's unit."""
    if unit is None:
        return 1.0, False
    match = _UNIT.match(unit)
    if match is None or bool(match.group("hz")) != frequency:
        raise FastnaiError(f"column {header!r}: unknown unit {unit!r}; expected "
                           + ("Hz, kHz or mHz" if frequency else "Ohm, mOhm, kOhm or Ohm cm2")
                           + " (or pass columns for headers without units)")
    scale = _PREFIX[match.group("prefix")]
    if match.group("area"):
        scale *= 1e-4 if match.group("len") == "cm" else 1.0
    return scale, bool(match.group("area"))


def _find_columns(headers: list[str], given: Mapping[str, str], name: str) -> dict[str, str]:
    """Role (frequency, real, imag) -> header: those given, the others recognised by name."""
    unknown = set(given) - set(_ALIASES)
    if unknown:
        raise FastnaiError(f"columns keys must be among {sorted(_ALIASES)}, got {sorted(unknown)}")
    found = dict(given)
    bases = [_split_header(h)[0] for h in headers]
    for role, aliases in _ALIASES.items():
        if role in found:
            continue
        for alias in aliases:
            if alias in bases:
                found[role] = headers[bases.index(alias)]
                break
    missing = [role for role in _ALIASES if role not in found]
    if missing:
        raise FastnaiError(f"{name}: no column recognised for {', '.join(missing)}; columns are "
                           + ", ".join(repr(h) for h in headers)
                           + "; pass columns={'frequency': ..., 'real': ..., 'imag': ...}")
    return found


def read_spectrum_csv(path: str | Path, *, columns: Mapping[str, str] | None = None,
                      imag_sign: str = "auto", area: float | None = None) -> Spectrum:
    """Read a spectrum from a CSV or text table with a header row (delimiter detected).

    Parameters
    ----------
    path
        The file.
    columns
        ``{"frequency": header, "real": header, "imag": header}``; roles left out are recognised
        from common headers: ``freq/Hz``, ``Frequency (Hz)``, ``Z'/Ohm``, ``Re(Z)/Ohm``,
        ``Zreal``, ``-Z''/Ohm``, ``-Im(Z)/Ohm``, ``Zimag`` ... Units in the header (``/unit``,
        ``(unit)`` or ``[unit]``) are converted: Hz, kHz, mHz; Ohm, mOhm, kOhm; Ohm cm2.
    imag_sign
        What the imaginary column holds: ``"negative"``, -Im Z (EC-Lab, most Nyquist exports);
        ``"positive"``, Im Z itself (e.g. Gamry ``Zimag``); ``"auto"``, ``"negative"`` when its
        header starts with ``-`` and ``"positive"`` otherwise.
    area
        Electrode area [m2]: the spectrum is returned as Z area [ohm m2]. Headers in Ohm cm2 are
        area-specific already (converted to ohm m2).

    Returns
    -------
    Spectrum
        Sorted by ascending frequency, Z = Re + i Im.

    Raises
    ------
    FastnaiError
        A missing file or column (naming the columns present), an unknown unit, non-numeric data.
    """
    path = Path(path)
    if not path.is_file():
        raise FastnaiError(f"data file {str(path)!r} does not exist")
    import pandas as pd

    headers = [str(c).strip() for c in pd.read_csv(path, sep=None, engine="python", nrows=0).columns]
    roles = _find_columns(headers, columns or {}, path.name)
    if imag_sign not in ("auto", "negative", "positive"):
        raise FastnaiError(f"imag_sign must be 'auto', 'negative' or 'positive', got {imag_sign!r}")
    if imag_sign == "auto":
        imag_sign = "negative" if roles["imag"].lstrip().startswith("-") else "positive"
    scale, specific = {}, []
    for role, header in roles.items():
        scale[role], per_area = _unit_scale(header, _split_header(header)[1], frequency=role == "frequency")
        specific.append(per_area)
    data = read_csv(path, roles, scale=scale)
    z = data["real"] + 1j * (-data["imag"] if imag_sign == "negative" else data["imag"])
    if any(specific):
        if area is not None:
            raise FastnaiError(f"{path.name}: the impedance is area-specific already; do not pass area")
        return _make_spectrum(data["frequency"], z, str(path), "ohm m2")
    if area is not None:
        if not area > 0.0:
            raise FastnaiError(f"area must be positive [m2], got {area}")
        return _make_spectrum(data["frequency"], z * area, str(path), "ohm m2")
    return _make_spectrum(data["frequency"], z, str(path), "ohm")


def _mpt_table(path: Path) -> tuple[list[str], list[str]]:
    """Column headers and data lines of an EC-Lab text export."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # EC-Lab writes Windows code page 1252 / latin-1 (mu of uF)
    lines = text.splitlines()
    if lines and lines[0].strip().startswith("EC-Lab ASCII FILE"):
        count = next((re.match(r"\s*Nb header lines\s*:\s*(\d+)", line) for line in lines[:5]
                      if re.match(r"\s*Nb header lines\s*:\s*(\d+)", line)), None)
        if count is None:
            raise FastnaiError(f"{path.name}: no 'Nb header lines : N' line in the EC-Lab header")
        n_header = int(count.group(1))
        if not 2 <= n_header <= len(lines):
            raise FastnaiError(f"{path.name}: 'Nb header lines : {n_header}' but the file has "
                               f"{len(lines)} lines")
        header, body = lines[n_header - 1], lines[n_header:]
    elif lines:
        header, body = lines[0], lines[1:]  # exported without the header block
    else:
        raise FastnaiError(f"{path.name} is empty")
    return [h.strip() for h in header.rstrip("\t\r\n ").split("\t")], [b for b in body if b.strip()]


def read_mpt(path: str | Path, *, area: float | None = None, cycle: int | None = None) -> Spectrum:
    """Read a spectrum from a BioLogic EC-Lab text export (``.mpt``, or ``.txt`` with its header).

    The file starts ``EC-Lab ASCII FILE``, then ``Nb header lines : N``; line N holds the
    tab-separated column names (``freq/Hz``, ``Re(Z)/Ohm``, ``-Im(Z)/Ohm``, ``|Z|/Ohm``,
    ``Phase(Z)/deg``, ``time/s``, ``<Ewe>/V``, ``cycle number`` ...) and the data follow. Files
    are decoded as UTF-8 or else latin-1, and decimal commas are read as points. Z = Re(Z) - i
    (-Im(Z)); rows with freq <= 0 (other techniques of a linked experiment) are dropped.

    Parameters
    ----------
    path
        The file.
    area
        Electrode area [m2]: returns Z area [ohm m2].
    cycle
        Which ``cycle number`` to return when the file holds several spectra.

    Raises
    ------
    FastnaiError
        Missing columns (named, with the columns present), several cycles and no ``cycle``,
        non-numeric data.
    """
    path = Path(path)
    if not path.is_file():
        raise FastnaiError(f"data file {str(path)!r} does not exist")
    headers, body = _mpt_table(path)
    needed = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"] + (["cycle number"] if cycle is not None else [])
    missing = [c for c in needed if c not in headers]
    if missing:
        raise FastnaiError(f"{path.name}: no column {', '.join(repr(m) for m in missing)}; columns are "
                           + ", ".join(repr(h) for h in headers))
    try:
        table = np.array([[float(v.replace(",", ".")) for v in line.rstrip("\t\r\n ").split("\t")]
                          for line in body], dtype=float).reshape(len(body), -1)
    except ValueError as exc:
        raise FastnaiError(f"{path.name}: the data are not a numeric table of {len(headers)} columns "
                           f"({exc})") from None
    if table.shape[1] != len(headers):
        raise FastnaiError(f"{path.name}: {table.shape[1]} data columns but {len(headers)} headers")
    col = {h: table[:, k] for k, h in enumerate(headers)}
    keep = col["freq/Hz"] > 0.0
    if "cycle number" in col:
        cycles = np.unique(col["cycle number"][keep])
        if cycle is None and cycles.size > 1:
            raise FastnaiError(f"{path.name} holds {cycles.size} spectra (cycle number "
                               f"{', '.join(f'{c:g}' for c in cycles)}): pass cycle=")
        if cycle is not None:
            keep &= col["cycle number"] == cycle
            if not np.any(keep):
                raise FastnaiError(f"{path.name}: no cycle {cycle}; cycles are "
                                   + ", ".join(f"{c:g}" for c in cycles))
    z = col["Re(Z)/Ohm"][keep] - 1j * col["-Im(Z)/Ohm"][keep]
    if area is not None:
        if not area > 0.0:
            raise FastnaiError(f"area must be positive [m2], got {area}")
        return _make_spectrum(col["freq/Hz"][keep], z * area, str(path), "ohm m2")
    return _make_spectrum(col["freq/Hz"][keep], z, str(path), "ohm")


def read_spectrum(path: str | Path, **kwargs) -> Spectrum:
    """Read a spectrum, choosing the reader by content and suffix.

    An EC-Lab export (first line ``EC-Lab ASCII FILE``, or suffix ``.mpt``) goes to
    :func:`read_mpt`, a ``.csv`` or ``.txt`` table to :func:`read_spectrum_csv`; ``kwargs``
    go to the reader.
    """
    path = Path(path)
    if not path.is_file():
        raise FastnaiError(f"data file {str(path)!r} does not exist")
    with path.open("rb") as handle:
        first = handle.readline()
    if path.suffix.lower() == ".mpt" or first.strip().startswith(b"EC-Lab ASCII FILE"):
        return read_mpt(path, **kwargs)
    if path.suffix.lower() in (".csv", ".txt"):
        return read_spectrum_csv(path, **kwargs)
    raise FastnaiError(f"{path.name}: unknown spectrum format {path.suffix!r}; expected .mpt, .csv or .txt")


def spectrum_from_dataset(ds, spectrum: int | None = None) -> Spectrum:
    """The spectrum of a fastnai result: ``impedance_real`` + i ``impedance_imag`` on ``frequency``.

    Parameters
    ----------
    ds
        xarray Dataset with coordinate ``frequency`` [Hz] and variables ``impedance_real`` and
        ``impedance_imag`` (Im Z, negative for a capacitor) [ohm m2], optionally with a leading
        dimension ``spectrum`` (one per ``eis`` protocol step).
    spectrum
        Index along ``spectrum``; may be left out when there is one.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"impedance_real": ("frequency", [2.0, 1.0]),
    ...                  "impedance_imag": ("frequency", [-1.0, -0.5])},
    ...                 coords={"frequency": [1.0, 10.0]})
    >>> spectrum_from_dataset(ds).impedance
    array([2.-1.j , 1.-0.5j])
    """
    missing = [v for v in ("impedance_real", "impedance_imag", "frequency") if v not in ds.variables]
    if missing:
        raise FastnaiError(f"the dataset has no {', '.join(missing)}: it holds no impedance spectrum "
                           "(run an eis protocol step)")
    real, imag = ds["impedance_real"], ds["impedance_imag"]
    if "spectrum" in real.dims:
        n = real.sizes["spectrum"]
        if spectrum is None and n != 1:
            raise FastnaiError(f"the dataset holds {n} spectra: pass spectrum= (0 to {n - 1})")
        k = 0 if spectrum is None else int(spectrum)
        if not -n <= k < n:
            raise FastnaiError(f"spectrum {k} out of range: the dataset holds {n} spectra")
        real, imag = real.isel(spectrum=k), imag.isel(spectrum=k)
    elif spectrum not in (None, 0):
        raise FastnaiError(f"the dataset holds one spectrum, got spectrum={spectrum}")
    if real.dims != ("frequency",) or imag.dims != ("frequency",):
        raise FastnaiError(f"impedance_real and impedance_imag must lie on frequency alone, got dims "
                           f"{real.dims} and {imag.dims}")
    units = str(real.attrs.get("units", "ohm m2"))
    return _make_spectrum(real["frequency"].values, real.values + 1j * imag.values, "dataset", units)
