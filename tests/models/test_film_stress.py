"""film_stress against closed forms and its contracts (SPEC 3.3, 4).

The kernel's own checks (radial return, Stoney, Timoshenko, quadrature order) are in
tests/kernels/test_laminate.py; these check the model around it: composition profiles,
property interpolation, the reported quantities and the hand-worked graded-vs-uniform numbers of
SPEC 3.3.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import fastnai
from fastnai._kernels import film_diffusion as kfd
from fastnai._kernels import laminate as klam
from fastnai.errors import CaseError
from fastnai.models import film_stress as fs
from fastnai.models.film_stress import composition as comp

REPO = Path(__file__).resolve().parents[2]

ELASTIC = {"model.plasticity": False, "model.kinematics": "linear"}
#: the host moduli at every state: SPEC 3.3's hand calculation
HOST_MODULI = {"bismuth.sodiated_youngs_modulus": 32e9, "antimony.sodiated_youngs_modulus": 55e9,
               "bismuth.sodiated_poisson_ratio": 0.33, "antimony.sodiated_poisson_ratio": 0.25}


def case(composition=None, protocol=None, **overrides):
    cfg = {"model": {"kind": "film_stress"}, "composition": composition or {"profile": "uniform"},
           "protocol": protocol or [{"step": "sodiate", "soc": 1.0, "n_states": 10}]}
    return fastnai.load_case(cfg, {k.replace("__", "."): v for k, v in overrides.items()})


# ---------------------------------------------------------------------------------------------
# composition


def test_process_profile_is_the_papers_recipe():
    """x_Bi = 1/(2 + q s) with the mean fixed: q ~ 2.37, 0.50 -> 0.23 for a mean of 0.33."""
    q = comp.process_rate(0.33)
    assert q == pytest.approx(2.37, abs=0.01)
    assert math.log1p(q / 2) / q == pytest.approx(0.33, abs=1e-13)
    ends = comp.process_profile(np.array([0.0, 1.0]), 0.33)
    np.testing.assert_allclose(ends, [0.5, 1 / (2 + q)], rtol=1e-14)
    assert ends[1] == pytest.approx(0.23, abs=0.005)


@pytest.mark.parametrize("mean", [0.1, 0.33, 0.45])
def test_process_profile_averages_to_the_requested_mean(mean):
    """The layers sample the profile at their midpoints: second order in the layer count."""
    errors = []
    for n in (20, 40, 80):
        stack = fs.build(case({"profile": "process", "mean": mean}, mesh__film_layers=n))
        errors.append(abs(np.mean(stack.x_bi) - mean))
    assert errors[-1] < 1e-3 * mean
    assert math.log2(errors[1] / errors[2]) == pytest.approx(2.0, abs=0.05)


def test_butler_volmer_process_profile_keeps_the_mean_and_reduces_to_the_concentration_one():
    s = np.linspace(0, 1, 2001)
    base = comp.process_profile(s, 0.3)
    same = comp.process_profile(s, 0.3, bath_model="butler_volmer", exchange_ratio=1.0)
    np.testing.assert_allclose(same, base, rtol=1e-12)
    bv = comp.process_profile(s, 0.3, bath_model="butler_volmer", exchange_ratio=2.0,
                              potential_gap=-0.02)
    assert np.trapezoid(bv, s) == pytest.approx(0.3, rel=1e-6)
    assert np.all(np.diff(bv) < 0)  # still Bi-rich at the bottom


def test_linear_and_tabulated_profiles():
    s = np.array([0.0, 0.25, 1.0])
    lin = case({"profile": "linear", "bottom": 0.66, "top": 0.0})
    np.testing.assert_allclose(comp.composition_profile(lin, s), [0.66, 0.495, 0.0])
    tab = case({"profile": "tabulated", "fractions": [0.0, 0.5, 1.0], "x_bi": [0.6, 0.2, 0.2]})
    np.testing.assert_allclose(comp.composition_profile(tab, s), [0.6, 0.4, 0.2])


@pytest.mark.parametrize("composition, match", [
    ({"profile": "linear", "bottom": 1.0}, "needs composition.bottom and composition.top"),
    ({"profile": "linear", "bottom": 1.0, "top": 0.0, "mean": 0.33}, "averages 0.5"),
    ({"profile": "tabulated", "fractions": [0.0, 1.0], "x_bi": [0.5]}, "of one length"),
    ({"profile": "tabulated", "fractions": [0.0, 0.7, 0.5, 1.0], "x_bi": [0.5] * 4},
     "rise strictly"),
    ({"profile": "process", "mean": 0.6}, "means below 0.5"),
])
def test_bad_compositions_are_case_errors(composition, match):
    with pytest.raises(CaseError, match=match):
        case(composition)


def test_a_desodiation_that_goes_up_is_a_case_error():
    with pytest.raises(CaseError, match="goes up"):
        case(protocol=[{"step": "sodiate", "soc": 0.5}, {"step": "desodiate", "soc": 0.7}])


# ---------------------------------------------------------------------------------------------
# mechanics through the model


@pytest.mark.parametrize("profile", [{"profile": "uniform"},
                                     {"profile": "linear", "bottom": 1.0, "top": 0.0}])
def test_rigid_substrate_gives_the_biaxial_eigenstress_exactly(profile):
    """Small strain, elastic, rigid substrate: sigma = -M(theta, x) beta(x) theta / 3 everywhere."""
    c = case(profile, **ELASTIC, substrate__constraint="rigid")
    ds = fastnai.run(c)
    stack = fs.build(c)
    x = np.repeat(stack.x_bi, 2)
    beta = comp.mix(x, 2.51, 2.93)
    theta = ds.soc.values[:, None]
    m0 = comp.mix(x, 32e9, 55e9) / (1 - comp.mix(x, 0.33, 0.25))
    m1 = comp.mix(x, 20e9, 27e9) / (1 - comp.mix(x, 0.3, 0.3))
    exact = -(m0 + (m1 - m0) * theta) * beta * theta / 3
    np.testing.assert_allclose(ds.sigma_xx.values, exact, rtol=1e-13, atol=1e-3)


def test_thin_film_curvature_is_stoneys():
    """600 nm on 100 um Cu: kappa = 6 sigma_f h_f / (M_s h_s^2) within 1 % (the Stoney
    error is ~(1 - 4 M_f/M_s) h_f/h_s, 0.3 % here), over the reference thickness."""
    ds = fastnai.run(case(**ELASTIC, **HOST_MODULI))
    m_s = 120e9 / (1 - 0.34)
    h_f, h_s = 600e-9, 100e-6
    for k in range(1, ds.soc.size):
        sigma_f = float(ds.mean_film_stress[k])
        stoney = -6 * sigma_f * h_f / (m_s * h_s**2)  # compressive film: film side convex
        assert float(ds.substrate_curvature[k]) == pytest.approx(stoney, rel=0.01)


@pytest.mark.parametrize("bottom, top, interface, peak", [
    (0.66, 0.0, (-0.17, -0.16), (0.14, 0.175)),
    (1.0, 0.0, (-0.35, -0.31), (0.14, 0.175)),
])
def test_graded_vs_solid_solution_matches_the_hand_calculation(bottom, top, interface, peak):
    """SPEC 3.3, worked by hand (linear elastic, uniform theta, host moduli): against the
    solid solution x = 0.33 the 0.66 -> 0 film's interface stress is 16-17 % lower and its peak
    14-17 % higher; the 1 -> 0 film's interface stress 31-35 % lower."""
    solid = fastnai.run(case(**ELASTIC, **HOST_MODULI))
    graded = fastnai.run(case({"profile": "linear", "bottom": bottom, "top": top},
                              **ELASTIC, **HOST_MODULI))
    d_int = float(graded.interface_stress[-1] / solid.interface_stress[-1]) - 1
    d_peak = float(graded.peak_film_stress[-1] / solid.peak_film_stress[-1]) - 1
    assert interface[0] <= d_int <= interface[1]
    assert peak[0] <= d_peak <= peak[1]
    # the graded film's peak moves to the Sb-rich surface; the solid solution's is at the Cu
    assert float(graded.peak_stress_height[-1]) > 0.95 * 600e-9
    assert float(solid.peak_stress_height[-1]) < 0.05 * 600e-9


