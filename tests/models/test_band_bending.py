"""band_bending against closed forms, conservation laws and its convergence order (SPEC 3.1, 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import constants

import fastnai
from fastnai._kernels.fermi_dirac import fd_half
from fastnai.models import band_bending as bb

Q = constants.e
EPS0 = constants.epsilon_0
VT = constants.k * 298.15 / constants.e


def case(**overrides):
    """A planar TiC / anatase case with dotted-key overrides (SI numbers or unit strings)."""
    base = {
        "model": {"kind": "band_bending"},
        "semiconductor": {"material": "anatase-TiO2", "thickness": "100 nm",
                          "donor_density": "1e18 cm^-3"},
        "contact": {"material": "TiC"},
        "mesh": {"n_nodes": 2000, "min_spacing": "0.01 nm"},
    }
    return fastnai.load_case(base, {k.replace("__", "."): v for k, v in overrides.items()})


def run(**overrides):
    return bb.run(case(**overrides))


@pytest.mark.parametrize("eps_r", [10.0, 40.0, 100.0])
@pytest.mark.parametrize("donors", ["1e17 cm^-3", "1e19 cm^-3"])
def test_accumulation_field_equals_first_integral_of_poisson(eps_r, donors):
    c = case(semiconductor__relative_permittivity=eps_r, semiconductor__donor_density=donors,
             semiconductor__thickness="300 nm", mesh__n_nodes=3000)
    ds = bb.run(c)
    exact = bb.first_integral_field(c, float(ds.potential.values[0]), float(ds.potential.values[-1]))
    assert float(ds.interface_field) > 0.0
    assert float(ds.interface_field) == pytest.approx(exact, rel=1e-4)


def test_seed_interface_density_is_eq1_with_the_papers_inputs():
    ds = run()
    params = bb.charge_parameters(case())
    n_eq1 = params[1] * fd_half(1.0 / VT)  # N_C F_1/2((E_F - E_C)/kT), E_F - E_C = 1.0 eV
    assert float(ds.interface_electron_density) == pytest.approx(n_eq1, rel=1e-12)
    assert n_eq1 * 1e-6 == pytest.approx(1.31e20, rel=5e-3)  # SPEC 3.1; the paper prints 1.46e20


def test_seed_self_consistent_field_is_about_five_times_below_the_papers():
    field = float(run().interface_field) * 1e-2  # V/cm
    assert field == pytest.approx(2.2e6, rel=0.03)
    assert 4.0 < 1.03e7 / field < 6.0


def test_boltzmann_accumulation_matches_closed_form_field():
    c = case(semiconductor__statistics="boltzmann", semiconductor__holes=False,
             semiconductor__donor_density="1e17 cm^-3", contact__work_function="4.9 eV",
             semiconductor__thickness="400 nm", mesh__n_nodes=4000, mesh__min_spacing="0.002 nm")
    ds = bb.run(c)
    eps = 40 * EPS0
    nd = 1e23
    u = (float(ds.potential.values[0]) - (-float(ds.bulk_Ec_minus_Ef))) / VT
    exact = math.sqrt(2 * Q * nd * VT / eps * (math.exp(u) - 1 - u))
    assert abs(float(ds.bulk_neutrality)) < 1e-6
    assert float(ds.interface_field) == pytest.approx(exact, rel=1e-4)


def test_nondegenerate_limit_of_fermi_dirac_is_the_boltzmann_solution():
    # N_D = 1e13 cm-3 and Phi_B = +0.2 eV: accumulation with n(0) ~ 4e-4 N_C
    common = dict(semiconductor__donor_density="1e13 cm^-3", contact__work_function="5.3 eV",
                  semiconductor__thickness="40 um", mesh__min_spacing="0.05 nm")
    fd = run(**common)
    mb = run(semiconductor__statistics="boltzmann", **common)
    n_c = float(fd.effective_density_of_states_conduction)
    assert float(fd.interface_electron_density) / n_c < 1e-3  # non-degenerate everywhere
    assert float(fd.interface_field) == pytest.approx(float(mb.interface_field), rel=1e-3)
    np.testing.assert_allclose(fd.n.values, mb.n.values, rtol=1e-3)


def test_depletion_contact_matches_depletion_approximation_with_kT_correction():
    c = case(semiconductor__statistics="boltzmann", semiconductor__holes=False,
             semiconductor__electron_affinity="4.0 eV", contact__material="Cu",
             semiconductor__donor_density="1e17 cm^-3", semiconductor__thickness="1 um",
             mesh__min_spacing="0.05 nm")
    ds = bb.run(c)
    eps = 40 * EPS0
    nd = 1e23
    v_bi = float(ds.barrier_height) - float(ds.bulk_Ec_minus_Ef)
    field = -float(ds.interface_field)  # depletion: field points toward the metal
    # exact first integral for Boltzmann electrons: depletion approximation plus kT/q terms
    exact = math.sqrt(2 * Q * nd / eps * (v_bi - VT + VT * math.exp(-v_bi / VT)))
    assert field == pytest.approx(exact, rel=1e-4)
    # the depletion approximation itself, to within its known kT/q correction
    e_dep = math.sqrt(2 * Q * nd * v_bi / eps)
    w_dep = math.sqrt(2 * eps * v_bi / (Q * nd))
    assert field / e_dep - 1 == pytest.approx(-VT / (2 * v_bi), rel=0.05)
    w_equivalent = float(ds.semiconductor_charge) / (Q * nd)  # Q_sc / (q N_D)
    assert w_equivalent == pytest.approx(w_dep * math.sqrt(1 - VT / v_bi), rel=1e-4)
    # the physical edge (n = N_D / 2) lies within two Debye lengths of that width
    debye = float(ds.screening_length)
    edge = np.interp(0.5 * nd, ds.n.values, ds.depth.values)
    assert abs(edge - w_equivalent) < 2 * debye


@pytest.mark.parametrize("quantity", ["interface_field", "sheet_electron_density"])
def test_second_order_convergence_under_subdivision_of_a_fixed_grading(quantity):
    values = [float(run(semiconductor__thickness="60 nm", mesh__n_nodes=400,
                        mesh__min_spacing="0.05 nm", mesh__refinement=k)[quantity])
              for k in (1, 2, 4)]
    order = math.log2(abs(values[1] - values[0]) / abs(values[2] - values[1]))
    assert order == pytest.approx(2.0, abs=0.1)


def test_sphere_and_dot_reduce_to_planar_for_large_radius():
    planar = run(semiconductor__thickness="150 nm")
    dot = run(model__geometry="dot", contact__radius="20 um", semiconductor__thickness="150 nm")
    sphere = run(model__geometry="sphere", semiconductor__thickness="20 um", mesh__n_nodes=4000)
    for ds in (dot, sphere):
        assert float(ds.interface_field) == pytest.approx(float(planar.interface_field), rel=2e-3)
        assert float(ds.band_bending) == pytest.approx(float(planar.band_bending), rel=2e-3)
    # and the curvature correction has the right sign: a dot concentrates the field
    small_dot = run(model__geometry="dot", contact__radius="1.5 nm", semiconductor__thickness="50 nm")
    assert float(small_dot.interface_field) > 2 * float(planar.interface_field)


@pytest.mark.parametrize("geometry", ["planar", "sphere", "dot"])
@pytest.mark.parametrize("layer", ["0 nm", "0.5 nm"])
def test_gauss_law_total_charge_is_zero_to_1e_8(geometry, layer):
    c = case(model__geometry=geometry, contact__interfacial_layer_thickness=layer,
             contact__interface_state_density="3e12 cm^-2 eV^-1", semiconductor__thickness="30 nm")
    sol = bb.solve(c)
    q = bb.quantities(sol)
    g = sol.geometry
    semiconductor = np.sum(q["charge_density"] * g.volume) / g.contact_area
    eps = 40 * EPS0
    if layer == "0 nm":
        metal = eps * q["interface_field"]  # Gauss on the contact: D = sigma_metal
        assert q["interface_state_charge"] == 0.0
    else:
        metal = q["metal_sheet_charge"]
    total = semiconductor + q["interface_state_charge"] + metal
    assert abs(total) <= 1e-8 * abs(metal)


def test_cowley_sze_pinning_factor_tends_to_one_without_states_on_light_doping():
    light = case(semiconductor__electron_affinity="4.0 eV", contact__material="Cu",
                 semiconductor__donor_density="1e15 cm^-3", semiconductor__thickness="5 um",
                 mesh__min_spacing="0.1 nm", contact__interfacial_layer_thickness="0.5 nm")
    s = [bb.pinning_factor(light.with_overrides({"contact.interface_state_density": f"{d} cm^-2 eV^-1"}))
         for d in (0.0, 1e11, 1e12, 1e13)]
    assert s[0]["S"] > 0.98  # C_sc << eps_i / delta
    for item in s:
        assert item["S"] == pytest.approx(item["S_predicted"], rel=1e-6)
    assert s[0]["S"] > s[1]["S"] > s[2]["S"] > s[3]["S"]


def test_barrier_moves_to_the_neutrality_level_as_interface_states_grow():
    barriers = [float(run(contact__interfacial_layer_thickness="0.5 nm",
                          contact__interface_state_density=f"{d} cm^-2 eV^-1",
                          contact__charge_neutrality_level="2.0 eV").barrier_height)
                for d in (1e12, 1e13, 1e14, 1e15, 1e16)]
    target = 3.2 - 2.0  # E_C - E_CNL
    gaps = [abs(b - target) for b in barriers]
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < 0.01


def test_default_contact_without_layer_is_the_ideal_dirichlet_contact():
    ideal = run()
    with_states = run(contact__interface_state_density="1e14 cm^-2 eV^-1")  # no layer: inert
    assert float(ideal.barrier_height) == pytest.approx(4.1 - 5.1, abs=1e-14)
    np.testing.assert_array_equal(ideal.potential.values, with_states.potential.values)


def test_incomplete_ionisation_in_the_neutral_bulk_follows_fermi_occupation():
    ds = bb.run(fastnai.load_case("cases/band_bending_ticn_tio2_xps_bulk.toml"))
    ec = float(ds.Ec.values[-1])
    nd_closed = 2e24 / (1 + 2 * math.exp((0.0 - (ec - 1.0)) / VT))  # E_D = E_C - 1.0 eV
    assert float(ds.ionized_donor_density.values[-1]) == pytest.approx(nd_closed, rel=1e-10)
    assert abs(float(ds.bulk_neutrality)) < 1e-8


def test_xps_bulk_doubles_the_band_bending_but_barely_changes_the_field():
    shallow = bb.run(fastnai.load_case("cases/band_bending_ticn_tio2.toml"))
    deep = bb.run(fastnai.load_case("cases/band_bending_ticn_tio2_xps_bulk.toml"))
    assert float(deep.bulk_Ec_minus_Ef) == pytest.approx(0.99, abs=0.05)
    assert 1.8 < float(deep.band_bending) / float(shallow.band_bending) < 2.3
    assert float(deep.interface_field) / float(shallow.interface_field) == pytest.approx(1.0, abs=0.05)


def test_continuation_rescues_a_cold_start_failure_and_finds_the_same_solution():
    common = dict(semiconductor__statistics="boltzmann", semiconductor__thickness="200 nm",
                  mesh__n_nodes=800)
    cold = bb.solve(case(**common))  # converges from the cold guess in ~50 iterations
    assert cold.continuation_steps == 0
    limited = bb.solve(case(solver__max_iterations=15, **common))  # too few for a cold start
    assert limited.continuation_steps > 0
    np.testing.assert_allclose(limited.psi, cold.psi, rtol=0, atol=1e-12)


def test_non_convergence_raises_convergence_error_with_history():
    c = case(solver__max_iterations=2, solver__continuation=False)
    with pytest.raises(fastnai.ConvergenceError, match="did not converge") as info:
        bb.solve(c)
    assert len(info.value.history) == 2
    assert "Newton history" in str(info.value)


def test_result_is_identical_for_one_and_two_threads():
    import numba

    c = case(mesh__n_nodes=30_000, mesh__min_spacing="0.001 nm")  # parallel assembly path
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(bb.solve(c).psi)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize(("name", "warns"), [("band_bending_ticn_tio2", False),
                                             ("band_bending_ticn_tio2_dot", True)])
def test_band_diagram_warns_when_the_domain_has_no_neutral_bulk(tmp_path, monkeypatch, name,
                                                                 warns):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastnai.plot import band_diagram
    from fastnai.validation import cases_dir

    ds = fastnai.run(cases_dir() / f"{name}.toml")
    figures = []
    real_save = plt.Figure.savefig
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, *a, **k: (figures.append(fig), real_save(fig, *a, **k))[1])
    band_diagram(ds, tmp_path / "bands.png")
    texts = [t.get_text() for ax in figures[0].axes for t in ax.texts]
    assert any("not neutral at the far end" in t for t in texts) == warns
    assert all("(" in ax.get_ylabel() for ax in figures[0].axes)
