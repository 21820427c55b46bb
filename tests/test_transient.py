"""The implicit time integrator against closed forms: orders, error control, events, balance, restarts."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from fastnai._kernels.tridiagonal import solve_tridiagonal
from fastnai.errors import ConvergenceError, FastnaiError
from fastnai.transient import (
    Checkpointer,
    ImplicitProblem,
    StepControl,
    integrate,
    read_checkpoint,
)

# --------------------------------------------------------------------------------------------
# test problems: each solves  M (alpha0 y + history) = dt f(t_new, y)  exactly


class Decay:
    """y' = -k y, y = exp(-k t)."""

    n_unknowns = 1

    def __init__(self, rate: float = 1.0, newton_fails_above: float = math.inf):
        self.rate = rate
        self.newton_fails_above = newton_fails_above

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        if dt > self.newton_fails_above:
            return y_guess, False, 8
        return -history / (alpha0 + dt * self.rate), True, 1

    def error_weights(self, y, rtol):
        return 1e-12 + rtol * np.abs(y)


class Ramp:
    """y' = 1 (BDF is exact on it) with events at y = level and at t = t_pulse."""

    n_unknowns = 1

    def __init__(self, level: float, t_pulse: float):
        self.level = level
        self.t_pulse = t_pulse

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        return (dt - history) / alpha0, True, 1

    def error_weights(self, y, rtol):
        return 1e-6 + rtol * np.abs(y)

    def event_functions(self, t, y):
        return np.array([y[0] - self.level, t - self.t_pulse])


class ProtheroRobinson:
    """y' = -lam (y - phi) + phi' with phi = tanh((t - t_c)/w): y = phi, a sharp front at t_c."""

    n_unknowns = 1

    def __init__(self, lam: float = 10.0, t_c: float = 5.0, width: float = 0.1):
        self.lam, self.t_c, self.width = lam, t_c, width

    def phi(self, t):
        return np.tanh((t - self.t_c) / self.width)

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        phi = self.phi(t_new)
        dphi = (1.0 - phi * phi) / self.width
        return (-history + dt * (self.lam * phi + dphi)) / (alpha0 + dt * self.lam), True, 1

    def error_weights(self, y, rtol):
        return rtol * (1.0 + np.abs(y))


class AlgebraicPair:
    """Index-1 DAE, M = diag(1, 0): y1' = -y2, 0 = y2 - y1; y1 = y2 = exp(-t)."""

    n_unknowns = 2

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        # row 1: alpha0 y1 + history_1 = -dt y2; row 2 (M = 0): 0 = dt (y2 - y1)
        y1 = -history[0] / (alpha0 + dt)
        return np.array([y1, y1]), True, 1

    def error_weights(self, y, rtol):
        return 1e-12 + rtol * np.abs(y)


class HeatSlab:
    """Heat equation c_t = D c_xx in a slab (0, L) by cell-centred finite volumes.

    Inflow j = flux + transfer (c_ext - c_0) at x = 0 and no flux at x = L. The mass matrix is
    the cell width h, so the step solves the tridiagonal system
    h (alpha0 c_i + history_i) = dt [g (c_(i+1) - c_i) - g (c_i - c_(i-1)) + delta_i0 j],
    g = D/h. The inventory is h sum(c) and its rate the inflow j.
    """

    def __init__(self, n_cells=50, length=1.0, diffusivity=1.0, flux=0.0, transfer=0.0, c_ext=0.0):
        self.n_unknowns = n_cells
        self.h = length / n_cells
        self.g = diffusivity / self.h
        self.flux, self.transfer, self.c_ext = flux, transfer, c_ext
        self.neighbours = np.full(n_cells, 2.0)
        self.neighbours[[0, -1]] = 1.0
        self.work = np.empty((5, n_cells))
        self.fluxes: list[float] = []  # recorded in on_accept: the model's own output series
        self.label = "charge"

    def solve_step(self, y_guess, alpha0, history, t_new, dt):
        lower, diag, upper, rhs, work = self.work
        lower[:] = -dt * self.g
        upper[:] = -dt * self.g
        diag[:] = self.h * alpha0 + dt * self.g * self.neighbours
        diag[0] += dt * self.transfer
        rhs[:] = -self.h * history
        rhs[0] += dt * (self.flux + self.transfer * self.c_ext)
        out = np.empty(self.n_unknowns)
        solve_tridiagonal(lower, diag, upper, rhs, out, work)
        return out, True, 1

    def error_weights(self, y, rtol):
        return rtol * (1e-3 + np.abs(y))

    def inflow(self, y):
        return self.flux + self.transfer * (self.c_ext - y[..., 0])

    def inventory(self, y):
        return self.h * np.sum(y, axis=-1)

    def event_functions(self, t, y):
        return np.array([10.0 - y[0]])  # never fires in these runs; exercises the event state

    def on_accept(self, t, y):
        self.fluxes.append(float(self.inflow(y)))

    def checkpoint_state(self):
        return {"fluxes": np.array(self.fluxes), "label": self.label, "n_recorded": len(self.fluxes)}

    def restore_state(self, state):
        assert isinstance(state["label"], str)
        self.label = state["label"]
        self.fluxes = list(state["fluxes"])
        assert int(state["n_recorded"]) == len(self.fluxes)