def test_interface_stress_is_the_bottom_layers_stress_at_its_face():
    """Elastic stress is linear in z inside a layer: the extrapolation to z = 0 equals the
    eps0 of the plate evaluated there."""
    c = case(**ELASTIC)
    result = fs.simulate(c)
    stack = result.stack
    q = 2 * stack.n_substrate
    m = stack.modulus0[stack.n_substrate] + (stack.modulus1[stack.n_substrate]
                                             - stack.modulus0[stack.n_substrate]) * result.soc
    e_star = stack.beta[stack.n_substrate] * result.soc / 3
    exact = m * (result.results[:, 0] - e_star)  # eps at z = 0 is eps0
    np.testing.assert_allclose(fs.interface_stress(result), exact, rtol=1e-10, atol=1e-3)
    assert q == 2 * c["mesh.substrate_layers"]


def test_cycle_flows_in_compression_and_ends_in_tension():
    ds = fastnai.run(REPO / "cases" / "film_stress_bisb_solid_solution.toml")
    top = int(np.argmax(ds.soc.values))
    # perfectly plastic: at yield (0.5 -> 0.2 GPa) in compression at full sodiation, then the
    # unsodiated film ends at +0.5 GPa in tension, bending the thick foil slightly
    assert float(ds.mean_film_stress[top]) == pytest.approx(-0.2e9, rel=1e-3)
    assert float(ds.mean_film_stress[-1]) == pytest.approx(0.5e9, rel=1e-3)
    assert float(ds.plastic_strain[top].mean()) < 0 < float(ds.plastic_strain[top].max()) + 1
    # channel cracks (tension only) trip on desodiation, never on sodiation
    soc_crack = float(ds.channel_crack_soc)
    steps = ds.protocol_step.values
    first = np.flatnonzero(ds.channel_crack_energy_release_rate.values >= 1.0)[0]
    assert steps[first] == 1 and ds.soc.values[first] == soc_crack
    assert np.all(ds.channel_crack_energy_release_rate.values[steps <= 0] == 0.0)


