"""deposition model (SPEC 3.4) against closed forms, conservation and determinism."""

from __future__ import annotations

import math
import os
import signal

import numba
import numpy as np
import pytest
from scipy import constants

import fastnai
from fastnai.case import load_case
from fastnai.errors import CaseError, Interrupted
from fastnai.models import deposition as dep

F = constants.physical_constants["Faraday constant"][0]
VM = 23.78e-6


def make_case(protocol, **over):
    """A small deposition case: bare Na, 0.2 um cells, the given protocol; ``over``: keys."""
    raw = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "mesh": {"nx": 48, "ny": 40, "dx": "0.2 um"}, "protocol": protocol}
    return load_case(raw, over)


def plate(capacity="0.02 mA h cm^-2", current="0.5 mA cm^-2"):
    return [{"step": "plate", "current_density": current, "capacity": capacity}]


def flat_front_case(formulation, voltage=-0.06):
    """A flat, fully active deposit 3 um thick; electrolyte so fast that Phi = 0 and c = c_ref."""
    return make_case([{"step": "constant_voltage", "voltage": voltage, "duration": 200.0}], **{
        "mesh.nx": 4, "mesh.ny": 60, "nucleation.mode": "none",
        "initial.deposit_thickness": "3 um", "phase_field.formulation": formulation,
        "electrolyte.conductivity": 1e4, "electrolyte.diffusivity": 1e-3,
        "separator.thickness": 0.0, "solver.max_time_step": 2.0})


def front_speed_ratio(formulation, voltage, **over):
    """Measured flat-front speed over J V_m / F, J the Butler-Volmer current at ``voltage``."""
    case = flat_front_case(formulation, voltage).with_overrides(over)
    res = dep.simulate(case, progress=False)
    t = res.series["t"]
    h = res.series["na_inventory"] * VM  # deposit thickness from the phase field
    speed = np.polyfit(t[t > 20.0], h[t > 20.0], 1)[0]
    j = float(dep.bv_current(voltage, res.setup.j0, 0.5, 298.15))
    assert j < 0.0
    return speed / (-j * VM / F), res


@pytest.mark.parametrize("voltage", [-0.06, -0.15])
def test_flat_front_moves_at_the_faraday_speed_under_potential_control(voltage):
    """A flat front held at V advances at J V_m / F with J the Butler-Volmer current (3e-4:
    at -0.06 V the front moves half a cell in 200 s, and the growth's sub-cell discretisation
    leaves 2e-4; 1e-4 over whole cells, below), also at the largest time step the
    front-motion limit allows (Courant 0.2)."""
    ratio, res = front_speed_ratio("profile-preserving", voltage, **{"solver.max_time_step": 1e3})
    courant = np.max(res.series["time_step"]) * (-float(dep.bv_current(
        voltage, res.setup.j0, 0.5, 298.15))) * VM / F / res.setup.dx
    assert courant > 0.05
    assert ratio == pytest.approx(1.0, abs=3e-4)


def test_chen2015_front_runs_six_fifths_fast_under_potential_control():
    """Chen 2015 with L_eta = j0 / (F c_s 5 lam): the Allen-Cahn terms redistribute the source,
    and a flat front moves at the source's projection on the profile mode, 6/5 of J V_m / F
    (the inventory per charge is still exact under current control)."""
    ratio, _ = front_speed_ratio("chen2015", -0.06)
    assert 1.1 < ratio < 1.22


def test_na_inventory_follows_the_charge_under_current_control():
    """Phase-field inventory = integral of I dt / F (1e-6), the double layer's charge aside."""
    case = make_case(plate("0.05 mA h cm^-2"), **{"mesh.nx": 64, "mesh.ny": 48})
    res = dep.simulate(case, progress=False)
    ser = res.series
    gained = ser["na_inventory"] - ser["na_inventory"][0]
    charge = ser["deposited_charge"]
    double_layer = -res.setup.capacitance * (ser["overpotential"] - ser["overpotential"][0])
    stripped = ser["substrate_stripped"]
    faradaic = (charge - double_layer) / F
    assert charge[-1] == pytest.approx(0.05 * 3.6 * 1e4, rel=1e-9)
    assert np.max(np.abs(gained - stripped - faradaic)) <= 1e-6 * faradaic[-1]
    assert abs(gained[-1] - charge[-1] / F) <= 1e-5 * gained[-1]  # double layer: ~3e-6


