"""fastnai.spectra against closed-form spectra: circuit fits with honest errors, lin-KK, Warburg, readers."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import xarray as xr

from fastnai import spectra
from fastnai.analysis import F, Fit, R, activation_energy
from fastnai.errors import FastnaiError

FREQ = np.logspace(-3, 5, 81)  # [Hz], 10 points per decade as an instrument sweeps
TRUTH = {"R0": 1e-4, "C1": 0.1, "R1": 1e-3, "Wo1_0": 1e-2, "Wo1_1": 100.0}  # ohm m2, F m-2, s
GUESS = [2e-4, 0.03, 3e-3, 3e-2, 30.0]


def randles(f, r0, c1, r1, z0, tau):
    """R0 + [C1 || (R1 + Z0 coth(sqrt(i w tau)) / sqrt(i w tau))], written out by hand."""
    w = 2.0 * np.pi * np.asarray(f, dtype=float)
    s = np.sqrt(1j * w * tau)
    z_diffusion = z0 / (s * np.tanh(s))
    return r0 + 1.0 / (1j * w * c1 + 1.0 / (r1 + z_diffusion))


def rc(f, r, c):
    """A resistor parallel to a capacitor."""
    return r / (1.0 + 2j * np.pi * np.asarray(f) * r * c)


def noisy(z, relative, seed):
    """Z plus complex Gaussian noise of standard deviation ``relative`` |Z| in each part."""
    rng = np.random.default_rng(seed)
    return z + relative * np.abs(z) * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size))


# --- fit_circuit -------------------------------------------------------------------------------

def test_fit_circuit_predict_equals_the_randles_formula_written_out():
    z = randles(FREQ, *TRUTH.values())
    fit = spectra.fit_circuit(FREQ, z, "R0-p(C1,R1-Wo1)", GUESS)
    assert fit.names == tuple(TRUTH) and fit.units == ("Ohm", "F", "Ohm", "Ohm", "sec")
    np.testing.assert_allclose(fit.values, list(TRUTH.values()), rtol=1e-8)
    f_new = np.logspace(-4, 6, 37)
    z_hand = randles(f_new, *fit.values)
    assert np.max(np.abs(fit.predict(f_new) - z_hand) / np.abs(z_hand)) < 1e-12
    # exact data: the errors are round-off, and the misfit too
    assert np.all(fit.stderr / fit.values < 1e-9) and fit.residual < 1e-10
    assert isinstance(fit.parameters["R1"], Fit) and fit.parameters["R1"].details["unit"] == "Ohm"


def test_fit_circuit_recovers_parameters_within_three_stderr_with_half_percent_noise():
    z = randles(FREQ, *TRUTH.values())
    exact = spectra.fit_circuit(FREQ, z, "R0-p(C1,R1-Wo1)", GUESS)
    fit = spectra.fit_circuit(FREQ, noisy(z, 0.005, seed=1), "R0-p(C1,R1-Wo1)", GUESS)
    truth = np.array(list(TRUTH.values()))
    assert np.all(np.abs(fit.values - truth) < 3.0 * fit.stderr)
    relative = fit.stderr / truth
    assert np.all((relative > 1e-5) & (relative < 0.05))
    assert np.all(fit.stderr > 1e4 * exact.stderr)
    # the misfit is the noise: sqrt(2) x 0.5 % rms per point
    assert fit.residual == pytest.approx(0.005 * math.sqrt(2.0), rel=0.25)


def test_fit_circuit_stderr_matches_the_scatter_over_noise_realisations():
    f = np.logspace(-1, 4, 26)
    z = 2.0 + rc(f, 10.0, 1e-4)
    fits = [spectra.fit_circuit(f, noisy(z, 0.01, seed), "R0-p(R1,C1)", [1.0, 5.0, 1e-3])
            for seed in range(40)]
    values = np.array([fit.values for fit in fits])
    stderr = np.array([fit.stderr for fit in fits])
    ratio = values.std(axis=0, ddof=1) / stderr.mean(axis=0)
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_fit_circuit_recovers_a_constant_phase_element():
    f = np.logspace(-2, 5, 50)
    w = 2.0 * np.pi * f
    z = 0.5 + 1.0 / (1.0 / 20.0 + 3e-5 * (1j * w) ** 0.82)  # R0 + [R1 || CPE(Q, alpha)]
    fit = spectra.fit_circuit(f, z, "R0-p(R1,CPE1)", [1.0, 10.0, 1e-5, 0.9])
    np.testing.assert_allclose(fit.values, [0.5, 20.0, 3e-5, 0.82], rtol=1e-7)
    assert fit.names == ("R0", "R1", "CPE1_0", "CPE1_1")


def test_fit_circuit_holds_constants_and_takes_absolute_weights():
    z_exact = randles(FREQ, *TRUTH.values())
    z = noisy(z_exact, 0.005, seed=2)
    sigma = 0.005 * np.abs(z_exact)  # the true standard deviation of each part
    fit = spectra.fit_circuit(FREQ, z, "R0-p(C1,R1-Wo1)", GUESS[:4], constants={"Wo1_1": 100.0},
                              weights=sigma)
    assert fit.names == ("R0", "C1", "R1", "Wo1_0")
    assert np.all(np.abs(fit.values - np.array(list(TRUTH.values())[:4])) < 3.0 * fit.stderr)
    z_hand = randles(FREQ, *fit.values, 100.0)
    assert np.max(np.abs(fit.predict(FREQ) - z_hand) / np.abs(z_hand)) < 1e-12


def test_fit_circuit_reports_a_wrong_circuit_with_its_residual():
    z = randles(FREQ, *TRUTH.values())
    with pytest.raises(FastnaiError, match=r"did not converge: relative rms residual 0\.\d+ > 0\.05"):
        spectra.fit_circuit(FREQ, z, "R0-p(R1,C1)", [1e-4, 1e-3, 0.1])


def test_fit_circuit_reports_parameters_the_data_cannot_determine():
    f = np.logspace(0, 3, 10)
    z = noisy(np.full(f.size, 3.0 + 0j), 0.01, seed=5)
    # two resistors in series: only their sum is determined, and the errors say so
    fit = spectra.fit_circuit(f, z, "R0-R1", [1.0, 1.5])
    assert fit.values.sum() == pytest.approx(z.real.mean(), rel=1e-3)
    assert np.all(fit.stderr > 100.0 * fit.values.sum())
    # one frequency (two numbers) for three parameters: no degrees of freedom, no error estimate
    with pytest.raises(FastnaiError, match="standard errors are not finite"):
        spectra.fit_circuit(f[:1], z[:1] + rc(f[:1], 1.0, 1e-3), "R0-p(R1,C1)", [1.0, 1.0, 1e-3])


@pytest.mark.parametrize("circuit, guess, match", [
    ("R0-p(R1,C1)", [1.0, 2.0], "number of initial guesses"),
    ("R0-X1", [1.0, 2.0], "not in allowed elements"),
    ("R0-p(R1,C1)", [1.0, -2.0, 1e-3], "did not converge"),
])
def test_fit_circuit_turns_malformed_input_into_fastnai_errors(circuit, guess, match):
    f = np.logspace(0, 3, 10)
    with pytest.raises(FastnaiError, match=match):
        spectra.fit_circuit(f, 1.0 + rc(f, 1.0, 1e-3), circuit, guess)


def test_fit_circuit_rejects_bad_spectra_and_weights():
    f = np.logspace(0, 3, 10)
    z = 1.0 + rc(f, 1.0, 1e-3)
    with pytest.raises(FastnaiError, match="one length"):
        spectra.fit_circuit(f[:-1], z, "R0-p(R1,C1)", [1.0, 1.0, 1e-3])
    with pytest.raises(FastnaiError, match="positive"):
        spectra.fit_circuit(-f, z, "R0-p(R1,C1)", [1.0, 1.0, 1e-3])
    with pytest.raises(FastnaiError, match="weights"):
        spectra.fit_circuit(f, z, "R0-p(R1,C1)", [1.0, 1.0, 1e-3], weights="proportional")


def test_missing_impedance_py_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "impedance.models.circuits", None)
    f = np.logspace(0, 3, 10)
    with pytest.raises(FastnaiError, match=r"pip install fastnai\[fit\]"):
        spectra.fit_circuit(f, 1.0 + rc(f, 1.0, 1e-3), "R0-p(R1,C1)", [1.0, 1.0, 1e-3])


# --- Kramers-Kronig ----------------------------------------------------------------------------

@pytest.mark.parametrize("noise", [0.0, 1e-3])
def test_kramers_kronig_passes_a_randles_spectrum(noise):
    z = noisy(randles(FREQ, *TRUTH.values()), noise, seed=3)
    out = spectra.kramers_kronig(FREQ, z)
    assert out["valid"] and out["mu_reached"]
    assert out["max_residual"] < (3e-3 if noise else 1e-3)
    residual = (z - out["impedance_fit"]) / np.abs(z)
    np.testing.assert_allclose(out["residuals_real"], residual.real, atol=1e-12)
    np.testing.assert_allclose(out["residuals_imag"], residual.imag, atol=1e-12)


def test_kramers_kronig_passes_two_rc_arcs_with_a_dc_intercept():
    z = 1e-4 + rc(FREQ, 1e-3, 0.1) + rc(FREQ, 2e-3, 10.0)
    assert spectra.kramers_kronig(FREQ, z)["valid"]
    assert spectra.kramers_kronig(FREQ, z, add_capacitance=False)["valid"]


def test_kramers_kronig_fails_an_arc_with_its_imaginary_part_sign_flipped():
    # R/(1 - i w tau) has its pole in the upper half plane: anti-causal
    z = 1e-4 + rc(FREQ, 1e-3, 0.1) + np.conj(rc(FREQ, 2e-3, 10.0))
    out = spectra.kramers_kronig(FREQ, z)
    assert not out["valid"] and out["max_residual"] > 0.3


def test_kramers_kronig_fails_a_low_frequency_drift():
    # the cell drifts during the slow low-frequency points: Re Z rises without an Im Z partner
    z = randles(FREQ, *TRUTH.values())
    drift = 1e-3 * np.clip(np.log10(0.1 / FREQ), 0.0, None)
    out = spectra.kramers_kronig(FREQ, z + drift)
    assert not out["valid"] and out["max_residual"] > 0.03


def test_kramers_kronig_threshold_is_a_keyword_and_short_spectra_are_refused():
    z = noisy(randles(FREQ, *TRUTH.values()), 1e-3, seed=3)
    assert not spectra.kramers_kronig(FREQ, z, threshold=1e-4)["valid"]
    with pytest.raises(FastnaiError, match="at least 4 points"):
        spectra.kramers_kronig(FREQ[:3], z[:3])


# --- Warburg -------------------------------------------------------------------------------------

D_TRUE, DU_DC, THICKNESS = 1e-14, -1e-5, 1e-6  # m2 s-1, V m3 mol-1, m


def test_warburg_diffusivity_exact_for_a_semi_infinite_warburg_spectrum():
    sigma = abs(DU_DC) / (math.sqrt(2.0) * F * math.sqrt(D_TRUE))
    w = 2.0 * np.pi * FREQ
    z = 1e-4 + sigma * (1.0 - 1j) / np.sqrt(w)
    fit = spectra.warburg_coefficient(FREQ, z, f_max=10.0)
    assert fit.value == pytest.approx(sigma, rel=1e-10)
    assert fit.details["intercept_real"] == pytest.approx(1e-4, rel=1e-6)
    d = spectra.warburg_diffusivity(fit, dU_dc=DU_DC)
    assert d.value == pytest.approx(D_TRUE, rel=1e-6)


def test_warburg_diffusivity_within_one_percent_from_a_finite_space_randles_spectrum():
    r_d = abs(DU_DC) * THICKNESS / (F * D_TRUE)  # SPEC 3.6 slab
    tau = THICKNESS**2 / D_TRUE
    z = randles(FREQ, 1e-4, 0.1, 1e-3, r_d, tau)
    # omega tau from 30 to 600: semi-infinite, and far below the charge-transfer arc (1.6 kHz)
    fit = spectra.warburg_coefficient(FREQ, z, f_min=0.05, f_max=1.0)
    assert fit.details["sigma_real"] == pytest.approx(fit.details["sigma_imag"], rel=0.01)
    d = spectra.warburg_diffusivity(fit, dU_dc=DU_DC)
    assert d.value == pytest.approx(D_TRUE, rel=0.01)
    # below the transition Re Z flattens and -Im Z turns capacitive: the slopes part, D is wrong
    low = spectra.warburg_coefficient(FREQ, z, f_max=0.01)
    assert low.details["sigma_real"] < 0.1 * low.details["sigma_imag"]
    assert abs(spectra.warburg_diffusivity(low, dU_dc=DU_DC).value / D_TRUE - 1.0) > 0.1


def test_warburg_diffusivity_forms_agree_and_errors_propagate():
    sigma = Fit(7e-4, 7e-6)
    by_c = spectra.warburg_diffusivity(sigma, dU_dc=DU_DC)
    by_x = spectra.warburg_diffusivity(sigma, dU_dx=DU_DC / 2e-5, molar_volume=2e-5)
    assert by_x.value == pytest.approx(by_c.value, rel=1e-12)
    assert by_c.stderr == pytest.approx(2.0 * by_c.value * 0.01, rel=1e-12)
    per_area = spectra.warburg_diffusivity(7e-4 / 1e-4, dU_dc=DU_DC, area=1e-4)
    assert per_area.value == pytest.approx(by_c.value, rel=1e-12) and per_area.stderr == 0.0
    with pytest.raises(FastnaiError, match="exactly one"):
        spectra.warburg_diffusivity(sigma)
    with pytest.raises(FastnaiError, match="molar_volume"):
        spectra.warburg_diffusivity(sigma, dU_dx=-0.5)


def test_warburg_coefficient_needs_three_points_in_the_window():
    z = randles(FREQ, *TRUTH.values())
    with pytest.raises(FastnaiError, match="needs 3"):
        spectra.warburg_coefficient(FREQ, z, f_min=0.6, f_max=0.75)


# --- R_ct ------------------------------------------------------------------------------------------

def test_charge_transfer_resistance_from_a_noisy_randles_spectrum_with_a_guess_read_off_it():
    z = noisy(randles(FREQ, *TRUTH.values()), 0.005, seed=4)
    rct = spectra.charge_transfer_resistance(FREQ, z)
    assert abs(rct.value - TRUTH["R1"]) < 3.0 * rct.stderr and 0.0 < rct.stderr < 0.01 * TRUTH["R1"]
    assert rct.details["fit"].circuit == "R0-p(C1,R1-Wo1)"


def test_charge_transfer_resistance_with_a_cpe_double_layer():
    w = 2.0 * np.pi * FREQ
    s = np.sqrt(1j * w * 100.0)
    z = 1e-4 + 1.0 / (0.1 * (1j * w) ** 0.9 + 1.0 / (1e-3 + 1e-2 / (s * np.tanh(s))))
    rct = spectra.charge_transfer_resistance(FREQ, z, cpe=True)
    assert rct.value == pytest.approx(1e-3, rel=1e-7)
    assert rct.details["fit"].parameters["CPE1_1"].value == pytest.approx(0.9, rel=1e-7)


def test_charge_transfer_resistance_without_an_arc_asks_for_a_guess():
    z = 1e-4 + 1e-3 * (1 - 1j) / np.sqrt(2.0 * np.pi * FREQ)
    with pytest.raises(FastnaiError, match="initial_guess"):
        spectra.charge_transfer_resistance(FREQ, z)


def test_rct_activation_energy_is_the_analysis_arrhenius_fit():
    t = np.array([273.15, 288.15, 303.15, 318.15])
    rct_values = t / (2e6 * np.exp(-48000.0 / (R * t)))
    fits = [Fit(r, 0.01 * r) for r in rct_values]
    ea = spectra.rct_activation_energy(t, fits)
    assert ea.value == pytest.approx(48000.0, rel=1e-9)
    assert ea == activation_energy(t, rct_values)


# --- readers -------------------------------------------------------------------------------------

MPT_COLUMNS = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg", "time/s", "<Ewe>/V",
               "<I>/mA", "Cs/\u00b5F", "Cp/\u00b5F", "cycle number", "I Range", "|Ewe|/V", "|I|/A"]


def write_mpt(path, f, z, *, decimal_comma=False, cycles=(1,), columns=MPT_COLUMNS):
    """An EC-Lab PEIS text export of the spectrum z(f), swept from high to low frequency, latin-1."""
    header = ["EC-Lab ASCII FILE", "Nb header lines : {n}", "",
              "Potentio Electrochemical Impedance Spectroscopy", "", "Run on channel : 1 (SN 0815)",
              "Device : VMP-300 (SN 0815)", "Electrode surface area : 1,131 cm\u00b2",
              "Electrolyte : 1 M NaPF6 in diglyme", "mode                single sine",
              "fi                  100,000", "unit fi             kHz", "ff                  1,000",
              "unit ff             mHz", "Nd                  10", "Va (mV)             10,0", ""]
    header.append("\t".join(columns) + "\t")
    header[1] = header[1].format(n=len(header))
    order = np.argsort(f)[::-1]
    rows = []
    for k, cyc in enumerate(cycles):
        for j, i in enumerate(order):
            w = 2.0 * np.pi * f[i]
            values = {"freq/Hz": f[i], "Re(Z)/Ohm": z[i].real, "-Im(Z)/Ohm": -z[i].imag,
                      "|Z|/Ohm": abs(z[i]), "Phase(Z)/deg": math.degrees(np.angle(z[i])),
                      "time/s": 100.0 * k + j, "<Ewe>/V": 2.41, "<I>/mA": 1e-5,
                      "Cs/\u00b5F": 1e6 / (w * -z[i].imag), "Cp/\u00b5F": 1.0, "cycle number": cyc,
                      "I Range": 41, "|Ewe|/V": 0.01, "|I|/A": 0.01 / abs(z[i])}
            text = "\t".join(f"{values[c]:.7E}" for c in columns)
            rows.append(text.replace(".", ",") if decimal_comma else text)
    path.write_bytes(("\r\n".join(header + rows) + "\r\n").encode("latin-1"))
    return path


@pytest.mark.parametrize("decimal_comma", [False, True])
def test_read_mpt_returns_the_circuit_written_into_the_file(tmp_path, decimal_comma):
    f = np.logspace(-3, 5, 41)
    z = randles(f, 1.5, 2e-5, 20.0, 80.0, 50.0)  # a coin cell in ohm
    path = write_mpt(tmp_path / "peis.mpt", f, z, decimal_comma=decimal_comma)
    text = path.read_bytes().decode("latin-1")
    assert text.startswith("EC-Lab ASCII FILE\r\nNb header lines : 18\r\n") and "Cs/\u00b5F" in text
    # the file itself is the circuit: its |Z| and phase columns agree with Re and -Im
    first_row = text.splitlines()[18].replace(",", ".").split("\t")
    re_z, m_im, modulus, phase = (float(v) for v in first_row[1:5])
    assert modulus == pytest.approx(math.hypot(re_z, m_im), rel=1e-6)
    assert phase == pytest.approx(math.degrees(math.atan2(-m_im, re_z)), rel=1e-6)
    spectrum = spectra.read_mpt(path)
    np.testing.assert_allclose(spectrum.frequency, f, rtol=1e-7)
    np.testing.assert_allclose(spectrum.impedance, z, rtol=1e-6)
    assert spectrum.units == "ohm" and spectrum.source == str(path)
    per_area = spectra.read_spectrum(path, area=1.131e-4)
    np.testing.assert_allclose(per_area.impedance, z * 1.131e-4, rtol=1e-6)
    assert per_area.units == "ohm m2"


def test_read_mpt_names_missing_columns_and_lists_those_present(tmp_path):
    f = np.logspace(0, 3, 4)
    columns = [c for c in MPT_COLUMNS if c != "-Im(Z)/Ohm"]
    path = write_mpt(tmp_path / "no_imag.mpt", f, 1.0 + rc(f, 1.0, 1e-3), columns=columns)
    with pytest.raises(FastnaiError, match=r"no column '-Im\(Z\)/Ohm'; columns are 'freq/Hz', "
                                           r"'Re\(Z\)/Ohm', '\|Z\|/Ohm'"):
        spectra.read_mpt(path)


def test_read_mpt_asks_which_cycle_of_several(tmp_path):
    f = np.logspace(0, 3, 7)
    z = 1.0 + rc(f, 1.0, 1e-3)
    path = write_mpt(tmp_path / "three.mpt", f, z, cycles=(1, 2, 3))
    with pytest.raises(FastnaiError, match=r"holds 3 spectra \(cycle number 1, 2, 3\): pass cycle="):
        spectra.read_mpt(path)
    second = spectra.read_mpt(path, cycle=2)
    np.testing.assert_allclose(second.impedance, z, rtol=1e-6)
    with pytest.raises(FastnaiError, match="no cycle 4"):
        spectra.read_mpt(path, cycle=4)


def test_read_spectrum_finds_an_ec_lab_export_saved_as_txt(tmp_path):
    f = np.logspace(0, 3, 7)
    z = 1.0 + rc(f, 1.0, 1e-3)
    path = write_mpt(tmp_path / "peis.txt", f, z)
    np.testing.assert_allclose(spectra.read_spectrum(path).impedance, z, rtol=1e-6)
    other = tmp_path / "peis.xyz"
    other.write_text("freq/Hz,Z'/Ohm,-Z''/Ohm\n1,2,3\n")
    with pytest.raises(FastnaiError, match="unknown spectrum format '.xyz'"):
        spectra.read_spectrum(other)


CSV_HEADERS = [  # headers, factor from the file's value to SI, imaginary column holds -Im Z
    (("freq/Hz", "Z'/Ohm", "-Z''/Ohm"), (1.0, 1.0), True, "ohm"),
    (("Frequency (Hz)", "Re(Z)/Ohm", "-Im(Z)/Ohm"), (1.0, 1.0), True, "ohm"),
    (("Freq", "Zreal", "Zimag"), (1.0, 1.0), False, "ohm"),
    (("Frequency [kHz]", "Z' [mOhm]", "-Z'' [mOhm]"), (1e3, 1e-3), True, "ohm"),
    (("f/Hz", "Z'/Ohm cm2", "-Z''/Ohm cm2"), (1.0, 1e-4), True, "ohm m2"),
]


@pytest.mark.parametrize("headers, scale, negative, units", CSV_HEADERS, ids=lambda v: str(v))
def test_read_spectrum_csv_recognises_common_headers(tmp_path, headers, scale, negative, units):
    f = np.logspace(-2, 4, 13)
    z = 1.5 + rc(f, 20.0, 1e-5)
    im = -z.imag if negative else z.imag
    lines = [",".join(headers)] + [f"{a:.17g},{b:.17g},{c:.17g}" for a, b, c in
                                   zip(f / scale[0], z.real / scale[1], im / scale[1], strict=True)]
    path = tmp_path / "spectrum.csv"
    path.write_text("\n".join(lines[:1] + lines[1:][::-1]) + "\n")  # high to low frequency
    spectrum = spectra.read_spectrum(path)
    np.testing.assert_allclose(spectrum.frequency, f, rtol=1e-12)
    np.testing.assert_allclose(spectrum.impedance, z, rtol=1e-12)
    assert spectrum.units == units


def test_read_spectrum_csv_columns_sign_and_area(tmp_path):
    f = np.logspace(-1, 3, 5)
    z = 1.0 + rc(f, 2.0, 1e-3)
    path = tmp_path / "gamry.csv"
    path.write_text("Pt;Freq;Zreal;Zimag\n" + "".join(f"{k};{a:.17g};{b:.17g};{c:.17g}\n" for k, (a, b, c) in
                                                     enumerate(zip(f, z.real, z.imag, strict=True))))
    spectrum = spectra.read_spectrum_csv(path, columns={"imag": "Zimag"}, imag_sign="positive",
                                         area=2e-4)
    np.testing.assert_allclose(spectrum.impedance, z * 2e-4, rtol=1e-12)
    flipped = spectra.read_spectrum_csv(path, imag_sign="negative")
    np.testing.assert_allclose(flipped.impedance, np.conj(z), rtol=1e-12)
    with pytest.raises(FastnaiError, match="imag_sign"):
        spectra.read_spectrum_csv(path, imag_sign="minus")


def test_read_spectrum_csv_names_what_it_could_not_find(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("freq/Hz,Zmod/Ohm,Zphz/deg\n1,2,3\n10,2,3\n")
    with pytest.raises(FastnaiError, match=r"no column recognised for real, imag; columns are "
                                           r"'freq/Hz', 'Zmod/Ohm', 'Zphz/deg'"):
        spectra.read_spectrum_csv(path)
    with pytest.raises(FastnaiError, match="no column \"Z''/Ohm\" \\(for 'imag'\\)"):
        spectra.read_spectrum_csv(path, columns={"real": "Zmod/Ohm", "imag": "Z''/Ohm"})
    with pytest.raises(FastnaiError, match="unknown unit 'deg'"):
        spectra.read_spectrum_csv(path, columns={"real": "Zmod/Ohm", "imag": "Zphz/deg"})
    with pytest.raises(FastnaiError, match="does not exist"):
        spectra.read_spectrum(tmp_path / "absent.csv")


def test_spectrum_from_dataset_selects_one_eis_step():
    f = np.logspace(-2, 4, 7)
    z = np.stack([randles(f, *TRUTH.values()), 2.0 * randles(f, *TRUTH.values())])
    dims = ("spectrum", "frequency")
    ds = xr.Dataset({"impedance_real": (dims, z.real[:, ::-1], {"units": "ohm m2"}),
                     "impedance_imag": (dims, z.imag[:, ::-1], {"units": "ohm m2"})},
                    coords={"frequency": ("frequency", f[::-1], {"units": "Hz"})})  # stored descending
    second = spectra.spectrum_from_dataset(ds, spectrum=1)
    np.testing.assert_allclose(second.frequency, f, rtol=1e-15)
    np.testing.assert_allclose(second.impedance, z[1], rtol=1e-15)
    assert second.units == "ohm m2" and second.impedance.imag.max() < 0.0
    only = spectra.spectrum_from_dataset(ds.isel(spectrum=[0]))
    np.testing.assert_allclose(only.impedance, z[0], rtol=1e-15)
    with pytest.raises(FastnaiError, match="holds 2 spectra"):
        spectra.spectrum_from_dataset(ds)
    with pytest.raises(FastnaiError, match="out of range"):
        spectra.spectrum_from_dataset(ds, spectrum=2)
    with pytest.raises(FastnaiError, match="no impedance_real"):
        spectra.spectrum_from_dataset(ds.drop_vars("impedance_real"))
