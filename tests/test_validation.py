"""The validation table's deposition rows against closed forms (SPEC 4).

The other models' rows are exercised through ``fastnai validate`` in tests/test_cli.py; the
deposition rows run 2D phase-field cases for minutes, so only their fast part (the Arrhenius
series of micro-polarisation runs) is in the default suite and the whole set is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastnai import analysis, validation
from fastnai.models import deposition as dep


def closed_form_activation_energy(case, material: str) -> float:
    """E_a that fastnai.analysis recovers from exact Butler-Volmer overpotentials at the
    micro-polarisation current of the case, at the validation temperatures: what the whole
    model must give when its box adds nothing (flat electrode, tiny current)."""
    j = case["protocol"][0]["current_density"]
    rct = []
    for temp in validation.DEPOSITION_TEMPERATURES:
        c = case.with_overrides({"substrate.material": material, "electrode.temperature": temp})
        j0 = dep.exchange_current(c)
        alpha = c["substrate.transfer_coefficient"]
        eta = np.array([dep.bv_overpotential(-j, j0, alpha, temp),
                        dep.bv_overpotential(j, j0, alpha, temp)])
        fit = analysis.exchange_current_micropolarization(eta, np.array([-j, j]),
                                                          temperature=temp)
        rct.append(fit.details["charge_transfer_resistance_area"])
    return analysis.activation_energy(np.array(validation.DEPOSITION_TEMPERATURES),
                                      np.array(rct)).value


def test_temperature_rows_recover_the_closed_form_activation_energy():
    rows = validation.deposition_temperature_rows({})
    case = validation._case("deposition_micropolarization")
    for row, material in zip(rows, ("Na", "VN"), strict=True):
        expected = closed_form_activation_energy(case, material) * 1e-3
        # the model's overpotential also holds the concentration and ohmic drops of a 12 um
        # box at 0.02 mA cm-2 (microvolts against millivolts): 0.5 % is their ceiling
        assert row.fastnai == pytest.approx(expected, rel=5e-3), row
        # and the input itself, up to the sinh nonlinearity of +-0.02 mA cm-2 steps at 283 K
        assert row.fastnai == pytest.approx(row.paper, rel=0.03), row


def test_an_unknown_model_is_a_case_error():
    with pytest.raises(validation.CaseError, match="unknown model"):
        validation.run_validation(models=["deposition", "dendrite"])


@pytest.mark.slow
def test_default_deposition_rows_run_and_hold_their_closed_forms():
    datasets: dict = {}
    rows = validation.deposition_rows(full=False, datasets=datasets)
    by = {(r.system, r.quantity): r for r in rows}
    for label, name, spike_paper, _ in validation.DEPOSITION_SUBSTRATES:
        system = f"{label}, 0.5 mA cm-2 to 1 mA h cm-2"
        ds = datasets[f"{name}_0.5mA"]
        one = by[(system, "nucleation spike, per electrode |eta|max")]
        both = by[(system, "nucleation spike, symmetric cell |U|max")]
        temperature = validation._case(name)["electrode.temperature"]
        plateau = dep.bv_overpotential(5.0, float(ds.exchange_current_density), 0.5,
                                       temperature) * 1e3
        # the spike lies above the flat electrode's Butler-Volmer overpotential of the same j0
        assert one.fastnai > plateau
        # the symmetric cell adds the counter electrode and the separator to the same current
        assert both.fastnai > one.fastnai
        # like with like: the paper's spike is a symmetric-cell value
        assert both.paper == spike_paper and one.paper is None
        assert ds.roughness[-1] > 0 and ds.active_site_density[-1] > 0


@pytest.mark.parametrize(("unit", "paper", "value", "expect"), [
    ("mV", 68.0, 223.3, "3.28×"),          # two positive magnitudes: their ratio
    ("Pa", -2.0e8, -1.0e8, "0.5×"),        # two negative magnitudes: still a ratio
    ("%", -35.0, 5.26, "+40.3 pp"),        # percentages: the difference in points
    ("%", -35.0, -0.0004, "+35.0 pp"),
    ("eV", 0.24, -0.1, "—"),               # opposite signs: nothing compares
    ("um", None, 0.24, "—"),               # no paper number
    ("1", 0.0, 0.3, "—"),
])
def test_the_comparison_column_means_something_for_every_kind(unit, paper, value, expect):
    row = validation.Row("s", "q", unit, paper, value, "computed")
    assert row.comparison == expect
    assert (row.ratio is None) == (not expect.endswith("×"))


def test_the_terminal_table_fits_120_columns_and_the_file_keeps_whole_notes():
    long = "a note that runs on " * 20
    rows = [validation.Row("a system whose name is long, 0.5 mA cm-2 to 1 mA h cm-2, "
                           "and then some more words", "a quantity whose name is longer than "
                           "its column and wraps onto a second line", "kJ mol-1", 1.46e20,
                           -3.2e-7, "calibrated (semiconductor.donor_level, acceptor_density)",
                           long),
            validation.Row("b", "q", "%", -35.0, 5.26, "computed")]
    short = validation.format_table(rows)
    full = validation.format_table(rows, full_notes=True)
    for text in (short, full):
        assert max(len(line) for line in text.splitlines()) <= validation.TABLE_WIDTH
        assert "+40.3 pp" in text and "acceptor_density)" in text
    assert "…" in short and " ".join(full.split()).count("a note that runs on") == 20
