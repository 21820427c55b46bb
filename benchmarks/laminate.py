"""1D elastoplastic laminate (SPEC §3.3 (a)): one load state and a 200-state sodiation cycle.

A graded Bi(x)Sb(1-x) film (600 nm, x_Bi 0.50 -> 0.23 from the substrate up, the process
profile's range) on 100 um of Cu, log eigenstrain, current-thickness integration, J2 plasticity
with the SPEC's assumed yield stresses (0.5 GPa falling to 0.2 GPa at theta = 1) and 1 GPa of
linear hardening (assumed). ``n`` is the
number of layers (2 n Gauss points): 20 in the substrate, the rest in the film. ``setup`` calls
each kernel once, so Numba compilation (or loading it from the cache) is not timed.
"""

from __future__ import annotations

import numpy as np

from fastnai._kernels import laminate as lam

SIZES = [200, 2_000]
N_SUBSTRATE = 20
M_CU = 120e9 / (1.0 - 0.34)  # biaxial modulus of Cu: E = 120 GPa (SPEC §3.3), nu = 0.34 (illustrative)


def graded_stack(n: int):
    """Faces and per-layer data of the benchmark stack (SI units)."""
    h_s, h_f = 100e-6, 600e-9
    n_film = n - N_SUBSTRATE
    z_faces = np.concatenate([-h_s * np.geomspace(1.0, 1e-3, N_SUBSTRATE), [0.0],
                              np.linspace(0.0, h_f, n_film + 1)[1:]])
    film = np.arange(n) >= N_SUBSTRATE
    x_bi = np.where(film, np.interp(np.arange(n), [N_SUBSTRATE, n - 1], [0.50, 0.23]), 0.0)
    beta = np.where(film, 2.51 * x_bi + 2.93 * (1.0 - x_bi), 0.0)  # Na3Bi, Na3Sb swelling (SPEC §3.3)
    m0 = np.where(film, (32e9 * x_bi + 55e9 * (1.0 - x_bi)) / (1.0 - 0.33), M_CU)  # Bi, Sb (SPEC §3.3)
    m1 = np.where(film, 0.6 * m0, M_CU)  # sodiated phases softer: illustrative
    y0 = np.where(film, 0.5e9, np.inf)
    y1 = np.where(film, 0.2e9, np.inf)
    hard = np.where(film, 1e9, 0.0)  # linear hardening, assumed
    return z_faces, film, beta, m0, m1, y0, y1, hard


class TimeLaminateState:
    """One free-plate solve of a virgin film under a sodiation front from a zero guess.

    theta(z) is a logistic front 30 % into the film from the top (width 5 % of the film), so
    the film is partly plastic, partly elastic: the active set changes during the Newton solve.
    """

    params = SIZES
    param_names = ["n"]

    def setup(self, n):
        z_faces, film, beta, m0, m1, y0, y1, hard = graded_stack(n)
        depth = np.clip((z_faces[-1] - 0.5 * (z_faces[1:] + z_faces[:-1])) / z_faces[-1], 0.0, 1.0)  # 0: top
        theta = np.where(film, 1.0 / (1.0 + np.exp((depth - 0.3) / 0.05)), 0.0)
        stretch = np.empty(n)
        self.material = np.empty((lam.N_MATERIAL_ROWS, 2 * n))
        lam.layer_properties(theta, beta, m0, m1, y0, y1, hard, lam.EIGEN_LOG, True, stretch, self.material)
        self.points = np.empty((lam.N_POINT_ROWS, 2 * n))
        lam.current_points(z_faces, stretch, self.points)
        self.history = np.zeros((lam.N_HISTORY_ROWS, 2 * n))
        self.trial = np.empty_like(self.history)
        self.stress = np.empty(2 * n)
        self.tangent = np.empty(2 * n)
        self.result = np.zeros(lam.N_RESULT)
        if self._solve() < 0:
            raise RuntimeError("laminate_state did not converge in setup")

    def _solve(self):
        self.result[:] = 0.0
        return lam.laminate_state(self.points, self.material, self.history, lam.MODE_FREE, 1e-13, 50,
                                  self.trial, self.stress, self.tangent, self.result)

    def time_laminate_state(self, n):
        self._solve()

    def track_newton_iterations(self, n):
        return self._solve()

    track_newton_iterations.unit = "iterations"


class TimeLaminateSweep:
    """200 uniform-theta states 0 -> 1 -> 0 (one substep each), plastic history committed."""

    params = SIZES
    param_names = ["n"]
    n_states = 200

    def setup(self, n):
        self.stack = graded_stack(n)
        z_faces, film = self.stack[:2]
        path = np.concatenate([np.linspace(0.0, 1.0, self.n_states // 2),
                               np.linspace(1.0, 0.0, self.n_states // 2)])
        self.theta = np.where(film, 1.0, 0.0)[None, :] * path[:, None]
        self.history = np.zeros((lam.N_HISTORY_ROWS, 2 * n))
        self.stress = np.empty((self.n_states, 2 * n))
        self.plastic = np.empty((self.n_states, 2 * n))
        self.result = np.empty((self.n_states, lam.N_RESULT))
        if self._sweep() != self.n_states:
            raise RuntimeError("laminate_sweep failed in setup")

    def _sweep(self):
        z_faces, _, beta, m0, m1, y0, y1, hard = self.stack
        self.history[:] = 0.0
        return lam.laminate_sweep(z_faces, self.theta, beta, m0, m1, y0, y1, hard, lam.EIGEN_LOG, True,
                                  lam.MODE_FREE, 1, 1e-13, 50, self.history, self.stress, self.plastic,
                                  self.result)

    def time_laminate_sweep(self, n):
        self._sweep()

    def track_newton_iterations(self, n):
        self._sweep()
        return int(self.result[:, lam.R_ITERATIONS].sum())

    track_newton_iterations.unit = "iterations"