def observed_orders(errors):
    errors = np.asarray(errors)
    return np.log2(errors[:-1] / errors[1:])


def test_problems_satisfy_the_protocol():
    for problem in (Decay(), Ramp(1.0, 1.0), ProtheroRobinson(), AlgebraicPair(), HeatSlab()):
        assert isinstance(problem, ImplicitProblem)


# --------------------------------------------------------------------------------------------
# orders with fixed steps


@pytest.mark.parametrize(("method", "order"), [("bdf1", 1.0), ("bdf2", 2.0)])
def test_fixed_step_order_on_exponential_decay(method, order):
    errors = []
    for n_steps in (20, 40, 80, 160):
        traj = integrate(Decay(2.0), np.array([1.0]), 0.0, 1.0, dt_initial=1.0 / n_steps,
                         adaptive=False, method=method)
        assert traj.dt.size == n_steps and traj.t_final == 1.0
        errors.append(abs(traj.y_final[0] - math.exp(-2.0)))
    np.testing.assert_allclose(observed_orders(errors), order, atol=0.1)


@pytest.mark.parametrize(("method", "order"), [("bdf1", 1.0), ("bdf2", 2.0)])
def test_fixed_step_order_on_heat_equation_eigenmodes(method, order):
    # cos(m pi (i + 1/2)/n) are exact eigenvectors of the no-flux finite-volume Laplacian, so
    # the semi-discrete solution is known exactly and only the time error is measured
    n, length, diffusivity, t_end = 40, 1.0, 1.0, 0.1
    h = length / n
    i = np.arange(n)
    modes = [(np.cos(m * np.pi * (i + 0.5) / n), -4.0 * diffusivity / h**2 * np.sin(m * np.pi / (2 * n)) ** 2)
             for m in (1, 3)]
    y0 = modes[0][0] + 0.5 * modes[1][0]
    exact = np.exp(modes[0][1] * t_end) * modes[0][0] + 0.5 * np.exp(modes[1][1] * t_end) * modes[1][0]
    errors = []
    for n_steps in (20, 40, 80, 160):
        traj = integrate(HeatSlab(n, length, diffusivity), y0, 0.0, t_end, dt_initial=t_end / n_steps,
                         adaptive=False, method=method, events=False)
        errors.append(np.max(np.abs(traj.y_final - exact)))
    np.testing.assert_allclose(observed_orders(errors), order, atol=0.1)


def test_mass_matrix_convention_gives_second_order_on_an_index_one_dae():
    errors = []
    for n_steps in (20, 40, 80):
        traj = integrate(AlgebraicPair(), np.array([1.0, 1.0]), 0.0, 1.0, dt_initial=1.0 / n_steps,
                         adaptive=False)
        errors.append(np.max(np.abs(traj.y_final - math.exp(-1.0))))
    np.testing.assert_allclose(observed_orders(errors), 2.0, atol=0.1)
    traj = integrate(AlgebraicPair(), np.array([1.0, 1.0]), 0.0, 1.0, rtol=1e-6)
    np.testing.assert_allclose(traj.y_final, math.exp(-1.0), rtol=1e-4)


