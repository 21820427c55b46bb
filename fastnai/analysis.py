"""Electrochemical analysis as experimentalists apply it: pure functions on arrays (SPEC 3.5).

Every fitted quantity comes with its standard error (from the least-squares covariance). The
functions take plain numpy arrays (or DataArrays, which they read with ``np.asarray``) in SI
units, and work on simulated and measured data alike; :func:`read_csv` loads measured data.

Sources of the formulas:
- Randles-Sevcik: Cai et al., Small 18, 2200694 (2022), Eq. 2, doi:10.1002/smll.202200694;
  A. J. Bard and L. R. Faulkner, Electrochemical Methods, 2nd ed. (Wiley, 2001), Eq. 6.2.19.
- b-value and capacitive split i(v) = k1 v + k2 v^1/2: Osman et al., Adv. Sci. 9, 2205575 (2022),
  Eq. 3, doi:10.1002/advs.202205575.
- GITT: Wang et al., Adv. Sci. 9, 2201209 (2022), Eq. 1, doi:10.1002/advs.202201209;
  W. Weppner and R. A. Huggins, J. Electrochem. Soc. 124, 1569 (1977), doi:10.1149/1.2133112.
- Activation energy from T/R_ct = A exp(-E_a/RT): Xia et al., Nanoscale Horiz. 7, 899 (2022),
  doi:10.1039/d2nh00152g.
- Exchange current from micro-polarisation and Tafel fits: Bard and Faulkner, Eqs. 3.4.12, 3.4.15.

Impedance spectra (circuit fits, Kramers-Kronig test, Warburg coefficient, R_ct and its
Arrhenius fit, EC-Lab ``.mpt`` and CSV readers) live in :mod:`fastnai.spectra`; their names are
also attributes of this module (``fastnai.analysis.fit_circuit``), imported on first use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import constants
from scipy.signal import find_peaks

from .errors import FastnaiError

F = constants.physical_constants["Faraday constant"][0]
R = constants.R

#: Randles-Sevcik constant of a reversible linear sweep (peak of chi(sigma t), Nicholson-Shain).
RANDLES_SEVCIK = 0.4463

__all__ = [
    "Fit", "CVPeak", "find_cv_peaks", "randles_sevcik_diffusivity", "diffusivity_ratio",
    "b_value", "capacitive_split", "gitt_diffusivity", "gitt_pulse_diffusivity",
    "gitt_pulses", "gitt_validity", "activation_energy", "exchange_current_micropolarization",
    "exchange_current_tafel", "read_csv",
]


@dataclass(frozen=True)
class Fit:
    """A fitted quantity: value, standard error and the fit's details.

    ``stderr`` is NaN when the fit has no degrees of freedom left (as many points as
    parameters), where no error can be estimated.
    """

    value: float
    stderr: float
    details: Mapping | None = None

    def __float__(self) -> float:
        return float(self.value)


def _line_fit(x: np.ndarray, y: np.ndarray, *, intercept: bool = True):
    """Least squares y = a + b x (or y = b x): (b, se_b, a, se_a)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise FastnaiError(f"expected two 1-D arrays of equal length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise FastnaiError("the data contain NaN or infinite values")
    n_params = 2 if intercept else 1
    if x.size < n_params or (intercept and np.ptp(x) == 0.0):
        raise FastnaiError(f"a line fit needs at least {n_params} distinct points, got {x.size}")
    design = np.column_stack([x, np.ones_like(x)]) if intercept else x[:, None]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = x.size - n_params
    resid = y - design @ coef
    if dof > 0:
        sigma2 = float(resid @ resid) / dof
        cov = sigma2 * np.linalg.inv(design.T @ design)
        errs = np.sqrt(np.diag(cov))
    else:
        errs = np.full(n_params, math.nan)
    if intercept:
        return float(coef[0]), float(errs[0]), float(coef[1]), float(errs[1])
    return float(coef[0]), float(errs[0]), 0.0, 0.0


@dataclass(frozen=True)
class CVPeak:
    """A CV peak: its potential [V], current [A or A m-2] and index in the input arrays."""

    potential: float
    current: float
    index: int


def find_cv_peaks(potential, current, *, prominence: float | None = None) -> dict[str, CVPeak]:
    """Largest anodic (positive-current) and cathodic (negative-current) peak of a CV.

    Parameters
    ----------
    potential, current
        One cycle (or more) of a voltammogram; current positive for oxidation [V], [A].
    prominence
        Minimum peak prominence [A]; default 5 % of the current range.

    Returns
    -------
    dict
        ``{"anodic": CVPeak, "cathodic": CVPeak}``; a key is missing when no peak is found.

    Examples
    --------
    >>> e = np.linspace(0, 1, 201)
    >>> peaks = find_cv_peaks(e, np.exp(-((e - 0.4) / 0.05) ** 2))
    >>> round(peaks["anodic"].potential, 3)
    0.4
    """
    e = np.asarray(potential, dtype=float)
    i = np.asarray(current, dtype=float)
    if e.shape != i.shape:
        raise FastnaiError("potential and current must have the same shape")
    if prominence is None:
        prominence = 0.05 * float(np.ptp(i)) if i.size else 0.0
    out: dict[str, CVPeak] = {}
    for name, sign in (("anodic", 1.0), ("cathodic", -1.0)):
        idx, _ = find_peaks(sign * i, prominence=prominence)
        idx = idx[sign * i[idx] > 0.0]
        if idx.size:
            k = int(idx[np.argmax(sign * i[idx])])
            out[name] = CVPeak(float(e[k]), float(i[k]), k)
    return out


def randles_sevcik_diffusivity(scan_rates, peak_currents, *, area: float, concentration: float,
                               temperature: float = 298.15, n_electrons: float = 1.0,
                               intercept: bool = False) -> Fit:
    """Diffusivity from peak current vs square root of scan rate (reversible Randles-Sevcik).

        i_p = 0.4463 n F A C (n F v D / (R T))^(1/2)   [Cai 2022, Eq. 2]

    Fits i_p = k v^(1/2) (through the origin unless ``intercept``), then
    D = (k / (0.4463 n F A C (n F / RT)^(1/2)))^2, with stderr(D) = 2 D stderr(k) / k.

    Parameters
    ----------
    scan_rates
        [V s-1].
    peak_currents
        Magnitudes of the peak currents [A] (or [A m-2] with ``area`` = 1).
    area
        Electrode area [m2].
    concentration
        Bulk concentration of the reactant C* [mol m-3].

    Returns
    -------
    Fit
        D [m2 s-1]; ``details`` holds the slope k [A (V/s)^-1/2] and its error.

    Examples
    --------
    >>> v = np.array([1e-3, 4e-3, 9e-3])
    >>> k = 0.4463 * F * 1.0 * 10.0 * np.sqrt(F / (R * 298.15) * 1e-14)
    >>> fit = randles_sevcik_diffusivity(v, k * np.sqrt(v), area=1.0, concentration=10.0)
    >>> f"{fit.value:.6g}"
    '1e-14'
    """
    k, se_k, a, se_a = _line_fit(np.sqrt(np.asarray(scan_rates, float)),
                                 np.abs(np.asarray(peak_currents, float)), intercept=intercept)
    prefactor = RANDLES_SEVCIK * n_electrons * F * area * concentration * math.sqrt(
        n_electrons * F / (R * temperature))
    d = (k / prefactor) ** 2
    return Fit(d, 2.0 * d * se_k / abs(k),
               {"slope": k, "slope_stderr": se_k, "intercept": a, "intercept_stderr": se_a})


def diffusivity_ratio(slope_a: Fit | float, slope_b: Fit | float) -> Fit:
    """Apparent-diffusivity ratio from two Randles-Sevcik slopes, (k_a / k_b)^2.

    The TiCN/TiO2 paper's 5.5 = (1.59 / 0.68)^2 (doi:10.1002/smll.202200694); errors add in
    quadrature when the slopes are Fits.
    """
    ka, ea = (slope_a.value, slope_a.stderr) if isinstance(slope_a, Fit) else (float(slope_a), 0.0)
    kb, eb = (slope_b.value, slope_b.stderr) if isinstance(slope_b, Fit) else (float(slope_b), 0.0)
    ratio = (ka / kb) ** 2
    return Fit(ratio, 2.0 * ratio * math.hypot(ea / ka, eb / kb))


def b_value(scan_rates, peak_currents) -> Fit:
    """b in i = a v^b, from a straight line through log i vs log v [Osman 2022].

    b -> 0.5 for semi-infinite diffusion control, b -> 1 for surface (capacitive or thin-layer)
    control. ``details`` holds a (in the current's unit at v = 1 V/s).

    Examples
    --------
    >>> v = np.array([1e-4, 1e-3, 1e-2])
    >>> round(b_value(v, 3.0 * v**0.5).value, 12)
    0.5
    """
    b, se_b, log_a, se_log_a = _line_fit(np.log(np.asarray(scan_rates, float)),
                                         np.log(np.abs(np.asarray(peak_currents, float))))
    return Fit(b, se_b, {"a": math.exp(log_a), "log_a_stderr": se_log_a})


def capacitive_split(scan_rates, currents) -> dict[str, np.ndarray]:
    """Capacitive / diffusive split i(v) = k1 v + k2 v^(1/2) at every potential [Osman 2022, Eq. 3].

    Parameters
    ----------
    scan_rates
        Shape (n_rates,) [V s-1].
    currents
        Shape (n_rates, n_potentials): the current of each sweep sampled on a common potential
        grid [A].

    Returns
    -------
    dict
        ``k1``, ``k2`` (n_potentials,) and their standard errors ``k1_stderr``, ``k2_stderr``;
        ``capacitive_fraction`` (n_rates,): integral |k1 v| / integral (|k1 v| + |k2 v^1/2|)
        over the potential grid at each scan rate.

    Examples
    --------
    >>> v = np.array([1e-4, 4e-4, 1e-3])
    >>> i = 2.0 * v[:, None] + 0.5 * np.sqrt(v)[:, None] * np.ones((3, 4))
    >>> out = capacitive_split(v, i)
    >>> np.allclose(out["k1"], 2.0), np.allclose(out["k2"], 0.5)
    (True, True)
    """
    v = np.asarray(scan_rates, dtype=float)
    i = np.asarray(currents, dtype=float)
    if i.ndim == 1:
        i = i[:, None]
    if i.shape[0] != v.size:
        raise FastnaiError(f"currents has {i.shape[0]} rows, expected one per scan rate ({v.size})")
    if v.size < 2:
        raise FastnaiError("the capacitive split needs at least two scan rates")
    design = np.column_stack([v, np.sqrt(v)])
    coef, *_ = np.linalg.lstsq(design, i, rcond=None)
    dof = v.size - 2
    inv = np.linalg.inv(design.T @ design)
    if dof > 0:
        resid = i - design @ coef
        sigma2 = np.sum(resid**2, axis=0) / dof
        k1_se = np.sqrt(sigma2 * inv[0, 0])
        k2_se = np.sqrt(sigma2 * inv[1, 1])
    else:
        k1_se = k2_se = np.full(i.shape[1], math.nan)
    k1, k2 = coef
    cap = np.abs(k1)[None, :] * v[:, None]
    dif = np.abs(k2)[None, :] * np.sqrt(v)[:, None]
    fraction = cap.sum(axis=1) / (cap.sum(axis=1) + dif.sum(axis=1))
    return {"k1": k1, "k2": k2, "k1_stderr": k1_se, "k2_stderr": k2_se,
            "capacitive_fraction": fraction}


def gitt_diffusivity(*, current: float, molar_volume: float, area: float, dE_dx: float,
                     dE_dsqrt_t: float, n_electrons: float = 1.0) -> float:
    """Chemical diffusivity from one GITT pulse [Wang 2022, Eq. 1; Weppner-Huggins 1977].

        D = (4/pi) (I V_m / (n F S))^2 ((dE/dx) / (dE/d sqrt t))^2

    Valid only while the pulse probes semi-infinite diffusion (tau D / L^2 << 1, check with
    :func:`gitt_validity`), the titration curve is single-phase (a two-phase plateau has
    dE/dx = 0) and the potential changes are small.

    Parameters
    ----------
    current
        Pulse current I [A].
    molar_volume
        V_m [m3 mol-1].
    area
        Electrode-electrolyte area S [m2].
    dE_dx
        Slope of the coulometric titration curve per mole fraction x [V].
    dE_dsqrt_t
        Slope of the transient potential vs sqrt(t) during the pulse [V s-1/2].

    Returns
    -------
    float
        D [m2 s-1].
    """
    return (4.0 / math.pi) * (current * molar_volume / (n_electrons * F * area)) ** 2 * (
        dE_dx / dE_dsqrt_t) ** 2


def gitt_pulse_diffusivity(*, tau: float, thickness: float, delta_Es: float,
                           delta_Et: float) -> float:
    """The simplified Weppner-Huggins form: D = 4 L^2 / (pi tau) (Delta E_s / Delta E_t)^2.

    ``delta_Es`` is the change of the relaxed (steady) potential over the pulse, ``delta_Et``
    the change of the transient potential during the pulse (ohmic drop removed) [V];
    ``thickness`` L [m] is the diffusion length, ``tau`` the pulse length [s].
    """
    return 4.0 * thickness**2 / (math.pi * tau) * (delta_Es / delta_Et) ** 2


def gitt_pulses(t, voltage, current, *, window: tuple[float, float] = (0.2, 1.0)) -> list[dict]:
    """Split a GITT record into pulses and measure each one as the Weppner-Huggins method needs.

    A pulse is a run of samples whose current exceeds 1e-6 of the largest; the relaxed
    potential before it is the last sample of the preceding rest, the one after it the last
    sample of the following rest.
    The transient is fitted as E = E0 + s sqrt(t - t_start) over the fraction ``window`` of the
    pulse (the early samples hold the charge-transfer and space-charge response), and
    ``delta_Et = s sqrt(tau)`` is the diffusive change with the instantaneous (ohmic and
    kinetic) step removed, as :func:`gitt_pulse_diffusivity` expects.

    Parameters
    ----------
    t, voltage, current
        Samples of one GITT run [s, V, A or A m-2]; ``current`` is zero during rests.
    window
        Fractions of the pulse length bounding the sqrt(t) fit.

    Returns
    -------
    list of dict
        One per complete pulse (followed by a rest): ``t_start``, ``tau`` [s], ``current``,
        ``delta_Es``, ``delta_Et`` [V], ``dE_dsqrt_t`` [V s-1/2] with ``dE_dsqrt_t_stderr``.

    Examples
    --------
    >>> t = np.linspace(0.0, 3.0, 3001)
    >>> on = (t > 1.0) & (t <= 2.0)
    >>> v = 1.0 - 0.01 * np.sqrt(np.clip(t - 1.0, 0.0, 1.0)) * on - 0.004 * (t > 2.0)
    >>> p = gitt_pulses(t, v, np.where(on, -1.0, 0.0))[0]
    >>> round(p["tau"], 3), round(p["delta_Es"], 4), round(p["delta_Et"], 4)
    (1.0, -0.004, -0.01)
    """
    t = np.asarray(t, dtype=float)
    v = np.asarray(voltage, dtype=float)
    i = np.asarray(current, dtype=float)
    if not (t.shape == v.shape == i.shape) or t.ndim != 1:
        raise FastnaiError("t, voltage and current must be 1D arrays of one length")
    scale = float(np.max(np.abs(i))) if i.size else 0.0
    if scale == 0.0:
        return []
    on = np.abs(i) > 1e-6 * scale  # rests: zero current up to round-off of the flux evaluation
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    starts = [k + 1 for k in edges if not on[k]]
    out = []
    for s in starts:
        stop = s
        while stop < on.size and on[stop]:
            stop += 1
        if stop >= on.size or s == 0:
            break  # the last pulse has no rest after it
        nxt = stop
        while nxt < on.size and not on[nxt]:
            nxt += 1
        t0 = float(t[s - 1])
        tau = float(t[stop - 1] - t0)
        sel = np.arange(s, stop)
        frac = (t[sel] - t0) / tau
        sel = sel[(frac >= window[0]) & (frac <= window[1])]
        if sel.size < 3:
            raise FastnaiError(f"pulse at t = {t0:.4g} s has {sel.size} samples in the fit window")
        slope, se, _, _ = _line_fit(np.sqrt(t[sel] - t0), v[sel])
        out.append({"t_start": t0, "tau": tau, "current": float(np.median(i[s:stop])),
                    "delta_Es": float(v[nxt - 1] - v[s - 1]), "delta_Et": slope * math.sqrt(tau),
                    "dE_dsqrt_t": slope, "dE_dsqrt_t_stderr": se})
    return out


def gitt_validity(*, diffusivity: float, tau: float, thickness: float) -> dict:
    """tau D / L^2 of a GITT pulse and whether the short-time formula applies (<= 0.05).

    The graded-film paper's pulses (600 s on 630 nm) give 0.8 and 0.3 for its two D values,
    far outside (doi:10.1002/advs.202201209).
    """
    ratio = tau * diffusivity / thickness**2
    return {"tau_D_over_L2": ratio, "valid": ratio <= 0.05}


def activation_energy(temperatures, charge_transfer_resistances) -> Fit:
    """E_a [J mol-1] from T/R_ct = A exp(-E_a / (R T)) [Xia 2022 (VN paper)].

    Fits ln(T/R_ct) against 1/T; E_a = -R x slope. ``details`` holds ln A.

    Examples
    --------
    >>> t = np.array([283.15, 298.15, 313.15, 328.15])
    >>> rct = t / (1e9 * np.exp(-61420.0 / (R * t)))
    >>> round(activation_energy(t, rct).value)
    61420
    """
    t = np.asarray(temperatures, dtype=float)
    r = np.asarray(charge_transfer_resistances, dtype=float)
    if np.any(t <= 0) or np.any(r <= 0):
        raise FastnaiError("temperatures and resistances must be positive")
    slope, se, ln_a, se_ln_a = _line_fit(1.0 / t, np.log(t / r))
    return Fit(-R * slope, R * se, {"ln_A": ln_a, "ln_A_stderr": se_ln_a})


def exchange_current_micropolarization(overpotential, current_density, *,
                                       temperature: float = 298.15,
                                       n_electrons: float = 1.0) -> Fit:
    """i0 from the linear (micro-polarisation) region: i = i0 n F eta / (R T).

    Fit the slope di/d eta through the origin over |eta| << RT/F (about 10 mV); returns i0 in
    the current-density unit given [A m-2].
    """
    slope, se, _, _ = _line_fit(np.asarray(overpotential, float),
                                np.asarray(current_density, float), intercept=False)
    scale = R * temperature / (n_electrons * F)
    return Fit(slope * scale, se * scale, {"charge_transfer_resistance_area": 1.0 / slope})


def exchange_current_tafel(overpotential, current_density, *, temperature: float = 298.15,
                           n_electrons: float = 1.0) -> Fit:
    """i0 from a Tafel fit, log10|i| = log10 i0 + eta / b, extrapolated to eta = 0.

    Give points of one branch in the Tafel region (|eta| >~ 50 mV). ``details`` holds the
    Tafel slope b [V per decade] and the transfer coefficient 2.303 R T / (n F |b|).
    """
    eta = np.asarray(overpotential, dtype=float)
    i = np.abs(np.asarray(current_density, dtype=float))
    if np.any(i <= 0):
        raise FastnaiError("Tafel fits need non-zero currents")
    inv_b, se_inv_b, log_i0, se_log_i0 = _line_fit(eta, np.log10(i))
    i0 = 10.0**log_i0
    slope = 1.0 / inv_b
    alpha = math.log(10.0) * R * temperature / (n_electrons * F * abs(slope))
    return Fit(i0, i0 * math.log(10.0) * se_log_i0,
               {"tafel_slope": slope, "tafel_slope_stderr": se_inv_b / inv_b**2,
                "transfer_coefficient": alpha})


def nucleation_overpotential(t, voltage, *, plateau_window: tuple[float, float] = (0.5, 1.0)) -> dict:
    """Nucleation spike of a galvanostatic plating transient [Yan et al., Nat. Energy 1, 16010
    (2016), doi:10.1038/nenergy.2016.10; the VN paper's Fig. 3a].

    ``spike`` is the largest ``|voltage|``; ``plateau`` the mean ``|voltage|`` over the
    ``plateau_window`` fraction of the record's duration (the later flat part); ``excess`` is
    ``spike - plateau``, the "nucleation overpotential" of the Yan convention. Papers differ
    on which of ``spike`` and ``excess`` they quote: report both.

    Examples
    --------
    >>> tt = np.linspace(0.0, 100.0, 1001)
    >>> v = -0.05 - 0.03 * np.exp(-tt / 2.0)
    >>> r = nucleation_overpotential(tt, v)
    >>> round(r["spike"], 3), round(r["plateau"], 3), round(r["excess"], 3)
    (0.08, 0.05, 0.03)
    """
    tt = np.asarray(t, dtype=float)
    v = np.abs(np.asarray(voltage, dtype=float))
    if tt.size < 2 or tt.shape != v.shape:
        raise FastnaiError("t and voltage must be 1D arrays of the same length (>= 2 points)")
    span = tt[-1] - tt[0]
    lo, hi = plateau_window
    sel = (tt >= tt[0] + lo * span) & (tt <= tt[0] + hi * span)
    if not np.any(sel):
        raise FastnaiError("no samples in the plateau window")
    k = int(np.argmax(v))
    plateau = float(np.mean(v[sel]))
    return {"spike": float(v[k]), "spike_time": float(tt[k]), "plateau": plateau,
            "excess": float(v[k]) - plateau}


def read_csv(path: str | Path, columns: Mapping[str, str], *,
             scale: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """Read measured data from a CSV file with named columns.

    Parameters
    ----------
    path
        CSV file with a header row.
    columns
        Name to return -> column header in the file, e.g.
        ``{"potential": "Ewe/V", "current": "I/mA"}``.
    scale
        Name -> factor to SI, e.g. ``{"current": 1e-3}`` for mA.

    Returns
    -------
    dict
        Name -> float array.

    Raises
    ------
    FastnaiError
        For a missing file or column (naming the columns that exist), or non-numeric data.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FastnaiError(f"data file {str(path)!r} does not exist")
    frame = pd.read_csv(path, sep=None, engine="python")
    frame.columns = [str(c).strip() for c in frame.columns]
    out: dict[str, np.ndarray] = {}
    for name, header in columns.items():
        if header not in frame.columns:
            raise FastnaiError(f"{path.name}: no column {header!r} (for {name!r}); columns are "
                               + ", ".join(repr(c) for c in frame.columns))
        try:
            values = frame[header].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise FastnaiError(f"{path.name}: column {header!r} is not numeric") from None
        out[name] = values * (scale or {}).get(name, 1.0)
    return out


def __getattr__(name: str):
    """The impedance-spectrum analysis of :mod:`fastnai.spectra`, imported on first use (it
    imports this module)."""
    from . import spectra

    if name in spectra.__all__:
        return getattr(spectra, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
