"""The validation table's deposition rows against closed forms (SPEC 4).

The band-bending and drift-diffusion rows are exercised through ``fastnai validate`` in
tests/test_cli.py; the deposition rows run 2D phase-field cases for minutes and the film rows
for a minute, so only their fast parts (the Arrhenius series of micro-polarisation runs; the film
spectra in tests/models) are in the default suite and the whole sets are marked slow.
"""

from __future__ import annotations

import math

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
    rows = [r for r in validation.deposition_temperature_rows({}) if r.unit == "kJ mol-1"]
    case = validation._case("deposition_micropolarization")
    for row, material in zip(rows, ("Na", "VN"), strict=True):
        expected = closed_form_activation_energy(case, material) * 1e-3
        # the model's overpotential also holds the concentration and ohmic drops of a 12 um
        # box at 0.02 mA cm-2 (microvolts against millivolts): 0.5 % is their ceiling
        assert row.fastnai == pytest.approx(expected, rel=5e-3), row
        # and the input itself, up to the sinh nonlinearity of +-0.02 mA cm-2 steps at 283 K
        assert row.fastnai == pytest.approx(row.paper, rel=0.03), row


@pytest.mark.slow
def test_film_stress_rows_run_and_compare_percentages_in_points():
    """The film group (about a minute): rows with numbers, percentages never shown as ratios."""
    rows = validation.film_stress_rows(full=False, datasets={})
    assert sum(math.isfinite(r.fastnai) for r in rows) > 0.9 * len(rows)
    table = validation.format_table(rows)
    assert "-0.000" not in table and max(len(line) for line in table.splitlines()) <= 120
    assert any(r.quantity.startswith("R_ct ratio") for r in rows)


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


def _fake_builder(name, system, calls):
    """A row builder that reads one case file (its digest) and makes two rows."""
    def build(*, full, datasets):
        calls.append(name)
        validation._case(name)
        return [validation.Row(system, "q1", "mV", 68.0, 100.0, "computed", "a note"),
                validation.Row(system, "q2", "%", -35.0, 5.0, "computed")]
    return build


def test_validate_streams_rows_keeps_finished_groups_and_resumes_them(tmp_path, monkeypatch):
    """Rows reach on_row as they are made; a run killed in its second group has written the
    first group's record; --resume reuses it (not recomputed) and gives the table of an
    uninterrupted run; an edited case file or an edited fastnai makes it recompute."""
    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("band_bending_ticn_tio2", "film_stress_bisb_graded"):
        (cases / f"{name}.toml").write_text((validation.cases_dir() / f"{name}.toml").read_text())
    monkeypatch.setattr(validation, "cases_dir", lambda: cases)
    calls = []
    first = _fake_builder("band_bending_ticn_tio2", "A", calls)
    second = _fake_builder("film_stress_bisb_graded", "B", calls)
    monkeypatch.setattr(validation, "band_bending_rows", first)
    models = ["band_bending", "film_stress"]
    monkeypatch.setattr(validation, "film_stress_rows", second)
    clean = validation.run_validation(output_dir=tmp_path / "clean", models=models)

    def killed(*, full, datasets):
        raise KeyboardInterrupt  # the run is killed while the second group computes

    monkeypatch.setattr(validation, "film_stress_rows", killed)
    out = tmp_path / "run"
    seen = []
    with pytest.raises(KeyboardInterrupt):
        validation.run_validation(output_dir=out, models=models, on_row=seen.append)
    assert [r.quantity for r in seen] == ["q1", "q2"]  # shown before the kill
    assert (out / "band_bending.group.json").is_file()
    assert not (out / "film_stress.group.json").exists()

    calls.clear()
    monkeypatch.setattr(validation, "film_stress_rows", second)
    seen.clear()
    table = validation.run_validation(output_dir=out, models=models, resume=True,
                                      on_row=seen.append)
    assert calls == ["film_stress_bisb_graded"]  # the finished group was not computed again
    assert table == clean and len(seen) == 4
    assert (out / "validation.txt").read_text() == (tmp_path / "clean" / "validation.txt").read_text()

    calls.clear()
    case = cases / "band_bending_ticn_tio2.toml"
    case.write_text(case.read_text() + "\n# edited\n")
    validation.run_validation(output_dir=out, models=models, resume=True)
    assert calls == ["band_bending_ticn_tio2"]  # its case file changed; film_stress did not

    calls.clear()
    monkeypatch.setattr(validation, "source_digest", lambda: "another fastnai")
    validation.run_validation(output_dir=out, models=models, resume=True)
    assert calls == ["band_bending_ticn_tio2", "film_stress_bisb_graded"]