def test_step_pattern_bdf1_start_then_bdf2_with_documented_coefficients():
    traj = integrate(Decay(), np.array([1.0]), 0.0, 1.0, rtol=1e-5, dt_initial=1e-3)
    # the start is two BDF1 half steps (step doubling), every later step BDF2
    assert list(traj.order[:3]) == [1, 1, 2] and np.all(traj.order[2:] == 2)
    np.testing.assert_array_equal(traj.dt[:2], [5e-4, 5e-4])
    omega = traj.dt[2:] / traj.dt[1:-1]
    np.testing.assert_allclose(traj.alpha0[2:], (1 + 2 * omega) / (1 + omega), rtol=1e-15)
    np.testing.assert_allclose(traj.alpha2[2:], omega**2 / (1 + omega), rtol=1e-15)
    assert np.all(omega <= StepControl().max_step_ratio * (1 + 1e-12))


# --------------------------------------------------------------------------------------------
# adaptive control


def test_adaptive_global_error_follows_rtol_on_a_front():
    problem = ProtheroRobinson()
    rtols = np.array([1e-3, 1e-4, 1e-5, 1e-6])
    errors, n_steps = [], []
    for rtol in rtols:
        traj = integrate(problem, np.array([problem.phi(0.0)]), 0.0, 10.0, rtol=rtol)
        errors.append(np.max(np.abs(traj.y[:, 0] - problem.phi(traj.t))))
        n_steps.append(traj.stats.n_steps)
    errors = np.array(errors)
    # error per step: global error ~ n_steps * rtol ~ rtol^(2/3) for BDF2; it must fall steadily
    slope = np.polyfit(np.log(rtols), np.log(errors), 1)[0]
    assert 0.6 < slope < 1.1, slope
    assert np.all(errors < 100 * rtols), errors / rtols
    assert np.all(np.diff(n_steps) > 0)


def test_adaptive_steps_are_long_on_smooth_parts_and_short_at_the_front():
    problem = ProtheroRobinson()
    traj = integrate(problem, np.array([problem.phi(0.0)]), 0.0, 10.0, rtol=1e-4, dt_initial=1e-2)
    t_end_of_step = traj.t[1:]
    smooth = (t_end_of_step < 3.0) | (t_end_of_step > 7.0)
    front = np.abs(t_end_of_step - 5.0) < 0.3
    assert traj.dt[smooth].max() > 20 * traj.dt[front].min()
    # most of the work is spent within 0.3 of the front although it is 6 % of the interval
    assert np.count_nonzero(front) > np.count_nonzero(smooth)


def test_max_step_is_respected():
    traj = integrate(Decay(), np.array([1.0]), 0.0, 10.0, rtol=1e-2, max_step=0.25)
    assert traj.dt.max() <= 0.25


# --------------------------------------------------------------------------------------------
# retries and failure


def test_newton_failures_halve_the_step_and_the_run_completes():
    traj = integrate(Decay(newton_fails_above=0.05), np.array([1.0]), 0.0, 3.0, rtol=1e-3, dt_initial=0.4)
    assert traj.stats.n_rejected_newton >= 3
    assert traj.dt.max() <= 0.05
    assert traj.status == "finished" and traj.t_final == 3.0
    assert abs(traj.y_final[0] - math.exp(-3.0)) < 1e-3


def test_impossible_problem_raises_convergence_error_with_step_history():
    control = StepControl(max_rejections=12)
    with pytest.raises(ConvergenceError, match="rejected 12 times") as info:
        integrate(Decay(newton_fails_above=-1.0), np.array([1.0]), 0.0, 1.0, dt_initial=0.1, control=control)
    history = info.value.history
    assert len(history) == 12
    t, dt, err, newton = (np.array(column) for column in zip(*history, strict=True))
    np.testing.assert_array_equal(t, 0.0)
    np.testing.assert_allclose(dt, 0.1 * 0.5 ** np.arange(12))
    assert np.all(np.isinf(err)) and np.all(newton == 8)
    assert isinstance(info.value, FastnaiError)


# --------------------------------------------------------------------------------------------
# events


