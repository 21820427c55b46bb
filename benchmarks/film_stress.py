"""film_stress end to end (SPEC 3.3): the quasi-static sodiation cycle of the seed's graded film
at two layer counts, a GITT run with Na diffusing through the film, and one implicit step of the
film-diffusion kernel."""

from __future__ import annotations

import numpy as np

from fastnai._kernels import film_diffusion as kfd
from fastnai.case import load_case
from fastnai.models import film_stress

from .models import seed_case_path


class TimeFilmStressCycle:
    """Sodiation to theta = 1 and back (80 states, 4 increments each) through the laminate."""

    params = [60, 600]
    param_names = ["film_layers"]

    def setup(self, film_layers):
        self.case = load_case(seed_case_path("film_stress_bisb_graded.toml"),
                              {"mesh.film_layers": film_layers})
        film_stress.run(self.case)

    def time_run(self, film_layers):
        film_stress.run(self.case)


class TimeFilmGitt:
    """Two GITT pulses with relaxation on the graded film (BDF2 + the laminate at every step)."""

    params = [60, 600]
    param_names = ["film_layers"]

    def setup(self, film_layers):
        raw = {"model": {"kind": "film_stress", "sodiation": "diffusion"},
               "composition": {"profile": "process", "mean": 0.33},
               "mesh": {"film_layers": film_layers}, "initial": {"soc": 0.3},
               "protocol": [{"step": "gitt", "c_rate": 0.1, "cutoff_voltage": 0.0,
                             "pulse_duration": 30.0, "rest_duration": 3000.0, "n_pulses": 2}]}
        self.case = load_case(raw)
        ds = film_stress.run(self.case)
        self.steps = int(ds.attrs["solver_n_steps"])

    def time_run(self, film_layers):
        film_stress.run(self.case)

    def track_steps(self, film_layers):
        return self.steps

    track_steps.unit = "steps"


class TimeFilmDiffusionStep:
    """One implicit Newton solve of the film-diffusion kernel under current control."""

    params = [200, 20_000]
    param_names = ["n_cells"]

    def setup(self, n_cells):
        rng = np.random.default_rng(0)
        self.h = np.full(n_cells, 600e-9 / n_cells)
        self.c_max = np.full(n_cells, 1.56e5)
        self.d = rng.uniform(1e-16, 1e-15, n_cells)
        self.beta = np.full(n_cells, 2.8)
        self.sigma_h = np.zeros(n_cells)
        self.sc = np.zeros(kfd.N_SCALARS)
        self.sc[kfd.S_VT] = 0.025693
        self.sc[kfd.S_I0] = 1.0
        self.sc[kfd.S_ALPHA] = 0.5
        self.sc[kfd.S_U0] = 0.6
        self.sc[kfd.S_VALUE] = -2.5
        self.theta0 = np.full(n_cells, 0.3)
        self.ws = kfd.workspace(n_cells)
        self.time_step(n_cells)

    def time_step(self, n_cells):
        theta = self.theta0.copy()
        kfd.newton(theta, -self.theta0, 1.0, 1.0, self.h, self.c_max, self.d, self.beta,
                   self.sigma_h, self.sc, 1e-10, 50, *self.ws)
