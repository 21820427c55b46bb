"""The shared implicit integrator: cost per step on the 1D heat equation at two sizes.

The problem's own work per step (one tridiagonal solve) is small, so the timings track the
engine's overhead per step (BDF combination, error estimate, step control).
"""

from __future__ import annotations

import numpy as np

from fastnai._kernels.tridiagonal import solve_tridiagonal
from fastnai.transient import integrate


class HeatEquation:
    """u_t = u_xx on [0, 1], u = 0 at both ends, box method on a uniform mesh."""

    def __init__(self, n_nodes: int):
        self.n_unknowns = n_nodes
        h = 1.0 / (n_nodes - 1)
        self.coupling = 1.0 / h**2
        self.lower = np.empty(n_nodes)
        self.diag = np.empty(n_nodes)
        self.upper = np.empty(n_nodes)
        self.work = np.empty(n_nodes)
        self.out = np.empty(n_nodes)

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        # alpha0 y - dt L y = -history, Dirichlet rows at both ends
        g = dt * self.coupling
        self.lower.fill(-g)
        self.upper.fill(-g)
        self.diag.fill(alpha0 + 2.0 * g)
        rhs = -history
        for i in (0, -1):
            self.lower[i] = self.upper[i] = 0.0
            self.diag[i] = 1.0
            rhs[i] = 0.0
        solve_tridiagonal(self.lower, self.diag, self.upper, rhs, self.out, self.work)
        return self.out.copy(), True, 1

    def error_weights(self, y, rtol):
        return 1e-8 + rtol * np.abs(y)


class TimeIntegrateHeatEquation:
    """Adaptive BDF2 from a sine mode to t = 0.05 (about 60-100 steps)."""

    params = [1_000, 10_000]
    param_names = ["n_nodes"]

    def setup(self, n_nodes):
        self.problem = HeatEquation(n_nodes)
        x = np.linspace(0.0, 1.0, n_nodes)
        self.y0 = np.sin(np.pi * x)
        self.time_integrate(n_nodes)

    def time_integrate(self, n_nodes):
        integrate(self.problem, self.y0, 0.0, 0.05, rtol=1e-5, store_states=False)

    def track_steps(self, n_nodes):
        traj = integrate(self.problem, self.y0, 0.0, 0.05, rtol=1e-5, store_states=False)
        return traj.stats.n_steps

    track_steps.unit = "steps"