def test_inventory_is_exact_without_a_double_layer():
    """No double layer, substrate all active: inventory equals integral I dt / F to 1e-9."""
    case = make_case(plate("0.02 mA h cm^-2"), **{
        "mesh.nx": 16, "nucleation.mode": "none", "electrode.double_layer_capacitance": 0.0,
        "initial.deposit_thickness": "1.5 um"})
    res = dep.simulate(case, progress=False)
    ser = res.series
    gained = ser["na_inventory"] - ser["na_inventory"][0]
    assert np.max(np.abs(gained - ser["deposited_charge"] / F)) <= 1e-9 * gained[-1]


def sand_time(c0, diffusivity, t_plus, current):
    """Sand's time of a binary electrolyte, pi D (c0 F)^2 / (4 ((1 - t+) I)^2)."""
    return math.pi * diffusivity * (c0 * F) ** 2 / (4.0 * ((1.0 - t_plus) * current) ** 2)


def test_sands_time_on_a_deep_column():
    """The salt at the front runs out at Sand's time on a column >= 6 sqrt(D t_s) deep (5 %),
    after c_front = c0 (1 - sqrt(t / t_s)) (5 % of c0)."""
    c0, d, tp, j = 100.0, 2.5e-10, 0.4, 50.0
    ts = sand_time(c0, d, tp, j)
    depth = 6.5 * math.sqrt(d * ts)
    case = make_case([{"step": "plate", "current_density": j, "duration": 1.02 * ts}], **{
        "mesh.nx": 1, "mesh.ny": 40, "mesh.dx": "0.5 um", "nucleation.mode": "none",
        "initial.deposit_thickness": "8 um", "electrolyte.concentration": c0,
        "electrolyte.diffusivity": d, "electrolyte.transference_number": tp,
        "separator.thickness": depth, "separator.porosity": 1.0,
        "separator.n_nodes": int(depth / 1e-6), "solver.max_time_step": ts / 400.0})
    res = dep.simulate(case, progress=False)
    t = res.series["t"]
    c_front = res.series["front_concentration"]
    crossed = np.flatnonzero(c_front < 0.01 * c0)
    assert crossed.size, "the salt never ran out"
    assert t[crossed[0]] == pytest.approx(ts, rel=0.05)
    mid = (t > 0.1 * ts) & (t < 0.9 * ts)
    expected = c0 * (1.0 - np.sqrt(t[mid] / ts))
    assert np.max(np.abs(c_front[mid] - expected)) < 0.05 * c0
    eta = res.series["overpotential"]
    assert eta[crossed[0]] < eta[mid].min()  # the voltage climbs as the salt runs out


def test_activation_counts_follow_the_poisson_law():
    """Sites held at a fixed overpotential activate with probability 1 - exp(-k T) (3 s.e.)."""
    duration = 0.5
    probe = dep.build(make_case(plate(), **{"mesh.nx": 400, "mesh.ny": 8,
                                             "substrate.site_spacing": "0.4 um"}))
    kt = constants.k * 298.15
    # the overpotential at which k T = ln 2 (p = 1/2)
    voltage = -math.sqrt(probe.f_theta * probe.barrier_coeff
                         / (kt * math.log(probe.prefactor * duration / math.log(2.0))))
    counts = []
    for seed in range(12):
        case = make_case([{"step": "constant_voltage", "voltage": voltage,
                           "duration": duration}], **{
            "mesh.nx": 400, "mesh.ny": 8, "substrate.site_spacing": "0.4 um",
            "nucleation.seed": seed, "electrolyte.conductivity": 1e4,
            "solver.max_time_step": 0.05, "output.n_snapshots": 1})
        cell_setup = dep.build(case)
        res = dep.simulate(case, progress=False)
        counts.append(res.series["nuclei_count"][-1])
    n_sites = cell_setup.site_ptr.size - 1
    barrier = cell_setup.f_theta * cell_setup.barrier_coeff / voltage**2 / (
        constants.k * 298.15)
    rate = cell_setup.prefactor * math.exp(-barrier)
    p = -math.expm1(-rate * duration)
    assert 0.1 < p < 0.9, p  # a test with power in both directions
    counts = np.asarray(counts)
    se = math.sqrt(n_sites * p * (1.0 - p) / counts.size)
    assert abs(counts.mean() - n_sites * p) <= 3.0 * se


