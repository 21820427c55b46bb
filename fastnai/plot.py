"""Figures of result Datasets (matplotlib is imported only here, and only when plotting)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .errors import FastnaiError


def plot_result(ds: xr.Dataset, path: str | Path) -> Path:
    """Write the standard figure of a result: the band diagram for ``band_bending``; for
    ``drift_diffusion`` the electrode's curves and profiles (``deposition``: transients and
    morphology), or the Nyquist and Bode plots when the run holds impedance spectra and no time
    passed (equilibria and eis steps only)."""
    model = ds.attrs.get("model")
    if model == "band_bending":
        return band_diagram(ds, path)
    if model == "drift_diffusion":
        if "impedance_real" in ds and float(np.ptp(ds.t.values)) == 0.0:
            # only equilibria and eis steps: no time series to draw, the spectra are the result
            from .plot_impedance import impedance_figure

            return impedance_figure(ds, path)
        return electrode_figure(ds, path)
    if model == "film_stress":
        if "von_mises_map" in ds:
            return cross_section_figure(ds, path)
        return film_stress_figure(ds, path)
    if model == "deposition":
        if "impedance_real" in ds and float(np.ptp(ds.t.values)) == 0.0:
            from .plot_impedance import impedance_figure

            return impedance_figure(ds, path)
        return deposition_figure(ds, path)
    raise FastnaiError(f"no plot is defined for model {model!r}")


NEUTRALITY_WARNING = 0.01  # |bulk_neutrality| above which a band diagram says it has no bulk


def band_diagram(ds: xr.Dataset, path: str | Path) -> Path:
    """Band diagram: E_C, E_V, E_F (top) and n (bottom) versus distance from the interface.

    Distance in nm from the contact, linear below 0.1 nm and logarithmic above; density axis
    logarithmic. A domain whose far end is not neutral (``|bulk_neutrality|`` above
    :data:`NEUTRALITY_WARNING`: a small dot or particle that is all space charge) says so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth_nm = ds["depth"].values * 1e9
    order = np.argsort(depth_nm)
    depth_nm = depth_nm[order]
    fig, (ax_e, ax_n) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 2]})
    ax_e.plot(depth_nm, ds["Ec"].values[order], label="$E_C$", color="tab:blue")
    ax_e.plot(depth_nm, ds["Ev"].values[order], label="$E_V$", color="tab:red")
    ax_e.plot(depth_nm, ds["Ef"].values[order], "--", label="$E_F$", color="k")
    ax_e.set_ylabel("energy relative to $E_F$ (eV)")
    ax_e.legend(loc="best", frameon=False)
    geometry = ds.attrs.get("geometry", "planar")
    ax_e.set_title(f"band_bending ({geometry}): band bending {float(ds.band_bending):.3f} eV, "
                   f"$E_s$ = {float(ds.interface_field) * 1e-2:.3g} V/cm", fontsize=9)
    ax_n.semilogy(depth_nm, ds["n"].values[order] * 1e-6, label="$n$", color="tab:blue")
    p = ds["p"].values[order] * 1e-6
    if np.any(p > 1e-10):
        ax_n.semilogy(depth_nm, np.maximum(p, 1e-30), label="$p$", color="tab:red")
    ax_n.set_ylabel("density (cm$^{-3}$)")
    ax_n.set_xlabel("distance from the interface (nm; linear below 0.1 nm; shared)")
    n = ds["n"].values * 1e-6
    ax_n.set_ylim(max(n.min() * 0.3, n.max() * 1e-12), n.max() * 3)
    ax_n.legend(loc="best", frameon=False)
    imbalance = float(ds["bulk_neutrality"]) if "bulk_neutrality" in ds else 0.0
    if abs(imbalance) > NEUTRALITY_WARNING:  # the far end is still space charge: no bulk
        ax_e.text(0.02, 0.5, f"not neutral at the far end (space charge {imbalance:.2g} of the "
                  "fixed charge):\nthe domain never reaches a bulk; band bending is to the "
                  "boundary", transform=ax_e.transAxes, ha="left", va="center", fontsize=7,
                  color="tab:red")
    for ax in (ax_e, ax_n):
        # linear over the first 0.1 nm, logarithmic beyond: the layer and the bulk both show
        ax.set_xscale("symlog", linthresh=0.1, linscale=0.5)
        ax.set_xlim(0.0, depth_nm[-1])
        ax.grid(alpha=0.3)
    return _save(fig, path)


