"""Composition profiles x_Bi(z) of a Bi(x)Sb(1-x) film and its composition-dependent properties.

Used by :mod:`fastnai.models.film_stress` (SPEC section 3.3). ``z`` is the reference-frame
height above the substrate, ``s = z / h_f`` its fraction of the film thickness.

Profiles
--------
``uniform``
    The solid solution, x_Bi = mean everywhere.
``linear``
    x_bottom at the substrate to x_top at the surface; its mean (x_bottom + x_top) / 2 must
    equal ``composition.mean`` when that is given.
``tabulated``
    x_Bi at listed fractions of the thickness, linear in between.
``process``
    The paper's electrodeposition recipe (Wang et al., Adv. Sci. 9, 2201209 (2022),
    doi:10.1002/advs.202201209): partial deposition rates in the ratio of the bath
    concentrations, calibrated by the paper's solid-solution film (25:50 mM -> 33 % Bi),
    galvanostatic (thickness proportional to time), starting from equal Bi and Sb bath
    concentrations with a continuous Sb-only feed, so x_Bi(t) = V0 / (2 V0 + Q t).
    With q = Q T / V0 over the deposition time T, the film holds x_Bi(s) = 1 / (2 + q s),
    whose mean ln(1 + q/2) / q fixes q from ``composition.mean``
    (q ~ 2.37 for 0.33: 0.50 at the bottom, 0.23 at the top). ``composition.bath_model =
    "butler_volmer"`` replaces the concentration ratio by Butler-Volmer partial currents at a
    common electrode potential (see :func:`process_profile`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from ...errors import CaseError

PROFILES = ("uniform", "linear", "tabulated", "process")


def process_rate(mean: float) -> float:
    """q = Q T / V0 of the process profile whose film-averaged x_Bi is ``mean`` (0 < mean < 1/2)."""
    if not 0.0 < mean < 0.5:
        raise CaseError(f"composition.mean = {mean:g}: the process profile (Sb-only feed into a "
                        "1:1 Bi:Sb bath) gives means below 0.5 only")

    def gap(q):
        return math.log1p(0.5 * q) / q - mean

    return float(brentq(gap, 1e-12, 1e12, xtol=1e-14, rtol=1e-14, maxiter=500))


def process_profile(s: np.ndarray, mean: float, *, bath_model: str = "concentration",
                    exchange_ratio: float = 1.0, transfer_coefficient: float = 0.5,
                    potential_gap: float = 0.0, temperature: float = 298.15) -> np.ndarray:
    """x_Bi at thickness fractions ``s`` of the process profile with the given mean.

    ``bath_model = "concentration"``: partial rates in the ratio of bath concentrations
    (x = c_Bi / (c_Bi + c_Sb) with c_Sb / c_Bi = 1 + q s). ``"butler_volmer"``: cathodic
    Butler-Volmer partial currents at a common potential, i_k = i0_k (c_k / c_k0)
    exp(-alpha F eta_k / RT), with ``exchange_ratio`` = i0_Bi / i0_Sb (per unit concentration)
    and ``potential_gap`` = E0_Bi - E0_Sb [V], which multiply the Bi share by
    exchange_ratio exp(alpha F gap / RT); the feed is then re-solved for the same mean.
    """
    s = np.asarray(s, dtype=float)
    if bath_model == "concentration":
        weight = 1.0
    elif bath_model == "butler_volmer":
        f = 96485.33212 / (8.314462618 * temperature)
        weight = exchange_ratio * math.exp(transfer_coefficient * f * potential_gap)
    else:
        raise CaseError(f"composition.bath_model = {bath_model!r}: expected 'concentration' or "
                        "'butler_volmer'")

    def profile(q):
        ratio = 1.0 + q * s  # c_Sb / c_Bi as the film grows
        return weight / (weight + ratio)

    if weight == 1.0:
        return profile(process_rate(mean))
    # the mean of weight / (weight + 1 + q s) over s in [0, 1], solved for q
    top = weight / (weight + 1.0)
    if not 0.0 < mean < top:
        raise CaseError(f"composition.mean = {mean:g}: a Sb-only feed gives means below "
                        f"{top:.3g} with these partial currents")

    def gap(q):
        return weight * math.log1p(q / (weight + 1.0)) / q - mean

    q = brentq(gap, 1e-12, 1e12, xtol=1e-14, rtol=1e-14, maxiter=500)
    return profile(q)


#: composition.mean when the case does not set it: Bi0.33Sb0.67 (Wang 2022)
DEFAULT_MEAN = 0.33


def target_mean(case) -> float:
    """The film-averaged x_Bi the case asks for."""
    kind = case["composition.profile"]
    if kind == "linear":
        return 0.5 * (case["composition.bottom"] + case["composition.top"])
    mean = case["composition.mean"]
    return DEFAULT_MEAN if mean is None else mean


def composition_profile(case, s: np.ndarray) -> np.ndarray:
    """x_Bi at thickness fractions ``s`` (0 substrate, 1 surface) for the case's profile."""
    s = np.asarray(s, dtype=float)
    kind = case["composition.profile"]
    mean = target_mean(case) if kind != "tabulated" else None
    if kind == "uniform":
        return np.full(s.shape, mean)
    if kind == "linear":
        bottom, top = case["composition.bottom"], case["composition.top"]
        return bottom + (top - bottom) * s
    if kind == "tabulated":
        fractions = np.asarray(case["composition.fractions"], dtype=float)
        values = np.asarray(case["composition.x_bi"], dtype=float)
        return np.interp(s, fractions, values)
    return process_profile(s, mean, bath_model=case["composition.bath_model"],
                           exchange_ratio=case["composition.exchange_ratio"],
                           potential_gap=case["composition.potential_gap"],
                           temperature=case["model.temperature"])


def check_composition(case) -> None:
    """Case errors of the composition section (called by the model's ``validate``)."""
    kind = case["composition.profile"]
    if kind == "linear":
        bottom, top = case["composition.bottom"], case["composition.top"]
        if bottom is None or top is None:
            raise CaseError("composition.profile = 'linear' needs composition.bottom and "
                            "composition.top")
        if case["composition.mean"] is not None and not math.isclose(
                case["composition.mean"], 0.5 * (bottom + top), abs_tol=1e-9):
            raise CaseError(f"composition.mean = {case['composition.mean']:g} but a linear "
                            f"profile {bottom:g} -> {top:g} averages {0.5 * (bottom + top):g}")
    elif kind == "tabulated":
        fractions, values = case["composition.fractions"], case["composition.x_bi"]
        if fractions is None or values is None or len(fractions) != len(values) or len(values) < 2:
            raise CaseError("composition.profile = 'tabulated' needs composition.fractions and "
                            "composition.x_bi of one length (at least 2)")
        f = np.asarray(fractions)
        if f[0] != 0.0 or f[-1] != 1.0 or np.any(np.diff(f) <= 0.0):
            raise CaseError("composition.fractions must rise strictly from 0 to 1")
        if np.any((np.asarray(values) < 0.0) | (np.asarray(values) > 1.0)):
            raise CaseError("composition.x_bi values must lie in [0, 1]")
    elif kind == "process":
        process_profile(np.array([0.0]), target_mean(case),
                        bath_model=case["composition.bath_model"],
                        exchange_ratio=case["composition.exchange_ratio"],
                        potential_gap=case["composition.potential_gap"],
                        temperature=case["model.temperature"])


def mix(x_bi, bi_value, sb_value):
    """Linear (Vegard-like) interpolation between the Bi and Sb end members."""
    return x_bi * bi_value + (1.0 - x_bi) * sb_value
