"""Small-signal impedance of the drift_diffusion electrode about a state (SPEC 3.6).

The model's own residual and block Jacobian (:func:`fastnai._kernels.drift_diffusion.assemble`
at alpha0 = 0, dt = 1) and its mass blocks are linearised about the state and solved at every
frequency in complex arithmetic by :mod:`fastnai._kernels.impedance`; the state is not changed.

Z is the impedance of the electrode per m2 of its electrolyte interface (an ensemble's: the
total particle surface), anodic current positive, so that Re Z > 0 for a resistor and Im Z < 0
for a capacitor (instrument exports often hold -Im Z):

    Z(f) = A / (dI/dV)(f) + R_s,

A the interface area, dI/dV the admittance of the kernel (the particles' sum), R_s the case's
``electrode.series_resistance``, which therefore enters Z as the ohmic offset a measured
spectrum has. The double layer (``interface.double_layer_capacitance``, default 0) is a
capacitor across the electrolyte interface in parallel with the reaction, charged by the inner
potential of the electrolyte node; it enters the impedance only, not the transient (its charge
is not in Poisson's equation and the transient current is the Faradaic one).

How steady the state is: the Na+ rows of the residual give dc/dt of the state, which is
compared with the rate at which a signal of one thermal voltage at the lowest frequency moves
it, 2 pi f_min |dc/dV| V_t. Their ratio, ``spectrum_drift_ratio``, near or above 0.1 means the
state moves during the measurement as much as the signal moves it: the spectrum then describes
a moving state and a warning says so.
"""

from __future__ import annotations

import math

import numpy as np

from ..._kernels import drift_diffusion as kdd
from ..._kernels import impedance as kimp
from ...protocol_steps import DRIFT_WARNING, warn_if_drifting  # noqa: F401 (re-exported)
from .cell import unknowns
from .setup import Setup


class Linearisation:
    """The Jacobian blocks, mass blocks, border column and row of every particle at a state."""

    def __init__(self, setup: Setup, state: np.ndarray, voltage: float):
        s = setup
        n_p, n = s.n_particles, s.n_nodes
        self.z = np.empty((n_p, n, 3))
        self.lower = np.zeros((n_p, n, 3, 3))
        self.diag = np.zeros((n_p, n, 3, 3))
        self.upper = np.zeros((n_p, n, 3, 3))
        self.mass = np.zeros((n_p, n, 3, 3))
        self.res = np.zeros((n_p, n, 3))
        self.bcol = np.zeros((n_p, n, 3))
        self.brow = np.zeros((n_p, n, 3))
        hist = np.zeros((n, 3))
        unknowns(s, state, voltage, self.z)  # the model's own conversion (parallel over particles)
        for p in range(n_p):
            kdd.assemble(self.z[p], voltage, True, 0.0, hist, 1.0, s.vol[p], s.area[p], s.h[p],
                         s.g_face[p], s.d0_face[p], s.site_energy[p], s.region[p], s.params,
                         s.tables, s.sc[p], self.lower[p], self.diag[p], self.upper[p],
                         self.res[p], self.bcol[p], self.brow[p])
            kimp.mass_blocks(self.z[p], s.vol[p], s.region[p], s.params, s.tables, s.sc[p],
                             s.site_energy[p], self.mass[p])
        self.s_nodes = s.sc[:, kdd.S_SURFACE].astype(np.int64)

    def admittance(self, omegas: np.ndarray, cdl_area: np.ndarray) -> np.ndarray:
        """dI/dV of every particle, (F, P) complex [A V-1 per m2 of slab or per steradian]."""
        out = np.empty((omegas.size, self.diag.shape[0]), dtype=np.complex128)
        kimp.admittance(self.lower, self.diag, self.upper, self.mass, self.bcol, self.brow,
                        self.s_nodes, cdl_area, np.ascontiguousarray(omegas, dtype=float), out)
        return out

    def response(self, p: int, omega: float) -> np.ndarray:
        """dz/dV of particle p (n, 3) complex."""
        out = np.empty(self.diag.shape[1:3], dtype=np.complex128)
        kimp.response(self.lower[p], self.diag[p], self.upper[p], self.mass[p], self.bcol[p],
                      omega, out)
        return out


def spectrum(setup: Setup, y: np.ndarray, freqs: np.ndarray, *, double_layer_capacitance: float,
             series_resistance: float) -> dict:
    """The impedance spectrum about the flat state ``y`` (conserved fields, then V).

    Returns
    -------
    dict
        ``impedance`` (complex, ohm m2 of interface), ``voltage`` [V], ``theta`` (the mean site
        fraction), ``current_density`` (DC, A m-2) and ``drift_ratio`` (see the module).
    """
    s = setup
    state = y[:-1].reshape(s.n_particles, s.n_nodes, 3)
    voltage = float(y[-1])
    lin = Linearisation(s, state, voltage)
    omegas = 2.0 * math.pi * np.asarray(freqs, dtype=float)
    cdl_area = double_layer_capacitance * s.sc[:, kdd.S_AREA_S]
    total_area = float(np.sum(s.electrolyte_area))
    admittance = lin.admittance(omegas, cdl_area).sum(axis=1)
    z = total_area / admittance + series_resistance
    drift = drift_ratio(s, lin, state, float(omegas[0]))
    c = state[..., 1]
    theta = float(np.sum(c * s.vol) / (s.c_max * np.sum(s.vol)))
    dc_current = 0.0
    for p in range(s.n_particles):
        dc_current += kdd.surface_flow(lin.z[p], s.region[p], s.sc[p], s.tables, s.site_energy[p])
    return {"impedance": z, "voltage": voltage, "theta": theta,
            "current_density": dc_current / total_area, "drift_ratio": drift}


def drift_ratio(setup: Setup, lin: Linearisation, state: np.ndarray, omega_min: float) -> float:
    """max |dc/dt| of the state over 2 pi f_min max |dc/dV| V_t (over the particles)."""
    s = setup
    rate = np.abs(lin.res[..., 1]) / s.vol  # the Na+ rows: vol dc/dt = -K
    moved = 0.0
    for p in range(s.n_particles):
        dz = lin.response(p, omega_min)
        c = state[p, :, 1]
        dc = np.abs(dz[:, 1]) * c * (1.0 - c / s.c_max)  # dc/d ell = c (1 - theta)
        moved = max(moved, float(np.max(dc)))
    signal = omega_min * moved * s.vt
    return float(np.max(rate) / signal) if signal > 0.0 else math.inf