def _strip_attrs(ds):
    ds = ds.copy()
    ds.attrs = {}
    return ds


def test_same_seed_same_bits_on_one_and_two_threads():
    """Coordinates and data variables are bitwise identical on 1 and 2 Numba threads."""
    case = make_case(plate("0.01 mA h cm^-2"), **{"mesh.nx": 64, "mesh.ny": 32})
    before = numba.get_num_threads()
    results = []
    try:
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n)
            results.append(_strip_attrs(dep.run(case, progress=False)))
    finally:
        numba.set_num_threads(before)
    a, b = results
    assert a.identical(b)
    assert a.nuclei_count.values[-1] > 0


def test_sigterm_mid_run_checkpoints_and_the_resume_repeats_the_bits(tmp_path, monkeypatch):
    """SIGTERM after 40 steps: Interrupted with a checkpoint; the resumed run ends with the
    uninterrupted run's bits and removes the checkpoint."""
    case = make_case(plate("0.01 mA h cm^-2"), **{"mesh.nx": 48, "mesh.ny": 32})
    whole = _strip_attrs(dep.run(case, progress=False))
    ckpt = tmp_path / "dep.ckpt.npz"
    step = dep.Stepper._step
    taken = []

    def signalled_step(self, h, stats):
        step(self, h, stats)
        taken.append(h)
        if len(taken) == 40:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler sets a flag; the step finishes

    with monkeypatch.context() as patch:
        patch.setattr(dep.Stepper, "_step", signalled_step)
        with pytest.raises(Interrupted) as info:
            fastnai.run(case, checkpoint=ckpt, checkpoint_every=1e9, progress=False)
    assert info.value.checkpoint_path == ckpt and ckpt.exists()
    resumed = _strip_attrs(fastnai.run(case, checkpoint=ckpt, resume=True, progress=False))
    assert resumed.identical(whole)
    assert not ckpt.exists()


def test_dead_na_labelling_on_constructed_fields():
    """Metal connected to an active site is live; a floating island and one on a passivated
    wall are dead; periodic x joins a deposit across the seam."""
    case = make_case(plate(), **{"mesh.nx": 40, "mesh.ny": 20, "substrate.site_spacing": "2 um",
                                 "substrate.site_layout": "regular"})
    setup = dep.build(case)
    cell = dep.Cell(case, setup)
    cell.site_active[:] = 0
    cell.site_active[0] = 1  # the first site only
    cell.refresh_wall()
    cols = np.flatnonzero(cell.wall_active)
    xi = np.zeros((20, 40))
    xi[0:4, cols] = 1.0  # live pillar on the active site
    xi[10:13, 20:24] = 1.0  # floating island
    xi[0:2, 30:33] = 1.0  # on the passivated wall
    cell.xi[:] = xi
    cell.update_mask()
    total = xi.sum()
    assert cell.dead_fraction == pytest.approx((12 + 6) / total)
    assert cell.mask[2, cols[0]] == 1 and cell.mask[11, 21] == 0
    # a deposit spanning the seam, connected to the active site through x = 0
    xi2 = np.zeros((20, 40))
    xi2[0:3, cols] = 1.0
    xi2[1, 0:cols[0] + 1] = 1.0
    xi2[1, 37:40] = 1.0
    xi2[1:5, 38] = 1.0
    cell.xi[:] = xi2
    cell.update_mask()
    assert cell.dead_fraction == 0.0
    assert cell.mask[4, 38] == 1


