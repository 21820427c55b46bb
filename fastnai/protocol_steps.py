"""``[[protocol]]`` step keys shared by the electrochemical models (drift_diffusion, film_stress).

Each step type is a dict of :class:`~fastnai.schema.Key` by leaf name; a model's ``STEP_KEYS``
combines these with its own steps (CV variants, quasi-static sweeps).
"""

from __future__ import annotations

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