def test_energy_release_rates_reduce_to_the_uniform_film_formulas():
    ds = fastnai.run(case(**ELASTIC, **HOST_MODULI, substrate__constraint="rigid",
                          failure__toughness=1e6))
    x, h = 0.33, 600e-9
    e, nu = comp.mix(x, 32e9, 55e9), comp.mix(x, 0.33, 0.25)
    sigma = ds.mean_film_stress.values
    np.testing.assert_allclose(ds.delamination_energy_release_rate.values,
                               (1 - nu**2) * sigma**2 * h / (2 * e), rtol=1e-12)
    assert np.all(ds.channel_crack_energy_release_rate.values == 0.0)  # compression
    sigma_c = math.pi**2 * e / (1 - nu**2) * h**2 / (12 * (10 * h) ** 2)
    comp_s = -sigma
    expected = np.where(comp_s > sigma_c, (1 - nu**2) * h * (comp_s - sigma_c)
                        * (comp_s + 3 * sigma_c) / (2 * e), 0.0)
    np.testing.assert_allclose(ds.buckling_energy_release_rate.values, expected, rtol=1e-12)
    assert math.isnan(float(ds.channel_crack_soc))


def test_large_swelling_thickens_the_film_by_lambda_z():
    ds = fastnai.run(REPO / "cases" / "film_stress_bisb_graded.toml")
    stack = fs.build(fastnai.load_case(REPO / "cases" / "film_stress_bisb_graded.toml"))
    beta = stack.beta[stack.film]
    for k in (0, 20, 40):
        theta = float(ds.soc[k])
        expected = float(np.sum(np.diff(stack.z_faces)[stack.film] * (1 + beta * theta)))
        assert float(ds.film_thickness[k]) == pytest.approx(expected, rel=1e-9)
    assert float(ds.film_thickness[40]) == pytest.approx(2.3e-6, rel=0.02)  # 600 nm -> ~2.3 um