def _relax_bump(formulation, amplitude):
    """A cosine bump (3 um mean) relaxed by the profile terms alone (no current, no
    Gibbs-Thomson) for 7200 s, the time of 1 mA h cm-2 at 0.5 mA cm-2, at the front-motion
    step of 10 v_F. Returns (inventory change / 1 mA h cm-2 of Na, roughness before, after)."""
    case = make_case(plate("1 mA h cm^-2"), **{"mesh.nx": 64, "mesh.ny": 48,
                                               "phase_field.formulation": formulation})
    setup = dep.build(case)
    cell = dep.Cell(case, setup)
    y = (np.arange(48) + 0.5) * setup.dx
    x = (np.arange(64) + 0.5) * setup.dx
    height = 3e-6 + amplitude * np.cos(2 * np.pi * x / (64 * setup.dx))
    cell.xi[:] = 0.5 * (1.0 - np.tanh((y[:, None] - height[None, :]) / (2 * setup.lam)))
    cell.wall_active[:] = 1
    cell.mask[:] = 0
    rough0 = cell.morphology()[2]
    dt = 0.2 * setup.dx / (10 * VM * 5.0 / F)
    start = cell.inventory()
    for step in range(int(round(7200.0 / dt))):
        cell.step_index = step
        cell.profile(dt)
        cell.xi, cell.xi_star = cell.xi_star, cell.xi
    return abs(cell.inventory() - start) / (3.6e4 / F), rough0, cell.morphology()[2]


def test_curvature_alone_keeps_the_inventory_and_the_shape():
    """Profile-preserving terms, no current: the Na of a bumpy deposit (crest radius 5.5 um =
    14 interface widths) changes by < 1e-4 of 1 mA h cm-2 over its plating time, and the bump
    keeps its roughness (the drift grows with curvature: ~4e-4 at a 2.8 um crest radius)."""
    change, rough0, rough1 = _relax_bump("profile-preserving", 0.75e-6)
    assert change < 1e-4
    assert rough1 == pytest.approx(rough0, rel=0.02)


def test_chen2015_flattens_roughness_without_current():
    """The Li-tuned Chen 2015 Allen-Cahn terms flatten the same bump (> 10x less roughness)
    with no current at all: metal moved by curvature (SPEC 3.4)."""
    _, rough0, rough1 = _relax_bump("chen2015", 0.75e-6)
    assert rough1 < 0.1 * rough0


def test_calibrated_contact_angles_and_their_labels():
    """The calibrated angles land in the SPEC's range order and carry the calibration label."""
    bare = dep.build(make_case(plate()))
    vn = dep.build(make_case(plate(), **{"substrate.material": "VN"}))
    assert 45.0 < math.degrees(bare.contact_angle) < 60.0
    assert 30.0 < math.degrees(vn.contact_angle) < 42.0
    ads = dep.build(make_case(plate(), **{"substrate.contact_angle_model": "adsorption"}))
    assert ads.contact_angle == 0.0 and ads.f_theta == 0.0  # complete wetting: no barrier


def test_bv_plateaus_of_the_paper_kinetics():
    """Butler-Volmer alone needs 103 and 51 mV per electrode at 0.5 mA cm-2 (SPEC 3.4)."""
    assert dep.bv_overpotential(5.0, 0.68, 0.5, 298.15) * 1e3 == pytest.approx(103, abs=1)
    assert dep.bv_overpotential(5.0, 2.15, 0.5, 298.15) * 1e3 == pytest.approx(51, abs=1)


@pytest.mark.parametrize(("over", "text"), [
    ({"substrate.site_width": "0.3 um"}, "two cells"),
    ({"phase_field.interface_cells": 1.2}, "interface_cells"),
    ({"substrate.contact_angle_model": "given"}, "contact_angle"),
])
def test_bad_cases_are_clear_errors(over, text):
    with pytest.raises(CaseError, match=text):
        make_case(plate(), **over)


def test_protocol_needs_capacity_or_duration():
    with pytest.raises(CaseError, match="capacity and duration"):
        make_case([{"step": "plate", "current_density": 5.0}])