def test_event_on_the_state_is_located_to_the_tolerance():
    tolerance = 1e-10
    traj = integrate(Ramp(level=0.3, t_pulse=0.7), np.array([0.0]), 0.0, 1.0, rtol=1e-6, dt_initial=0.01,
                     event_tolerance=tolerance)
    assert traj.status == "event" and traj.event.indices == (0,)
    # the integration stops just after the crossing (y = t exactly for BDF on y' = 1)
    assert 0.0 <= traj.event.t - 0.3 <= tolerance
    assert traj.t_final == traj.event.t and traj.y_final[0] >= 0.3
    assert traj.stats.n_event_solves > 0


def test_time_event_ends_a_pulse_and_events_can_be_switched_off():
    traj = integrate(Ramp(level=5.0, t_pulse=0.7), np.array([0.0]), 0.0, 1.0, dt_initial=0.01,
                     event_tolerance=1e-9)
    assert traj.event.indices == (1,) and 0.0 <= traj.event.t - 0.7 <= 1e-9
    traj = integrate(Ramp(level=0.3, t_pulse=0.7), np.array([0.0]), 0.0, 1.0, dt_initial=0.01, events=False)
    assert traj.status == "finished" and traj.event is None and traj.t_final == 1.0


def test_event_on_a_decay_matches_the_closed_form_crossing():
    class HalfLife(Decay):
        def event_functions(self, t, y):
            return y - 0.5

    traj = integrate(HalfLife(), np.array([1.0]), 0.0, 5.0, rtol=1e-9, event_tolerance=1e-12)
    assert traj.event.indices == (0,)
    assert abs(traj.event.t - math.log(2.0)) < 1e-6
    assert 0.0 <= 0.5 - traj.y_final[0] < 1e-6


# --------------------------------------------------------------------------------------------
# conservation with the integrator's own quadrature


def test_constant_flux_inventory_change_equals_integrated_flux():
    problem = HeatSlab(n_cells=100, flux=2.5)
    traj = integrate(problem, np.zeros(100), 0.0, 0.5, rtol=1e-4, dt_initial=1e-4)
    change = problem.inventory(traj.y) - problem.inventory(traj.y[0])
    integrated = traj.integrate_series(problem.inflow(traj.y))
    np.testing.assert_allclose(integrated[1:], change[1:], rtol=1e-12, atol=0)
    assert math.isclose(traj.quadrature_weights() @ problem.inflow(traj.y[1:]), change[-1], rel_tol=1e-12)


def test_state_dependent_flux_balances_only_with_the_bdf_weights():
    problem = HeatSlab(n_cells=100, transfer=2.0, c_ext=1.0)
    traj = integrate(problem, np.zeros(100), 0.0, 0.5, rtol=1e-4, dt_initial=1e-4)
    change = problem.inventory(traj.y) - problem.inventory(traj.y[0])
    inflow = problem.inflow(traj.y)
    np.testing.assert_allclose(traj.integrate_series(inflow)[1:], change[1:], rtol=1e-12, atol=0)
    np.testing.assert_allclose(traj.integrate_series(inflow[1:])[-1], change[-1], rtol=1e-12)
    np.testing.assert_allclose(traj.quadrature_weights() @ inflow[1:], change[-1], rtol=1e-12)
    # the rectangle rule on the same steps does not balance the discrete inventory
    rectangle = np.sum(traj.dt * inflow[1:])
    assert abs(rectangle - change[-1]) > 1e-4 * change[-1]
    # the same identity holds through the model's own record of the flux (on_accept)
    np.testing.assert_array_equal(problem.fluxes, inflow[1:])


def test_bdf_weights_for_constant_steps_are_dt_times_one_minus_powers_of_a_third():
    traj = integrate(Decay(), np.array([1.0]), 0.0, 1.0, dt_initial=0.05, adaptive=False)
    w = traj.quadrature_weights() / 0.05
    k = np.arange(traj.dt.size, 0, -1)  # steps to the end, counted from 1
    np.testing.assert_allclose(w[1:], 1.0 - 3.0 ** -k[1:], rtol=1e-12)
    # the BDF1 first step is followed by BDF2 steps that carry 1/3 of its increment onwards
    assert math.isclose(w[0], 1.0 + (1.0 - 3.0 ** -(k[0] - 1)) / 2.0, rel_tol=1e-12)


