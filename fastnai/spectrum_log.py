"""The impedance spectra of ``eis`` steps as every time-dependent model records them.

One row per spectrum (the frequency grid is shared: the case checks it): its DC state (time,
protocol step, the model's scalars) and Z at each frequency, for one or more named impedances
(``""``: the model's ``impedance_*``; ``"electrode"``: deposition's ``electrode_impedance_*``).
The log is saved in checkpoints (:meth:`SpectrumLog.state`, :meth:`SpectrumLog.restore`) and
becomes Dataset variables (:meth:`SpectrumLog.variables`, named in :mod:`fastnai.variables`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

__all__ = ["SpectrumLog", "add_spectra", "drop_single_spectrum"]


class SpectrumLog:
    """Rows of recorded spectra.

    Parameters
    ----------
    scalars
        The DC state each row holds besides ``t`` and ``step`` (``voltage``, ...).
    parts
        The impedances of a row: ``""`` is ``impedance``, ``"electrode"`` is
        ``electrode_impedance``; each is stored as its real and imaginary parts.

    Examples
    --------
    >>> log = SpectrumLog(("voltage",))
    >>> log.record(2.0, 1, [1.0, 10.0], {"voltage": 0.9}, {"": np.array([3 - 1j, 2 - 0.5j])})
    >>> sorted(log.variables())[:3], log.variables()["impedance_imag"].tolist()
    (['frequency', 'impedance_imag', 'impedance_modulus'], [[-1.0, -0.5]])
    """

    def __init__(self, scalars: tuple[str, ...], parts: tuple[str, ...] = ("",)):
        self.scalars = ("t", "step", *scalars)
        self.parts = parts
        self.fields = self.scalars + tuple(f"{_prefix(p, '_')}{ri}" for p in parts
                                           for ri in ("real", "imag"))
        self.rows: dict[str, list] = {name: [] for name in self.fields}
        self.frequency = np.zeros(0)

    def __len__(self) -> int:
        return len(self.rows["t"])

    def record(self, t: float, step: int, freqs, values: Mapping[str, float],
               impedances: Mapping[str, np.ndarray]) -> None:
        """Append one spectrum: its DC ``values`` (the scalars) and complex ``impedances``."""
        self.frequency = np.asarray(freqs, dtype=float)
        row = {"t": float(t), "step": float(step), **{k: float(values[k]) for k in self.scalars[2:]}}
        for part in self.parts:
            z = np.asarray(impedances[part], dtype=complex)
            row[f"{_prefix(part, '_')}real"] = z.real.copy()
            row[f"{_prefix(part, '_')}imag"] = z.imag.copy()
        for name in self.fields:
            self.rows[name].append(row[name])

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for a checkpoint (rows first), with ``frequency``."""
        out = {name: np.array(values, dtype=float) for name, values in self.rows.items()}
        out["frequency"] = self.frequency
        return out

    def arrays(self) -> dict[str, np.ndarray] | None:
        """:meth:`state`, or None when no spectrum was recorded."""
        return self.state() if len(self) else None

    def restore(self, state: Mapping | None) -> None:
        """The rows of a checkpoint's :meth:`state` (an absent one: no spectra)."""
        state = state or {}
        self.frequency = np.array(state.get("frequency", np.zeros(0)), dtype=float)
        for name in self.fields:
            values = np.asarray(state.get(name, np.zeros(0)), dtype=float)
            self.rows[name] = [np.array(v) if values.ndim > 1 else float(v) for v in values]

    def variables(self, arrays: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Dataset variables of the rows (or of saved ``arrays``), with ``frequency``:
        ``impedance_real/imag/modulus/phase`` (degree), ``PART_impedance_real/imag`` of the other
        parts, and ``spectrum_time``, ``spectrum_step``, ``spectrum_SCALAR``."""
        a = self.state() if arrays is None else arrays
        out = {"frequency": a["frequency"]}
        for part in self.parts:
            z = a[f"{_prefix(part, '_')}real"] + 1j * a[f"{_prefix(part, '_')}imag"]
            name = f"{_prefix(part, '_')}impedance"
            out[f"{name}_real"], out[f"{name}_imag"] = z.real, z.imag
            if part == "":
                out["impedance_modulus"] = np.abs(z)
                out["impedance_phase"] = np.degrees(np.angle(z))
        for scalar in self.scalars:
            out["spectrum_" + ("time" if scalar == "t" else scalar)] = a[scalar]
        return out


def add_spectra(data: dict, coords: dict, variables: Mapping[str, np.ndarray]) -> None:
    """Put :meth:`SpectrumLog.variables` into a model's ``data`` and ``coords``."""
    variables = dict(variables)
    coords["frequency"] = variables.pop("frequency")
    coords["spectrum"] = np.arange(variables["spectrum_time"].size, dtype=float)
    data.update(variables)


def drop_single_spectrum(ds: xr.Dataset) -> xr.Dataset:
    """The ``spectrum`` dimension is dropped when a run recorded one spectrum."""
    if "spectrum" in ds.dims and ds.sizes["spectrum"] == 1:
        return ds.squeeze("spectrum", drop=True)
    return ds


def _prefix(part: str, sep: str) -> str:
    return f"{part}{sep}" if part else ""