def test_a_site_that_never_activated_is_written(tmp_path):
    """site_activation_time is NaN for a site that never activated: the result says so
    (nan_means) and is written and read back, like every other undefined diagnostic."""
    from fastnai.io import read_dataset, write_dataset

    ds = dep.run(make_case(plate("0.0001 mA h cm^-2")), progress=False)
    times = ds.site_activation_time.values
    times[-1] = np.nan  # whether or not the short run left one inactive
    ds["site_activation_time"].values = times
    assert "nan_means" in ds.site_activation_time.attrs
    back = read_dataset(write_dataset(ds, tmp_path / "dep.nc"))
    assert np.isnan(back.site_activation_time.values[-1])


def test_a_step_that_cannot_meet_the_front_limit_is_a_convergence_error(monkeypatch):
    """The step-retry loop never commits an over-limit step: when the front would outrun the
    Courant limit even at the shortest step (here a front speed made infinite), the run stops
    with the rejected attempts as its history (exit 3)."""
    from fastnai.errors import ConvergenceError

    case = make_case(plate("0.001 mA h cm^-2"), **{"mesh.nx": 16, "mesh.ny": 16})
    advance = dep.Cell.advance

    def runaway(self, dt, mode, value):
        v, its, _ = advance(self, dt, mode, value)
        return v, its, math.inf

    monkeypatch.setattr(dep.Cell, "advance", runaway)
    with pytest.raises(ConvergenceError, match="the step was cut to 1e-12 s") as info:
        dep.simulate(case, progress=False)
    rows = info.value.history
    assert rows and rows[-1][1] == dep.cell.MIN_STEP and math.isinf(rows[-1][2])
    assert all(b[1] < a[1] for a, b in zip(rows, rows[1:], strict=False))  # each cut shorter