def slab_cell_averages(edges, t, length, diffusivity, flux, n_terms=4000):
    """Cell averages of the constant-flux slab solution (Crank, Mathematics of Diffusion, 4.3)."""
    a, b = edges[:-1], edges[1:]
    mean_square = ((length - a) ** 3 - (length - b) ** 3) / (3.0 * (b - a))  # mean of (L - x)^2
    c = flux * t / length + flux * length / diffusivity * ((3.0 * mean_square - length**2) / (6.0 * length**2))
    m = np.arange(1, n_terms + 1)[:, None]
    k = m * np.pi / length
    mean_cos = (np.sin(k * b) - np.sin(k * a)) / (k * (b - a))  # mean of cos(k x) over the cell
    decay = np.exp(-diffusivity * k**2 * t)
    return c - flux * length / diffusivity * 2.0 / np.pi**2 * np.sum(mean_cos * decay / m**2, axis=0)


def test_constant_flux_into_slab_matches_series_solution():
    n, length, diffusivity, flux = 100, 1.0, 1.0, 1.0
    h = length / n
    edges = np.linspace(0.0, length, n + 1)
    np.testing.assert_allclose(slab_cell_averages(edges, 0.0, length, diffusivity, flux), 0.0, atol=1e-8)
    problem = HeatSlab(n, length, diffusivity, flux=flux)
    traj = integrate(problem, np.zeros(n), 0.0, 0.5, rtol=1e-4, dt_initial=5e-4)
    # the controller resolves the initial layer with steps of ~1e-6 s, when sqrt(D t) is far below
    # one cell: compare once the layer spans about three cells (the error before is spatial)
    resolved = np.flatnonzero(traj.t >= 10.0 * h**2 / diffusivity)
    relative = []
    for k in resolved:
        exact = slab_cell_averages(edges, traj.t[k], length, diffusivity, flux, n_terms=400)
        relative.append(np.max(np.abs(traj.y[k] - exact)) / np.max(np.abs(exact)))
    assert max(relative) < 0.01, max(relative)
    assert relative[-1] < 1e-3


# --------------------------------------------------------------------------------------------
# checkpoints, resume and SIGTERM


def robin_run(problem, **kwargs):
    return integrate(problem, np.zeros(problem.n_unknowns), 0.0, 0.5, rtol=1e-4, dt_initial=1e-4, **kwargs)