def test_dataset_contract_and_netcdf_round_trip(tmp_path):
    ds = fastnai.run(REPO / "cases" / "film_stress_bisb_graded.toml",
                     output=tmp_path / "out.nc")
    for name in ("x_Bi", "theta", "c_Na", "sigma_xx", "sigma_zz", "von_mises",
                 "hydrostatic_stress", "plastic_strain", "max_von_mises", "interface_stress",
                 "substrate_curvature", "energy_release_rate", "film_thickness"):
        assert name in ds, name
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    assert ds.sigma_xx.dims == ("soc", "z") and ds.z.attrs["units"] == "m"
    assert ds.attrs["film_mean_x_Bi"] == pytest.approx(0.33, abs=1e-4)
    back = xr.open_dataset(tmp_path / "out.nc")
    xr.testing.assert_identical(back.load(), ds)


# ---------------------------------------------------------------------------------------------
# sodiation by diffusion

NERNST = {"interface.exchange_current": 1e6}  # fast kinetics: the surface follows U(theta)


def gitt_case(length=600e-9, d=1e-15, layers=60, **overrides):
    tau = 0.01 * length**2 / d
    cfg = {"model": {"kind": "film_stress", "sodiation": "diffusion", "stress_coupling": False},
           "film": {"thickness": length},
           "composition": {"profile": "uniform", "mean": 0.33},
           "bismuth": {"diffusivity": d}, "antimony": {"diffusivity": d},
           "initial": {"soc": 0.3}, "mesh": {"film_layers": layers},
           "protocol": [{"step": "gitt", "c_rate": 1.0, "cutoff_voltage": 0.0,
                         "pulse_duration": tau, "rest_duration": 3 * length**2 / d,
                         "n_pulses": 2}]}
    return fastnai.load_case(cfg, {**NERNST, **{k.replace("__", "."): v
                                               for k, v in overrides.items()}})


def gitt_diffusivities(ds, thickness):
    from fastnai import analysis

    pulses = analysis.gitt_pulses(ds.t.values, ds.voltage.values, ds.current_density.values)
    assert len(pulses) == 2
    return [analysis.gitt_pulse_diffusivity(tau=p["tau"], thickness=thickness,
                                            delta_Es=p["delta_Es"], delta_Et=p["delta_Et"])
            for p in pulses]


def test_gitt_on_the_film_recovers_the_input_diffusivity():
    """Single phase, no swelling, no stress coupling, tau D / L^2 = 0.01: Wang 2022 Eq. 1 gives
    D back within 5 % for 1C pulses (3.2 % measured) and the error is the formula's
    small-signal assumption: 0.1C pulses give 0.7 % on these 60 layers (0.1 % on 120, where the
    first cells resolve sqrt(D tau) better)."""
    errors = []
    for rate in (1.0, 0.1):
        c = gitt_case(bismuth__swelling=0.0, antimony__swelling=0.0)
        ds = fastnai.run(c.with_overrides({"protocol.0.c_rate": rate}))
        errors.append(max(abs(d / 1e-15 - 1) for d in gitt_diffusivities(ds, 600e-9)))
    assert errors[0] < 0.05
    assert errors[1] < 0.01