def test_multigrid_and_amg_solvers_give_the_same_run():
    """``electrolyte.solver``: the two paths solve the same equations to rtol 1e-8, so a
    nucleating plating run (separator column, site activation) follows the same trajectory:
    same steps and nuclei, voltages within a microvolt, Na inventory within 2e-5."""
    runs = {s: dep.simulate(make_case(plate(), **{"electrolyte.solver": s}), progress=False)
            for s in ("multigrid", "amg")}
    mg, amg = runs["multigrid"].series, runs["amg"].series
    assert mg["t"].size == amg["t"].size
    np.testing.assert_array_equal(mg["nuclei_count"], amg["nuclei_count"])
    np.testing.assert_allclose(mg["voltage"], amg["voltage"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mg["na_inventory"], amg["na_inventory"], rtol=0,
                               atol=2e-5 * np.max(amg["na_inventory"]))
    assert runs["multigrid"].stats["solver_n_preconditioner_builds"] == 2 * (mg["t"].size - 1)


def flat_plating_case(conservation="deposit"):
    """Galvanostatic plating of a flat, fully active deposit; Phi = 0 and c = c_ref."""
    return make_case([{"step": "plate", "current_density": "0.5 mA cm^-2", "duration": 600.0}],
                     **{"mesh.nx": 4, "mesh.ny": 60, "nucleation.mode": "none",
                        "initial.deposit_thickness": "3 um", "electrolyte.conductivity": 1e4,
                        "electrolyte.diffusivity": 1e-3, "separator.thickness": 0.0,
                        "phase_field.conservation": conservation})


def test_flat_plating_overpotential_is_exact_butler_volmer():
    """Steady flat plating at 0.5 mA cm-2: eta is the exact inverse of Butler-Volmer within
    1e-4 (relative) at every step after the double layer has charged. Without the deposit
    conservation the profile terms' loss is charged against the current and eta runs 0.1-0.2 %
    high: the check has teeth."""
    errors = {}
    for conservation in ("deposit", "none"):
        res = dep.simulate(flat_plating_case(conservation), progress=False)
        t, eta = res.series["t"], res.series["overpotential"]
        exact = dep.bv_overpotential(-5.0, res.setup.j0, 0.5, 298.15)
        errors[conservation] = np.max(np.abs(eta[t > 100.0] / exact - 1.0))
    assert errors["deposit"] <= 1e-4
    assert errors["none"] > 1e-3


def test_potential_control_current_is_butler_volmer():
    """A flat front held at -0.15 V for 200 s (3 cells of travel): the time-mean current is
    the Butler-Volmer current within 1e-4, and the profile terms added no Na at all."""
    res = dep.simulate(flat_front_case("profile-preserving", -0.15), progress=False)
    ser = res.series
    t, j, dt = ser["t"], ser["current_density"], ser["time_step"]
    late = t > 20.0
    mean = np.sum(j[late] * dt[late]) / np.sum(dt[late])
    assert mean / float(dep.bv_current(-0.15, res.setup.j0, 0.5, 298.15)) == pytest.approx(
        1.0, abs=1e-4)
    assert abs(ser["profile_na"][-1]) <= 1e-12 * (ser["na_inventory"][-1] - ser["na_inventory"][0])


def _nucleated_cell(conservation, steps=60):
    """A plating cell a few tens of steps after its first nuclei (0.5 mA cm-2)."""
    case = make_case(plate("1 mA h cm^-2"), **{"phase_field.conservation": conservation,
                                               "substrate.site_spacing": "1 um"})
    cell = dep.Cell(case, dep.build(case))
    for k in range(steps):
        dt = min(0.2, 1e-3 * 1.2**k)  # the double layer first, then growth
        v, _, _ = cell.advance(dt, "current", -5.0)
        cell.commit(dt, v)
        cell.t += dt
        cell.step_index += 1
        cell.update_mask()
        cell.activate(dt)
    return cell


def test_profile_terms_conserve_the_na_of_every_nucleus():
    """Around nucleating deposits of different sizes, one step of the profile terms changes
    the Na of every deposit region by less than 1e-12 of that deposit's Na; without the
    conservation the smallest nuclei lose a visible share (the check has teeth)."""
    changes = {}
    for conservation in ("deposit", "none"):
        cell = _nucleated_cell(conservation)
        region = cell.deposit_regions().ravel()
        assert region.max() >= 3  # several separate deposits
        cell.profile(0.2)
        n = region.max() + 1
        na = np.bincount(region, weights=cell.xi.ravel(), minlength=n)[1:]
        change = np.bincount(region, weights=(cell.xi_star - cell.xi).ravel(), minlength=n)[1:]
        changes[conservation] = np.max(np.abs(change) / na)
    assert changes["deposit"] <= 1e-12
    assert changes["none"] > 1e-6


def test_a_stalled_electrolyte_solve_is_a_convergence_error(monkeypatch):
    """A multigrid-CG solve that misses its tolerance stops the run with the residual history
    (exit status 3), never a silently wrong field."""
    import fastnai.electrolyte as fe
    from fastnai.errors import ConvergenceError

    monkeypatch.setattr(fe.kmg, "pcg", lambda *args: -1)
    with pytest.raises(ConvergenceError, match="multigrid-CG did not reach rtol") as err:
        fastnai.run(make_case(plate()), progress=False)
    assert err.value.exit_status == 3
    assert "history" in str(err.value)


@pytest.mark.parametrize("ny", [40, 4])
def test_deposition_figure_labels_every_axis_with_its_unit(tmp_path, ny):
    """Snapshots share y and one colour bar for xi; a thin box (4 cells) draws the transient
    alone; every labelled axis carries its unit; the spike label says what it is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastnai.plot import deposition_figure

    ds = fastnai.run(make_case(plate(), **{"mesh.ny": ny}), progress=False)
    shown = []
    real_save = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        shown.append(fig)
        return real_save(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt.Figure, "savefig", keep)
        path = deposition_figure(ds, tmp_path / "dep.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    axes = shown[0].axes
    labels = [a.get_xlabel() for a in axes] + [a.get_ylabel() for a in axes]
    assert all("(" in text and ")" in text for text in labels if text)
    assert not any("um" in text for text in labels)
    texts = [t.get_text() for a in axes for t in a.texts]
    assert any(t.startswith("nucleation spike") for t in texts)
    if ny >= 8:
        assert any("ξ" in a.get_ylabel() for a in axes)  # the colour bar
        assert len(axes) == 4 + 1 + 1
    else:
        assert len(axes) == 1
