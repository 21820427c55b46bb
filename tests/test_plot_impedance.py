"""Nyquist/Bode figures of impedance spectra: files, equal aspect, labels, legends, errors."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import xarray as xr

from fastnai.errors import FastnaiError
from fastnai.plot_impedance import (
    PHASE_LABEL,
    build_impedance_figure,
    build_nyquist_bode,
    format_frequency,
    impedance_figure,
    nyquist_bode_figure,
    pretty_unit,
)

matplotlib.use("Agg")

FREQUENCY = np.logspace(-2, 5, 36)  # Hz, 5 points a decade: decades 10 mHz .. 100 kHz


def randles(frequency, r0=0.5e-3, r1=2e-3, capacitance=0.5, sigma=1e-3):
    """Z = R0 + 1/(iωC + 1/(R1 + Zw)), Zw = σ(1 − i)/√ω: a Randles cell [Ω m²]."""
    omega = 2.0 * np.pi * np.asarray(frequency)
    warburg = sigma * (1.0 - 1.0j) / np.sqrt(omega)
    return r0 + 1.0 / (1.0j * omega * capacitance + 1.0 / (r1 + warburg))


def legend_texts(fig):
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def axis(fig, label):
    (found,) = [ax for ax in fig.axes if ax.get_label() == label]
    return found


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_randles_figure_is_written_in_each_vector_or_raster_format(tmp_path, suffix):
    path = nyquist_bode_figure(FREQUENCY, randles(FREQUENCY), tmp_path / "sub" / f"eis{suffix}")
    assert path == tmp_path / "sub" / f"eis{suffix}"
    data = path.read_bytes()
    assert len(data) > 1000
    if suffix == ".pdf":
        assert data.startswith(b"%PDF")
    if suffix == ".svg":
        assert b"<svg" in data[:2000]


def test_png_decodes_at_130_dpi_and_the_figure_size(tmp_path):
    import matplotlib.image

    path = nyquist_bode_figure(FREQUENCY, randles(FREQUENCY), tmp_path / "eis.png")
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (round(4.5 * 130), round(10.0 * 130))


def test_nyquist_panel_has_equal_data_aspect_after_drawing():
    fig = build_nyquist_bode(FREQUENCY, randles(FREQUENCY))
    fig.draw_without_rendering()
    nyquist = axis(fig, "nyquist")
    origin, one = nyquist.transData.transform([(0.0, 0.0), (1e-3, 1e-3)])
    pixels_x, pixels_y = one - origin
    assert pixels_x == pytest.approx(pixels_y, rel=1e-6)
    assert nyquist.get_aspect() == 1.0


def test_axis_labels_carry_the_unit_and_the_phase_sign_convention():
    fig = build_nyquist_bode(FREQUENCY, randles(FREQUENCY), unit="Ω g")
    nyquist, magnitude, phase = (axis(fig, k) for k in ("nyquist", "bode magnitude", "bode phase"))
    assert nyquist.get_xlabel() == "Re Z (Ω g)"
    assert nyquist.get_ylabel() == "−Im Z (Ω g)"
    assert magnitude.get_ylabel() == "|Z| (Ω g)"
    assert phase.get_ylabel() == PHASE_LABEL == "−phase of Z (°)"
    assert phase.get_xlabel() == "frequency (Hz)" and magnitude.get_xlabel() == ""
    assert magnitude.get_shared_x_axes().joined(magnitude, phase)
    assert magnitude.get_xscale() == "log" and magnitude.get_yscale() == "log"


def test_every_decade_in_range_is_marked_and_labels_neither_overlap_nor_leave_the_axes():
    fig = build_nyquist_bode(FREQUENCY, randles(FREQUENCY))
    nyquist = axis(fig, "nyquist")
    (markers,) = [line for line in nyquist.lines if line.get_gid() == "decades"]
    assert markers.get_xdata().size == 8  # 10 mHz .. 100 kHz
    expected = np.interp(np.arange(-2, 6), np.log10(FREQUENCY), randles(FREQUENCY).real)
    np.testing.assert_allclose(markers.get_xdata(), expected)
    texts = [t for t in nyquist.texts if t.get_gid() == "decade label"]
    names = {t.get_text() for t in texts}
    assert {"10 mHz", "100 mHz", "1 Hz", "10 Hz", "100 Hz"} <= names
    assert names <= {"10 mHz", "100 mHz", "1 Hz", "10 Hz", "100 Hz", "1 kHz", "10 kHz", "100 kHz"}
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    frame = nyquist.get_window_extent(renderer)
    for k, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 <= box.y1 <= frame.y1
        assert not any(box.overlaps(other) for other in boxes[k + 1:])


def test_a_spectrum_within_one_decade_has_no_decade_marker_and_no_legend_entry_for_it():
    fig = build_nyquist_bode(np.array([2.0, 3.0, 5.0]), np.array([1 - 1j, 1.5 - 0.8j, 2 - 0.1j]))
    assert not [line for line in axis(fig, "nyquist").lines if line.get_gid() == "decades"]
    assert legend_texts(fig) == ["data"]


def test_frequency_decades_are_formatted_with_si_prefixes():
    assert [format_frequency(10.0**k) for k in range(-3, 6)] == [
        "1 mHz", "10 mHz", "100 mHz", "1 Hz", "10 Hz", "100 Hz", "1 kHz", "10 kHz", "100 kHz"]
    assert format_frequency(1e-6) == "1 µHz"
    assert format_frequency(1e6) == "1 MHz"


def test_capacitive_arc_is_plotted_with_positive_minus_im_z_and_positive_minus_phase():
    z = randles(FREQUENCY)
    assert np.all(z.imag < 0.0)
    fig = build_nyquist_bode(FREQUENCY, z)
    (data,) = [line for line in axis(fig, "nyquist").lines if line.get_gid() == "data"]
    assert np.all(data.get_ydata() > 0.0)
    (phase,) = [line for line in axis(fig, "bode phase").lines if line.get_gid() == "data"]
    assert np.all(phase.get_ydata() > 0.0) and np.all(phase.get_ydata() < 90.0)
    assert axis(fig, "nyquist").get_ylim()[0] < 0.0 < axis(fig, "nyquist").get_ylim()[1]


def test_fit_is_a_line_over_the_data_markers_on_its_own_denser_grid():
    dense = np.logspace(-2, 5, 300)
    fig = build_nyquist_bode(FREQUENCY, randles(FREQUENCY) * 1.01, fit=(dense, randles(dense)))
    for label in ("nyquist", "bode magnitude", "bode phase"):
        lines = axis(fig, label).lines
        (data,) = [line for line in lines if line.get_gid() == "data"]
        (fit,) = [line for line in lines if line.get_gid() == "fit"]
        assert data.get_linestyle() == "None" and data.get_marker() == "o"
        assert fit.get_marker() == "None" and fit.get_xdata().size == 300
        assert fit.get_zorder() > data.get_zorder()
    assert legend_texts(fig) == ["data", "frequency decade", "fitted circuit"]


def test_several_spectra_get_one_legend_entry_each_off_the_data():
    spectra = [randles(FREQUENCY, r1=r1) for r1 in (1e-3, 2e-3, 4e-3)]
    fits = [(FREQUENCY, spectra[0]), None, (FREQUENCY, spectra[2])]
    fig = build_nyquist_bode([FREQUENCY] * 3, spectra, fit=fits, labels=["a", "b", "c"])
    assert legend_texts(fig) == ["a", "b", "c", "frequency decade", "fitted circuit"]
    (legend,) = fig.legends
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    colors = {line.get_color() for line in axis(fig, "nyquist").lines if line.get_gid() == "data"}
    assert len(colors) == 3


def test_a_two_dimensional_array_is_one_spectrum_per_row():
    z = np.stack([randles(FREQUENCY), randles(FREQUENCY, r0=1e-3)])
    fig = build_nyquist_bode(np.stack([FREQUENCY] * 2), z)
    assert sum(line.get_gid() == "data" for line in axis(fig, "nyquist").lines) == 2


def spectra_dataset(n_spectra=3, units="ohm m2", **extra):
    z = np.stack([randles(FREQUENCY, r1=1e-3 * (k + 1)) for k in range(n_spectra)])
    ds = xr.Dataset(
        {"impedance_real": (("spectrum", "frequency"), z.real, {"units": units}),
         "impedance_imag": (("spectrum", "frequency"), z.imag, {"units": units})},
        coords={"frequency": ("frequency", FREQUENCY, {"units": "Hz"})},
        attrs={"model": "drift_diffusion"})
    return ds.assign(**extra)




def test_dataset_spectra_are_labelled_by_their_voltage(tmp_path):
    ds = spectra_dataset(spectrum_voltage=("spectrum", [0.95, 0.5, 0.1234], {"units": "V"}))
    fig = build_impedance_figure(ds)
    assert legend_texts(fig)[:3] == ["0.95 V", "0.5 V", "0.123 V"]
    assert axis(fig, "nyquist").get_xlabel() == "Re Z (Ω m²)"
    assert fig.get_suptitle() == "drift_diffusion: impedance"
    path = impedance_figure(ds, tmp_path / "eis.png")
    assert path.stat().st_size > 1000


def test_dataset_spectrum_labels_come_from_a_coordinate_an_attribute_or_the_index():
    labelled = spectra_dataset(2).assign_coords(spectrum_label=("spectrum", ["charge", "rest"]))
    assert legend_texts(build_impedance_figure(labelled))[:2] == ["charge", "rest"]
    by_attr = spectra_dataset(2)
    by_attr.attrs["spectrum_label"] = np.array(["x", "y"])
    assert legend_texts(build_impedance_figure(by_attr))[:2] == ["x", "y"]
    assert legend_texts(build_impedance_figure(spectra_dataset(2)))[:2] == ["spectrum 0", "spectrum 1"]
    indexed = spectra_dataset(2).assign_coords(spectrum=[0.0, 1.0])  # as the model writes it
    assert legend_texts(build_impedance_figure(indexed))[:2] == ["spectrum 0", "spectrum 1"]


def test_dataset_without_spectrum_dimension_and_padded_spectra():
    ds = spectra_dataset(1, units="ohm").isel(spectrum=0)
    fig = build_impedance_figure(ds)
    assert axis(fig, "nyquist").get_ylabel() == "−Im Z (Ω)"
    assert legend_texts(fig) == ["data", "frequency decade"]
    fig = build_impedance_figure(ds.assign(spectrum_voltage=((), 0.4, {"units": "V"})))
    assert legend_texts(fig)[0] == "0.4 V"  # a squeezed single spectrum keeps its voltage
    padded = spectra_dataset(2)
    padded["impedance_real"][1, :5] = np.nan  # a shorter second spectrum
    padded["impedance_imag"][1, :5] = np.nan
    fig = build_impedance_figure(padded)
    sizes = [line.get_xdata().size for line in axis(fig, "nyquist").lines if line.get_gid() == "data"]
    assert sizes == [FREQUENCY.size, FREQUENCY.size - 5]


@pytest.mark.parametrize(("units", "printed"), [("ohm m2", "Ω m²"), ("ohm", "Ω"), ("ohm g", "Ω g"),
                                                ("ohm cm2", "Ω cm²"), ("ohm m-2", "Ω m⁻²")])
def test_udunits_impedance_units_are_printed_with_symbols(units, printed):
    assert pretty_unit(units) == printed


@pytest.mark.parametrize(("frequency", "impedance", "fit", "labels", "match"), [
    (FREQUENCY[:-1], randles(FREQUENCY), None, None, "35 frequencies but 36 impedance"),
    (np.r_[0.0, FREQUENCY[1:]], randles(FREQUENCY), None, None, "finite and positive"),
    (-FREQUENCY, randles(FREQUENCY), None, None, "finite and positive"),
    (np.array([]), np.array([], dtype=complex), None, None, "empty"),
    ([FREQUENCY, FREQUENCY], [randles(FREQUENCY)], None, None, "2 frequency arrays but 1"),
    (FREQUENCY, randles(FREQUENCY), None, ["a", "b"], "2 labels given for 1 spectra"),
    (FREQUENCY, randles(FREQUENCY), (FREQUENCY, randles(FREQUENCY)[:3]), None,
     "fit 0: 36 frequencies but 3"),
    (FREQUENCY, randles(FREQUENCY), [(FREQUENCY, randles(FREQUENCY))] * 2, None, "2 .* pairs for 1"),
    (FREQUENCY, np.full(FREQUENCY.size, np.nan + 0j), None, None, "36 non-finite"),
    (FREQUENCY * 1j, randles(FREQUENCY), None, None, "must be real"),
])
def test_malformed_spectra_raise_a_clear_fastnai_error(frequency, impedance, fit, labels, match):
    with pytest.raises(FastnaiError, match=match):
        build_nyquist_bode(frequency, impedance, fit=fit, labels=labels)


def test_an_output_suffix_that_names_no_format_is_refused_before_plotting(tmp_path):
    with pytest.raises(FastnaiError, match="suffix must name a format"):
        nyquist_bode_figure(FREQUENCY, randles(FREQUENCY), tmp_path / "eis.txt")
    assert not list(tmp_path.iterdir())


def test_malformed_datasets_raise_a_clear_fastnai_error():
    with pytest.raises(FastnaiError, match="no impedance_imag"):
        build_impedance_figure(spectra_dataset().drop_vars("impedance_imag"))
    mixed = spectra_dataset()
    mixed["impedance_imag"].attrs["units"] = "ohm"
    with pytest.raises(FastnaiError, match="different units"):
        build_impedance_figure(mixed)
    with pytest.raises(FastnaiError, match="3 spectrum labels for 2"):
        build_impedance_figure(spectra_dataset(2, spectrum_voltage=("v", [0.1, 0.2, 0.3])))