def test_gitt_on_a_swelling_film_needs_the_current_thickness():
    """The reference-frame diffusivity is D / lambda^2: with the reference thickness the
    formula returns D / lambda^2, with the current thickness lambda h it returns D."""
    ds = fastnai.run(gitt_case())
    lam = float(ds.film_thickness[-1]) / 600e-9
    theta = float(ds.mean_theta[-1])
    assert lam == pytest.approx(1 + theta * comp.mix(0.33, 2.51, 2.93), rel=1e-3)
    for d in gitt_diffusivities(ds, 600e-9 * lam):
        assert d == pytest.approx(1e-15, rel=0.05)


def test_inventory_from_the_state_matches_the_applied_charge():
    """Constant current steps and rests: BDF is exact for a constant rate, so the Na counted in
    the film changes by I t / F to round-off, through the cut-off event too."""
    from scipy import constants as sc

    c = gitt_case(interface__exchange_current=1.0)
    c = c.with_overrides({"protocol.0.n_pulses": 3})
    ds = fastnai.run(c)
    t, i, inv = ds.t.values, ds.current_density.values, ds.na_inventory.values
    charge = np.sum(np.diff(t) * i[1:])  # piecewise constant: the current after each step start
    faraday = sc.physical_constants["Faraday constant"][0]
    assert inv[-1] - inv[0] == pytest.approx(-charge / faraday, rel=1e-10)
    # a discharge to the cut-off stops at it
    cc = fastnai.run(case(protocol=[{"step": "constant_current", "c_rate": 2.0,
                                     "cutoff_voltage": 0.3}], model__sodiation="diffusion"))
    assert float(cc.voltage[-1]) == pytest.approx(0.3, abs=1e-6)
    assert cc.sigma_xx.dims == ("t", "z")
    assert float(cc.mean_theta[-1]) > 0.1  # diffusion-limited: L^2/D ~ 2C's duration


def test_diffusion_steps_need_the_diffusion_mode():
    with pytest.raises(CaseError, match="needs model.sodiation = 'diffusion'"):
        case(protocol=[{"step": "rest", "duration": 10.0}])
    with pytest.raises(CaseError, match="needs model.sodiation = 'uniform'"):
        case(model__sodiation="diffusion")


def test_stress_coupled_rest_ends_at_uniform_chemical_potential():
    """At open circuit the coupled flux D c_max theta(1-theta) d/dz[ln(theta/(1-theta)) -
    Omega sigma_h / RT] vanishes only where that bracket is uniform: after a sodiation pulse and
    a long rest the state must reach it (the stress field is the laminate's, solved with the
    diffusion in every step), while theta itself stays graded."""
    length, d = 600e-9, 1e-15
    c = case(protocol=[{"step": "constant_current", "c_rate": 2.0, "cutoff_voltage": 0.0,
                        "max_duration": 60.0},
                       {"step": "rest", "duration": 30 * length**2 / d}],
             model__sodiation="diffusion", bismuth__diffusivity=d, antimony__diffusivity=d,
             mesh__film_layers=40)
    ds = fastnai.run(c)
    stack = fs.build(c)
    transport = fs.build_transport(c, stack)
    omega_rt = transport.sc[kfd.S_OMEGA_MECH]
    assert omega_rt > 0
    theta = ds.theta.values[-1][0::2]
    sigma_h = 0.5 * (ds.hydrostatic_stress.values[-1][0::2] + ds.hydrostatic_stress.values[-1][1::2])
    mu = np.log(theta / (1 - theta)) - omega_rt * sigma_h
    assert np.ptp(np.log(theta / (1 - theta))) > 0.05  # the stress holds a theta gradient
    assert np.ptp(mu) < 2e-3 * np.ptp(np.log(theta / (1 - theta)))
    # and the Na counted in the film still equals the charge passed
    from scipy import constants as sc

    t, i, inv = ds.t.values, ds.current_density.values, ds.na_inventory.values
    charge = np.sum(np.diff(t) * i[1:])
    assert inv[-1] - inv[0] == pytest.approx(-charge / sc.physical_constants["Faraday constant"][0],
                                             rel=1e-10)


