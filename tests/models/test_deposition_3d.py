"""deposition in 3D (mesh.nz > 1): reduction to 2D, Faraday speed, conservation, seams."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import constants

from fastnai.case import load_case
from fastnai.models import deposition as dep

F = constants.physical_constants["Faraday constant"][0]
VM = 23.78e-6


def flat_case(nz: int, protocol, **over):
    """A flat, fully active deposit 3 um thick in an nx x nz x ny box of 0.2 um cells."""
    raw = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "mesh": {"nx": 4, "nz": nz, "ny": 40, "dx": "0.2 um"},
           "nucleation": {"mode": "none"}, "initial": {"deposit_thickness": "3 um"},
           "protocol": protocol}
    return load_case(raw, over)


PLATE = [{"step": "plate", "current_density": "2 mA cm^-2", "duration": 60.0}]


def test_a_box_uniform_in_z_runs_the_2d_model():
    """Fields uniform along z: every z slice of the 3D run is the 2D run (the AMG solves stop
    at rtol 1e-8, so the two agree to about that, not to the bit)."""
    two = dep.simulate(flat_case(1, PLATE), progress=False)
    three = dep.simulate(flat_case(3, PLATE), progress=False)
    for name in ("t", "overpotential", "voltage", "na_inventory", "front_height_mean"):
        np.testing.assert_allclose(three.series[name], two.series[name], rtol=1e-7, atol=1e-12,
                                   err_msg=name)
    phase3 = three.snapshots["phase"][-1]
    phase2 = two.snapshots["phase"][-1]
    np.testing.assert_allclose(phase3.reshape(40, 3, 4),
                               np.repeat(phase2[:, None, :], 3, axis=1), atol=1e-8)


def test_a_flat_front_in_3d_moves_at_the_faraday_speed():
    """Potential control: the front advances at J V_m / F (1 %), as in 2D."""
    voltage = -0.08
    case = flat_case(3, [{"step": "constant_voltage", "voltage": voltage, "duration": 200.0}],
                     **{"electrolyte.conductivity": 1e4, "electrolyte.diffusivity": 1e-3,
                        "separator.thickness": 0.0, "solver.max_time_step": 2.0})
    res = dep.simulate(case, progress=False)
    t, h = res.series["t"], res.series["na_inventory"] * VM
    speed = np.polyfit(t[t > 20.0], h[t > 20.0], 1)[0]
    j = float(dep.bv_current(voltage, res.setup.j0, 0.5, 298.15))
    assert speed / (-j * VM / F) == pytest.approx(1.0, abs=0.01)


def nucleating_case():
    raw = {"model": {"kind": "deposition"}, "substrate": {"material": "Na"},
           "mesh": {"nx": 16, "nz": 12, "ny": 20, "dx": "0.2 um"},
           "protocol": [{"step": "plate", "current_density": "0.5 mA cm^-2",
                         "capacity": "0.01 mA h cm^-2"}]}
    return load_case(raw, {"substrate.site_spacing": "1.2 um", "substrate.site_width": "0.4 um",
                           "output.n_snapshots": 2})


def test_nucleating_3d_run_conserves_na_and_writes_3d_fields():
    """Sites are w x w patches; the inventory follows the Faradaic charge (1e-6) and the
    result has (y, depth, x) fields and an areal site density."""
    case = nucleating_case()
    ds = dep.run(case, progress=False)
    assert ds.phase.dims == ("t_snapshot", "y", "depth", "x")
    assert ds.active_sites.dims == ("t_snapshot", "depth", "x")
    assert "active_site_areal_density" in ds and "active_site_density" not in ds
    gained = (ds.na_inventory - ds.na_inventory[0]).values
    cap = case["electrode.double_layer_capacitance"]
    double_layer = -cap * (ds.overpotential - ds.overpotential[0]).values
    faradaic = (ds.deposited_charge.values - double_layer) / F
    stripped = ds.substrate_stripped.values
    assert np.max(np.abs(gained - stripped - faradaic)) <= 1e-6 * faradaic[-1]
    n = int(ds.nuclei_count[-1])
    assert n >= 1
    area = 16 * 12 * (0.2e-6) ** 2
    assert float(ds.active_site_areal_density[-1]) == pytest.approx(n / area)


def test_sites_in_3d_are_square_patches_on_a_jittered_grid():
    case = nucleating_case()
    s = dep.build(case)
    w = 2  # 0.4 um of 0.2 um cells
    assert s.site_ptr.size - 1 == round(16 * 0.2 / 1.2) * round(12 * 0.2 / 1.2)
    for k in range(s.site_ptr.size - 1):
        cells = s.site_cells[s.site_ptr[k]:s.site_ptr[k + 1]]
        assert cells.size == w * w and np.unique(cells).size == w * w
        iz, ix = np.divmod(cells, 16)
        assert len(set(ix.tolist())) == w and len(set(iz.tolist())) == w
    assert np.all((0 <= s.site_position) & (s.site_position < 16 * 0.2e-6))
    assert np.all((0 <= s.site_position_depth) & (s.site_position_depth < 12 * 0.2e-6))


def test_the_3d_case_has_its_sites_on_the_vn_grid():
    """cases/deposition_na_vn_3d.toml: 16 x 16 patches of 2 x 2 cells, one per 0.8 um square."""
    from fastnai.validation import cases_dir

    case = load_case(cases_dir() / "deposition_na_vn_3d.toml")
    s = dep.build(case)
    assert (s.nx, s.nz, s.ny) == (64, 64, 48)
    assert s.site_ptr.size - 1 == 16 * 16
    assert s.site_cells.size == 4 * 16 * 16
    assert s.area == pytest.approx((64 * 0.2e-6) ** 2)


def test_labels_merge_across_both_periodic_seams():
    """A ring of metal through the x seam and a bar through the z seam are one component each;
    an island in the middle is another."""
    metal = np.zeros((4, 6, 8), dtype=bool)
    metal[1, 2, :2] = metal[1, 2, 6:] = True  # through the x seam
    metal[2, :2, 4] = metal[2, 5:, 4] = True  # through the z seam
    metal[3, 3, 3] = True
    labels = dep._periodic_labels(metal)
    assert np.unique(labels[metal]).size == 3
    assert np.unique(labels[1, 2, [0, 7]]).size == 1
    assert np.unique(labels[2, [0, 5], 4]).size == 1


def test_same_bits_on_one_and_two_threads_in_3d():
    case = nucleating_case().with_overrides({"protocol.0.capacity": "0.003 mA h cm^-2"})
    previous = numba.get_num_threads()
    try:
        runs = []
        for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(n)
            runs.append(dep.simulate(case, progress=False))
    finally:
        numba.set_num_threads(previous)
    for name in ("overpotential", "na_inventory", "nuclei_count"):
        np.testing.assert_array_equal(runs[0].series[name], runs[1].series[name])
    np.testing.assert_array_equal(runs[0].snapshots["phase"], runs[1].snapshots["phase"])