def assert_same_run(a, b, problem_a, problem_b):
    for name in ("t", "y", "y_final", "dt", "order", "alpha0", "alpha2", "error", "newton_iterations"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.stats == b.stats and a.controller == b.controller and a.status == b.status
    np.testing.assert_array_equal(problem_a.fluxes, problem_b.fluxes)
    assert problem_b.label == problem_a.label


class Killed(Exception):
    """Stands in for a hard kill in the middle of a run."""


def test_checkpoint_and_resume_end_bitwise_identical(tmp_path):
    reference_problem = HeatSlab(n_cells=60, transfer=2.0, c_ext=1.0)
    reference = robin_run(reference_problem)

    class Crashing(HeatSlab):
        def on_accept(self, t, y):
            super().on_accept(t, y)
            if len(self.fluxes) == 25:
                raise Killed

    path = tmp_path / "run.ckpt.npz"
    checkpointer = Checkpointer(path, every_seconds=0.0)
    with pytest.raises(Killed):
        robin_run(Crashing(n_cells=60, transfer=2.0, c_ext=1.0), checkpoint=checkpointer)
    assert checkpointer.n_written == 23  # every macro step before the crash; the start counts once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt.npz"]  # no temporary left
    saved = read_checkpoint(path)
    assert saved["model"]["label"] == "charge" and saved["model"]["n_recorded"] == 24
    assert saved["stat_n_steps"] == 24 and saved["hist_y"].shape == (3, 60)

    resumed_problem = HeatSlab(n_cells=60, transfer=2.0, c_ext=1.0)
    resumed_problem.label = "overwritten by restore_state"
    resumed = robin_run(resumed_problem, resume_from=path)
    assert_same_run(reference, resumed, reference_problem, resumed_problem)


def test_resume_refuses_a_checkpoint_of_different_settings(tmp_path):
    path = tmp_path / "run.ckpt.npz"
    class Crashing(HeatSlab):
        def on_accept(self, t, y):
            super().on_accept(t, y)
            if len(self.fluxes) == 5:
                raise Killed

    with pytest.raises(Killed):
        robin_run(Crashing(n_cells=10), checkpoint=Checkpointer(path, every_seconds=0.0))
    with pytest.raises(FastnaiError, match="rtol"):
        integrate(HeatSlab(n_cells=10), np.zeros(10), 0.0, 0.5, rtol=1e-3, resume_from=path)
    with pytest.raises(FastnaiError, match="max_factor"):
        robin_run(HeatSlab(n_cells=10), control=StepControl(max_factor=3.0), resume_from=path)
    resumed = robin_run(HeatSlab(n_cells=10), resume_from=path)  # the matching settings continue
    assert resumed.status == "finished" and resumed.stats.n_steps > 5
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(FastnaiError, match="cannot read checkpoint"):
        read_checkpoint(path)


def test_sparse_storage_run_resumes_to_the_same_final_state(tmp_path):
    reference = robin_run(HeatSlab(n_cells=30, transfer=2.0, c_ext=1.0), store_states=False)
    assert reference.y is None and reference.t.size == reference.stats.n_steps + 1

    class Crashing(HeatSlab):
        def on_accept(self, t, y):
            super().on_accept(t, y)
            if len(self.fluxes) == 40:
                raise Killed

    path = tmp_path / "sparse.ckpt.npz"
    with pytest.raises(Killed):
        robin_run(Crashing(n_cells=30, transfer=2.0, c_ext=1.0), store_states=False,
                  checkpoint=Checkpointer(path, every_seconds=0.0))
    assert "rec_y" not in read_checkpoint(path)
    resumed = robin_run(HeatSlab(n_cells=30, transfer=2.0, c_ext=1.0), store_states=False, resume_from=path)
    np.testing.assert_array_equal(resumed.y_final, reference.y_final)
    np.testing.assert_array_equal(resumed.t, reference.t)


class Stop(Exception):
    """What a protocol runner's hook raises on a signal."""


def test_step_hook_state_resumes_bitwise_and_what_it_raises_propagates():
    """The engine state a step hook takes (as the runner's checkpoints do) continues the
    integration to the same bits; an exception in the hook ends the integration."""
    reference = robin_run(HeatSlab(n_cells=20), store_states=False)
    saved = {}

    def hook(engine_state):
        saved.setdefault("calls", 0)
        saved["calls"] += 1
        if saved["calls"] == 7:
            saved["state"] = engine_state()
            raise Stop

    with pytest.raises(Stop):
        robin_run(HeatSlab(n_cells=20), store_states=False, step_hook=hook)
    assert int(saved["state"]["stat_n_steps"]) >= 7  # the first step is two half steps
    resumed = robin_run(HeatSlab(n_cells=20), store_states=False, resume_from=saved["state"])
    np.testing.assert_array_equal(resumed.y_final, reference.y_final)
    np.testing.assert_array_equal(resumed.t, reference.t)


# --------------------------------------------------------------------------------------------
# progress


def test_progress_callback_and_log_lines(caplog):
    calls = []
    traj = integrate(Decay(), np.array([1.0]), 0.0, 1.0, progress=lambda t, stats: calls.append(t),
                     progress_interval=0.0)
    # once per step but the last (the start's two half steps count once), and at the end
    assert calls[-1] == 1.0 and len(calls) == traj.stats.n_steps - 1
    with caplog.at_level(logging.INFO, logger="fastnai.transient"):
        integrate(Decay(), np.array([1.0]), 0.0, 1.0, progress_interval=0.0)
    assert any("steps" in r.getMessage() and "t = 1 s" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastnai.transient"):
        integrate(Decay(), np.array([1.0]), 0.0, 1.0, progress=False, progress_interval=0.0)
    assert not caplog.records