def electrode_figure(ds: xr.Dataset, path: str | Path) -> Path:
    """drift_diffusion: the CV family (when the run has a scan_rate dimension) or the voltage vs
    specific-capacity curve, and theta, potential and field profiles near the junction at the
    stored times (distance from the contact on a symlog axis).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_profiles = "theta" in ds
    fig, axes = plt.subplots(1 + has_profiles * 3, 1, figsize=(8.4, 3.2 + 7.5 * has_profiles))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    if "scan_rate" in ds.dims:
        cmap = plt.get_cmap("viridis")
        for k, rate in enumerate(ds.scan_rate.values):
            ax.plot(ds.cv_voltage[k], ds.cv_current_density[k] / rate,
                    color=cmap(k / max(1, ds.scan_rate.size - 1)), label=f"{rate * 1e3:g} mV/s")
        ax.set_xlabel("voltage vs Na$^+$/Na (V)")
        ax.set_ylabel("j / v (A m$^{-2}$ / (V s$^{-1}$))")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title="scan rate", title_fontsize=7)  # off the curves
        ax.set_title("CV family (anodic positive); j/v collapses in the thin-layer regime",
                     fontsize=9)
    else:
        ax.plot(ds.specific_capacity, ds.cell_voltage, color="k")
        ax.set_xlabel("Na inserted (mA h g$^{-1}$)")
        ax.set_ylabel("cell voltage (V)")
        ax.set_title("voltage vs capacity", fontsize=9)
    ax.grid(alpha=0.3)
    if has_profiles:
        depth_nm = ds["depth"].values * 1e9
        order = np.argsort(depth_nm)
        times = ds.t_profile.values
        picks = np.unique(np.linspace(0, times.size - 1, min(6, times.size)).astype(int))
        cmap = plt.get_cmap("plasma")
        for j, k in enumerate(picks):
            color = cmap(j / max(1, picks.size - 1))
            volts = float(np.interp(times[k], ds.t.values, ds.voltage.values))
            label = f"t = {times[k]:.3g} s, V = {volts:.2f} V"
            axes[1].semilogy(depth_nm[order], np.maximum(ds.theta[k].values[order], 1e-30),
                             color=color, label=label)
            axes[2].plot(depth_nm[order], ds.potential[k].values[order], color=color)
            axes[3].plot(depth_nm[order], ds.electric_field[k].values[order] * 1e-9, color=color)
        axes[1].set_ylabel(r"Na site fraction $\theta$ (1)")
        axes[1].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title="profile at" + (" (all scan rates in sequence)"
                                             if "scan_rate" in ds.dims else ""),
                       title_fontsize=7)
        axes[2].set_ylabel(r"potential $\psi$ (V; $E_C = -q\psi$)")
        axes[3].set_ylabel("electric field (V nm$^{-1}$)")
        for a in axes[1:]:
            a.set_xscale("symlog", linthresh=1.0, linscale=0.5)
            a.set_xlabel("distance from the contact (nm; linear below 1 nm)")
            a.grid(alpha=0.3)
    return _save(fig, path)


def film_stress_figure(ds: xr.Dataset, path: str | Path) -> Path:
    """film_stress: in-plane stress vs height at several states (the graded-film paper's
    Fig. 1c; sodiation solid, desodiation dashed), the composition profile, and the interface /
    peak stress and the largest energy release rate along the protocol (against time in a
    diffusion run, with the voltage).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    transient = "t" in ds.dims
    fig, (ax_s, ax_x, ax_t) = plt.subplots(1, 3, figsize=(12.0, 4.2),
                                           gridspec_kw={"width_ratios": [3, 1, 3]})
    z_nm = ds.z.values * 1e9
    theta = ds.mean_theta.values
    n = theta.size
    rising = np.r_[True, np.diff(theta) >= 0.0]
    picks = np.unique(np.linspace(0, n - 1, 9).astype(int))
    cmap = plt.get_cmap("viridis")
    for j, k in enumerate(picks):
        label = (f"t = {float(ds.t[k]):.3g} s, " if transient else "") + f"soc {theta[k]:.2f}"
        ax_s.plot(ds.sigma_xx[k].values * 1e-9, z_nm, "-" if rising[k] else "--",
                  color=cmap(j / max(1, picks.size - 1)), label=label)
    ax_s.set_xlabel(r"$\sigma_{xx}$ (GPa)")
    ax_s.set_ylabel("height above Cu, reference (nm)")
    ax_s.legend(frameon=False, fontsize=7, loc="best")
    ax_s.set_title(f"{ds.attrs.get('kinematics')} eigenstrain, plasticity "
                   f"{'on' if ds.attrs.get('plasticity') else 'off'}", fontsize=9)
    ax_x.plot(ds.x_Bi.values, z_nm, color="k")
    ax_x.set_xlabel("$x_{Bi}$ (1)")
    ax_x.set_xlim(0, 1)
    axis = ds.t.values if transient else theta  # a quasi-static sweep: its state of charge
    ax_t.plot(axis, ds.peak_film_stress.values * 1e-9, lw=2.5, alpha=0.6,
              label="peak film stress")
    ax_t.plot(axis, ds.interface_stress.values * 1e-9, "--", color="k", lw=1.0,
              label="interface stress")  # drawn over the peak: they coincide when it is there
    ax_t.set_xlabel("time (s)" if transient else "state of charge, mean θ (1)")
    ax_t.set_ylabel("stress (GPa)")
    twin = ax_t.twinx()
    if transient:
        twin.plot(axis, ds.voltage.values, ":", color="tab:red", label="voltage")
        twin.set_ylabel("voltage vs Na$^+$/Na (V)")
    else:
        twin.plot(axis, ds.energy_release_rate.values, ":", color="tab:red", label="G (max)")
        twin.set_ylabel("energy release rate (J m$^{-2}$)")
    ax_t.legend(frameon=False, fontsize=7, loc="best")
    twin.legend(frameon=False, fontsize=7, loc="lower right")
    for ax in (ax_s, ax_x, ax_t):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def cross_section_figure(ds: xr.Dataset, path: str | Path) -> Path:
    """film_stress, 2D: von Mises and equivalent plastic strain maps of the last state around
    the film edge (Gauss points, triangulated), and sigma_xx along the symmetry line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = ds.x_point.values * 1e6
    z = ds.z_point.values * 1e6
    edge_x = float(ds.attrs.get("film_width", 0.0)) * 0.5e6
    top = float(z.max())
    span = max(3.0 * (top - float(ds.edge_zone_z.max()) * 1e6), 0.5)
    near = (z > top - 2.5 * span) & (x < edge_x + 2.0 * span)
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 4.0), gridspec_kw={"width_ratios": [4, 4, 2]})
    for ax, name, label, scale in ((axes[0], "von_mises_map", "von Mises (GPa)", 1e-9),
                                   (axes[1], "plastic_strain_map", "equivalent plastic strain (1)",
                                    1)):
        values = ds[name].values[near] * scale
        # the free corner is singular: a colour range up to its peak would hide the film, so
        # the range ends at the 98th percentile of the cells drawn (extend="max" marks more)
        top_value = float(np.percentile(values, 98.0))
        levels = np.linspace(min(float(values.min()), top_value), top_value, 25)
        if levels[-1] <= levels[0]:
            levels = 24
        m = ax.tricontourf(x[near], z[near], values, levels=levels, cmap="viridis",
                           extend="max" if np.ndim(levels) else "neither")
        fig.colorbar(m, ax=ax, label=f"{label}, clipped at 98 %")
        ax.plot(float(ds.edge_zone_x[-1]) * 1e6, float(ds.edge_zone_z[-1]) * 1e6, "r+", ms=10)
        ax.set_xlabel("x from the symmetry plane (µm)")
        ax.set_ylabel("z (µm)")
        ax.set_aspect("equal", adjustable="box")
    axes[0].set_title(f"soc {float(ds.mean_theta[-1]):.2f}; + edge-zone stress point", fontsize=9)
    for k in np.unique(np.linspace(0, ds.soc.size - 1, 5).astype(int)):
        axes[2].plot(ds.sigma_xx[k].values * 1e-9, ds.z.values * 1e9,
                     label=f"soc {float(ds.mean_theta[k]):.2f}")
    axes[2].set_xlabel(r"$\sigma_{xx}$ at x = 0 (GPa)")
    axes[2].set_ylabel("height above the interface (nm)")
    axes[2].legend(frameon=False, fontsize=7)
    return _save(fig, path)


def deposition_figure(ds: xr.Dataset, path: str | Path) -> Path:
    """Morphology snapshots (phase field, the paper's Fig. 3/4 in simulation) above the
    voltage transient in both conventions (symmetric cell and per electrode) with its spike.

    Snapshots share the y axis and one colour bar (the Na fraction ξ); a box less than 8 cells
    wide or tall (e.g. the 4-cell micro-polarisation column) draws no snapshots, which would be
    slivers. The largest |U| is labelled a nucleation spike only when it falls in a first,
    plating step and stands clear of that step's plateau (by 2 mV and 5 %).
    """
    import matplotlib.pyplot as plt

    n = ds.sizes["t_snapshot"]
    snapshots = ds.sizes["y"] >= 8 and ds.sizes["x"] >= 8
    shown = sorted({0, n // 3, (2 * n) // 3, n - 1}) if snapshots else []
    fig = plt.figure(figsize=(3.0 * max(len(shown), 3) + 0.8, 6.0 if shown else 3.2))
    grid = fig.add_gridspec(2 if shown else 1, max(len(shown), 1) + (1 if shown else 0),
                            height_ratios=[1.0, 0.8] if shown else [1.0],
                            width_ratios=[1.0] * len(shown) + [0.06] if shown else None)
    x = ds.x.values * 1e6
    y = ds.y.values * 1e6
    # zoom on the deposit: up to twice its highest front (not the whole electrolyte above it),
    # and, in a box much wider than that, a window of four such heights
    y_top = min(float(y[-1]) + 0.5 * (y[1] - y[0]),
                max(2.0 * float(np.max(ds.front_height_max.values)) * 1e6, 5.0))
    x_right = min(float(x[-1]) + 0.5 * (x[1] - x[0]), 4.0 * y_top)
    first = None
    for col, k in enumerate(shown):
        ax = fig.add_subplot(grid[0, col], sharey=first)
        first = first or ax
        mesh = ax.pcolormesh(x, y, ds.phase.values[k], cmap="Greys", vmin=0.0, vmax=1.0,
                             shading="auto", rasterized=True)
        active = ds.active_sites.values[k] > 0.5
        ax.plot(x[active], np.zeros(active.sum()), "|", color="tab:red", ms=6)
        ax.set_aspect("equal")
        ax.set_ylim(0.0, y_top)
        ax.set_xlim(0.0, x_right)
        q = float(ds.deposited_charge.interp(t=float(ds.t_snapshot[k]))) / 3.6e4
        ax.set_title(f"t = {float(ds.t_snapshot[k]):.0f} s, {q:.3g} mA h cm$^{{-2}}$", fontsize=8)
        ax.set_xlabel("x (µm)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        if col == 0:
            ax.set_ylabel("y (µm)")
        else:
            ax.tick_params(labelleft=False)
    if shown:
        if x_right < float(x[-1]):
            fig.text(0.01, 0.99, f"x: the first {x_right:.3g} µm of {float(x[-1]):.3g} µm",
                     ha="left", va="top", fontsize=7)
        bar = fig.colorbar(mesh, cax=fig.add_subplot(grid[0, -1]))
        bar.set_label("Na fraction ξ (1)", fontsize=8)
    ax = fig.add_subplot(grid[-1, :])
    t = ds.t.values
    ax.plot(t, ds.voltage.values * 1e3, label="symmetric cell")
    ax.plot(t, ds.overpotential.values * 1e3, label="per electrode")
    k = int(np.argmax(np.abs(ds.voltage.values)))
    label = "nucleation spike" if _is_spike(ds, k) else "largest |U|"
    v_k = float(ds.voltage[k]) * 1e3
    linear = max(1e-3, float(t[1]) if t.size > 1 else 1e-3)
    ax.set_xscale("symlog", linthresh=linear)
    ax.set_xlim(0.0, float(t[-1]))
    lo, hi = ax.get_ylim()  # room beyond the extreme for the label, off the curves
    ax.set_ylim((lo - 0.3 * (hi - lo), hi) if v_k < 0 else (lo, hi + 0.3 * (hi - lo)))
    ax.annotate(f"{label} {abs(v_k):.0f} mV", (t[k], v_k), xycoords="data",
                xytext=(0.3, 0.07 if v_k < 0 else 0.93), textcoords="axes fraction", fontsize=8,
                va="center", arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set_xlabel(f"t (s; linear below {linear:.3g} s)")
    ax.set_ylabel("voltage (mV)")
    ax.legend(frameon=False, fontsize=8, loc="upper right" if v_k < 0 else "lower right")
    return _save(fig, path)


def _is_spike(ds: xr.Dataset, k: int) -> bool:
    """Whether the largest |U| at index ``k`` is a nucleation spike: in a first, plating step,
    and clear of that step's plateau (the median |U| of its second half) by 2 mV and 5 %."""
    if "protocol_step" not in ds or int(ds.protocol_step.values[k]) != 0:
        return False
    if float(ds.current_density.values[k]) >= 0.0:
        return False
    step = np.abs(ds.voltage.values[ds.protocol_step.values == 0])
    plateau = float(np.median(step[step.size // 2:]))
    return step.max() - plateau > max(2e-3, 0.05 * plateau)


def _save(fig, path: str | Path) -> Path:
    """Lay out, write (creating the folder) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