def test_coupled_step_satisfies_both_the_diffusion_and_the_laminate_equations():
    """The converged coupled step is a root of both residuals: the laminate balances at its
    theta with the returned (eps0, kappa), and the diffusion residual with that sigma_h is zero."""
    c = case(protocol=[{"step": "constant_current", "c_rate": 2.0, "cutoff_voltage": 0.0,
                        "max_duration": 30.0}],
             model__sodiation="diffusion", mesh__film_layers=30)
    stack = fs.build(c)
    transport = fs.build_transport(c, stack)
    cell = fs.FilmCell(c, stack, transport)
    cell.control = fs._Control("current", -2.0 * transport.one_c)
    y0 = np.full(cell.n_unknowns, 0.05)
    cell.record(0.0, y0)  # commits the plastic state at y0, as an accepted step does
    theta, ok, its = cell.solve_step(y0.copy(), 1.0, -y0, 5.0, 5.0)
    assert ok and its < 25
    # the laminate at theta, from the committed history: a free-plate solve
    layers = np.zeros((1, stack.z_faces.size - 1))
    layers[0, stack.film] = theta
    hist = cell.history.copy()
    stress = np.empty((1, hist.shape[1]))
    result = np.zeros((1, klam.N_RESULT))
    klam.laminate_sweep(stack.z_faces, layers, stack.beta, stack.modulus0, stack.modulus1,
                           stack.yield0, stack.yield1, stack.hardening, klam.EIGEN_LOG, True,
                           klam.MODE_FREE, 1, 1e-13, 50, hist, stress, np.empty_like(stress),
                           result)
    theta2, _, _ = cell.solve_step(y0.copy(), 1.0, -y0, 5.0, 5.0)  # a pure function of its input
    film = stress[0, stack.film_points]
    sigma_h = (film[0::2] + film[1::2]) / 3.0
    np.testing.assert_allclose(cell.sigma_h, sigma_h, rtol=1e-8, atol=1e-3)
    n = theta.size
    res = np.empty(n)
    sc = cell._scalars(cell.control)
    kfd.assemble(theta, -y0, 1.0, 5.0, transport.h, transport.c_max, transport.d_cell,
                    transport.beta, sigma_h, sc, np.empty(n), np.empty(n), np.empty(n), res,
                    np.empty(n))
    scale = np.abs(transport.h * transport.c_max * (theta - y0)).max()
    assert np.abs(res).max() < 1e-8 * scale
    np.testing.assert_array_equal(theta, theta2)


# ---------------------------------------------------------------------------------------------
# the 2D cross-section

PLANE = {"model.mechanics": "plane_strain", "model.plasticity": False,
         "model.kinematics": "linear"}


def test_generalised_plane_strain_agrees_with_the_laminate_away_from_the_edges():
    """A wide bilayer strip (film over the whole substrate) as a free plate in generalised
    plane strain: the element-mean stress along the symmetry line matches the laminate's within
    1 % (0.2 % measured), and kappa_y its curvature within 1 %, for a graded film."""
    comp_ = {"profile": "linear", "bottom": 1.0, "top": 0.0}
    common = {"substrate.thickness": 10e-6, **ELASTIC}
    strip = fastnai.run(case(comp_, **{k.replace(".", "__"): v for k, v in {
        **common, **PLANE, "film.width": 120e-6, "substrate.extension": 0.0,
        "mesh.max_element_size": 1e-6}.items()}))
    plate = fastnai.run(case(comp_, **{k.replace(".", "__"): v for k, v in common.items()}))
    sigma_plate = np.interp(strip.z.values, plate.z.values, plate.sigma_xx[-1].values)
    np.testing.assert_allclose(strip.sigma_xx[-1].values, sigma_plate, rtol=0.01)
    assert float(strip.out_of_plane_curvature[-1]) == pytest.approx(
        float(plate.substrate_curvature[-1]), rel=0.01)


