"""``[[protocol]]`` step keys shared by the electrochemical models (drift_diffusion, film_stress).

Each step type is a dict of :class:`~fastnai.schema.Key` by leaf name; a model's ``STEP_KEYS``
combines these with its own steps (CV variants, quasi-static sweeps).
"""

from __future__ import annotations

import math

import numpy as np

from . import schema

K = schema.Key
Q = schema.QUANTITY

CUTOFF = K("cutoff_voltage", Q, None, "V", -5.0, 10.0,
           doc="cut-off voltage (cell voltage, with any series resistance)")
DIRECTION = K("direction", schema.CHOICE, "discharge", choices=("discharge", "charge"),
              doc="discharge: sodiation (cathodic); charge: desodiation (anodic)")
C_RATE = K("c_rate", schema.NUMBER, None, None, 0.0, 1e4, exclusive_minimum=True, required=True,
           doc="current in multiples of 1C (the electrode's capacity per hour)")

REST = {"duration": K("duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True, required=True,
                      doc="open-circuit time")}
CONSTANT_CURRENT = {
    "c_rate": C_RATE, "direction": DIRECTION, "cutoff_voltage": CUTOFF,
    "max_duration": K("max_duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True,
                      doc="time limit (default 1.5 h / c_rate)")}
CONSTANT_VOLTAGE = {
    "voltage": K("voltage", Q, None, "V", -5.0, 10.0, required=True, doc="held voltage"),
    "duration": K("duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True, required=True,
                  doc="hold time")}
GITT = {
    "c_rate": C_RATE, "direction": DIRECTION, "cutoff_voltage": CUTOFF,
    "pulse_duration": K("pulse_duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True,
                        required=True, doc="current pulse"),
    "rest_duration": K("rest_duration", Q, None, "s", 0.0, 1e9, exclusive_minimum=True,
                       required=True, doc="relaxation after each pulse"),
    "n_pulses": K("n_pulses", schema.INTEGER, 10, None, 1, 100_000, doc="pulses at most")}
CV_CYCLES = K("cycles", schema.INTEGER, 1, None, 1, 1000, doc="full cycles")
CV_FIRST = K("first", schema.CHOICE, "cathodic", choices=("cathodic", "anodic"),
             doc="direction of the first sweep (cathodic: sodiation)")

EIS = {
    "frequency_min": K("frequency_min", Q, 0.01, "Hz", 0.0, 1e9, exclusive_minimum=True,
                       doc="lowest frequency"),
    "frequency_max": K("frequency_max", Q, 1e5, "Hz", 0.0, 1e9, exclusive_minimum=True,
                       doc="highest frequency"),
    "points_per_decade": K("points_per_decade", schema.INTEGER, 10, None, 1, 1000,
                           doc="frequencies per decade, log-spaced, both ends included"),
    "frequencies": K("frequencies", schema.QUANTITY_LIST, None, "Hz", 0.0, 1e9,
                     exclusive_minimum=True,
                     doc="explicit frequencies instead of frequency_min/max and points_per_decade"),
}
SINE = {
    "voltage_amplitude": K("voltage_amplitude", Q, None, "V", 0.0, 10.0, exclusive_minimum=True,
                           doc="voltage sine about the voltage at the step's start (give this or "
                               "current_amplitude)"),
    "current_amplitude": K("current_amplitude", Q, None, "A m^-2", 0.0, 1e6,
                           exclusive_minimum=True,
                           doc="current sine about current_offset, per electrolyte area"),
    "current_offset": K("current_offset", Q, 0.0, "A m^-2", -1e6, 1e6,
                        doc="DC current of a current sine (anodic positive; 0: about open circuit)"),
    "frequency": K("frequency", Q, None, "Hz", 0.0, 1e9, exclusive_minimum=True, required=True,
                   doc="sine frequency"),
    "periods": K("periods", schema.NUMBER, 5.0, None, 0.0, 1e6, exclusive_minimum=True,
                 doc="duration in periods"),
    "points_per_period": K("points_per_period", schema.INTEGER, 64, None, 8, 100_000,
                           doc="the time step is at most one period over this"),
}
#: A spectrum's drift ratio (how fast its DC state moves against how fast a thermal-voltage
#: signal at frequency_min moves it) above which the spectrum is warned as of a moving state.
DRIFT_WARNING = 0.1


def warn_if_drifting(ratio: float, t: float, what: str = "the state") -> None:
    """Warn when a spectrum's state (``what``, e.g. "the film's theta") moves as fast as the
    signal moves it: the spectrum then describes a moving state."""
    import warnings

    if ratio > DRIFT_WARNING:
        warnings.warn(f"eis at t = {t:.6g} s: {what} drifts ({ratio:.3g} times the change a "
                      "thermal-voltage signal at frequency_min makes): the spectrum describes a "
                      "moving state; rest longer before the eis step", RuntimeWarning,
                      stacklevel=3)


#: Amplitude above which a sine is warned as outside the linear regime: a few thermal voltages.
SINE_LINEAR_VOLTAGE = 0.025


def eis_frequencies(step) -> np.ndarray:
    """The frequencies [Hz] of an ``eis`` step, ascending: its list, or ``points_per_decade``
    log-spaced from ``frequency_min`` to ``frequency_max`` (both included).

    >>> eis_frequencies({"frequency_min": 0.01, "frequency_max": 1e5, "points_per_decade": 10}).size
    71
    """
    if step.get("frequencies"):
        return np.sort(np.asarray(step["frequencies"], dtype=float))
    lo, hi = math.log10(step["frequency_min"]), math.log10(step["frequency_max"])
    n = max(2, round((hi - lo) * step["points_per_decade"]) + 1)
    return np.logspace(lo, hi, n)


def check_eis_and_sine(steps, error) -> None:
    """Cross-key checks of eis and sine steps: raise ``error`` (a CaseError class) before work.

    eis: frequency_min < frequency_max; all eis steps of a case share one frequency grid (the
    spectra form one array). sine: exactly one of voltage_amplitude and current_amplitude; a
    voltage amplitude above SINE_LINEAR_VOLTAGE is allowed but warned (the response is then
    not the linear impedance).
    """
    import warnings

    grid = None
    for i, s in enumerate(steps):
        if s["step"] == "eis":
            if not s.get("frequencies") and not s["frequency_min"] < s["frequency_max"]:
                raise error(f"protocol[{i}]: eis needs frequency_min < frequency_max (got "
                            f"{s['frequency_min']:g} and {s['frequency_max']:g} Hz)")
            f = eis_frequencies(s)
            if grid is not None and (f.shape != grid.shape or not np.allclose(f, grid, rtol=1e-12)):
                raise error(f"protocol[{i}]: every eis step of a case must use the same "
                            "frequencies (the spectra share one frequency coordinate)")
            grid = f
        elif s["step"] == "sine":
            given = [k for k in ("voltage_amplitude", "current_amplitude") if s.get(k) is not None]
            if len(given) != 1:
                raise error(f"protocol[{i}]: a sine step needs exactly one of voltage_amplitude "
                            f"and current_amplitude (got {given or 'neither'})")
            if s.get("voltage_amplitude", 0.0) and s["voltage_amplitude"] > SINE_LINEAR_VOLTAGE:
                warnings.warn(f"protocol[{i}]: a sine of {s['voltage_amplitude'] * 1e3:g} mV is "
                              f"beyond the linear regime (about {SINE_LINEAR_VOLTAGE * 1e3:g} mV): "
                              "its response is not the small-signal impedance", UserWarning,
                              stacklevel=2)