def test_edge_zone_stress_leaves_out_the_corner():
    ds = fastnai.run(case({"profile": "process"}, **{k.replace(".", "__"): v for k, v in {
        **PLANE, "film.width": 1.2e-6}.items()}))
    h_f, h_s = 600e-9, 100e-6
    r = np.hypot(ds.edge_zone_x.values - 0.6e-6, ds.edge_zone_z.values - h_s)
    assert np.all(r[1:] >= 0.15 * h_f)
    # the raw film maximum sits at the corner and is larger
    film = ds.z_point.values > h_s
    raw = np.abs(ds.sigma_xx_map.values[film]).max()
    assert raw > abs(float(ds.edge_zone_stress[-1]))
    assert ds.von_mises_map.dims == ("point",) and ds.sigma_xx.dims == ("soc", "z")


@pytest.mark.parametrize("overrides, match", [
    ({"model.mechanics": "plane_strain"}, "needs film.width"),
    ({"model.mechanics": "plane_strain", "film.width": 1e-6, "plane.support": "roller"},
     "generalised plane strain is the free plate"),
])
def test_bad_cross_sections_are_case_errors(overrides, match):
    with pytest.raises(CaseError, match=match):
        case(**{k.replace(".", "__"): v for k, v in overrides.items()})


def test_elastoplastic_cross_section_yields_and_plots(tmp_path):
    from fastnai.plot import plot_result

    ds = fastnai.run(case({"profile": "process"}, model__mechanics="plane_strain",
                          film__width=1.2e-6,
                          protocol=None))
    # perfectly plastic film at theta = 1: the von Mises stress away from the corner is the
    # sodiated yield stress 0.2 GPa (the edge zone excepted, where the substrate constrains it)
    vm = ds.von_mises_centre[-1].values
    np.testing.assert_allclose(vm, 0.2e9, rtol=1e-3)
    assert float(ds.plastic_strain_map.max()) > 0
    path = plot_result(ds, tmp_path / "cross_section.png")
    assert path.stat().st_size > 10_000


def test_thin_layer_cv_peak_is_the_closed_form():
    """A film that follows the voltage everywhere (L^2/D = 0.36 s << the sweep; Nernstian
    surface; ideal U, no swelling or stress): the reversible thin-layer peak
    i_p = F v Q_sites / (4 RT/F) at E = U0 (Bard & Faulkner, Eq. 11.7.5 with the ideal isotherm),
    within 0.5 %."""
    from scipy import constants as sc

    c = case(protocol=[{"step": "cv", "scan_rate": 1e-3, "lower_voltage": 0.35,
                        "upper_voltage": 0.9}],
             model__sodiation="diffusion", model__plasticity=False, initial__soc=1e-6,
             bismuth__swelling=0.0, antimony__swelling=0.0, bismuth__diffusivity=1e-12,
             antimony__diffusivity=1e-12, interface__exchange_current=1e6,
             solver__rtol=1e-6, solver__max_voltage_step=5e-4)
    ds = fastnai.run(c)
    transport = fs.build_transport(c, fs.build(c))
    faraday = sc.physical_constants["Faraday constant"][0]
    vt = sc.R * 298.15 / faraday
    sites = float(np.sum(transport.h * transport.c_max))
    exact = faraday * 1e-3 * sites / (4 * vt)
    i, v = ds.current_density.values, ds.voltage.values
    k = int(np.argmin(i))  # cathodic peak (sodiation, negative current)
    assert -i[k] == pytest.approx(exact, rel=5e-3)
    u0 = comp.mix(0.33, 0.55, 0.65)
    assert v[k] == pytest.approx(u0, abs=2e-3)
    # and the sweep comes back: the anodic peak mirrors it
    assert i.max() == pytest.approx(exact, rel=5e-3)
