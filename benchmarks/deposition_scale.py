"""Deposition at scale: a seed case on a larger box to its full capacity, measured.

Run from the repository root::

    python benchmarks/deposition_scale.py deposition_bare_na --nx 2048 --ny 1024 -o results/scale

runs ``cases/NAME.toml`` with the mesh overridden (same cell size, so the box is larger; the
nucleation sites are drawn over the larger substrate with the case's spacing), writes
``OUT/NAME_NXxNY[xNZ].nc`` and the figure ``fastnai plot`` draws of it, and prints one line: wall
time, peak resident memory of the process, steps, solver iterations, the nucleation spike and
plateau, final roughness and front height. Not an asv benchmark: one such run takes tens of
minutes (the figures quoted in the README come from it).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", help="case name in cases/ (without .toml)")
    parser.add_argument("--nx", type=int, required=True)
    parser.add_argument("--ny", type=int, required=True)
    parser.add_argument("--nz", type=int, default=1)
    parser.add_argument("-o", "--output-dir", default="results/scale")
    args = parser.parse_args(argv)

    import numpy as np

    import fastnai
    from fastnai.plot import plot_result
    from fastnai.validation import cases_dir

    over = {"mesh.nx": args.nx, "mesh.ny": args.ny, "mesh.nz": args.nz}
    case = fastnai.load_case(cases_dir() / f"{args.case}.toml", over)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = f"{args.nx}x{args.ny}" + (f"x{args.nz}" if args.nz > 1 else "")
    start = time.perf_counter()
    ds = fastnai.run(case, output=out / f"{args.case}_{shape}.nc")
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    eta = np.asarray(ds["overpotential"].values)
    half = eta[len(eta) // 2:]
    figure = plot_result(ds, out / f"{args.case}_{shape}.png")
    print(f"{args.case} {shape}: wall {wall:.0f} s, peak RSS {peak:.2f} GiB, "
          f"{int(ds.attrs['solver_n_steps'])} steps, "
          f"{int(ds.attrs['solver_n_salt_iterations'])} salt + "
          f"{int(ds.attrs['solver_n_potential_iterations'])} potential CG iterations; "
          f"spike {-eta.min() * 1e3:.1f} mV, plateau {-np.median(half) * 1e3:.1f} mV, "
          f"roughness {float(ds['roughness'][-1]) * 1e6:.2f} um, "
          f"front max {float(ds['front_height_max'][-1]) * 1e6:.2f} um, "
          f"nuclei {int(ds['nuclei_count'][-1])}; figure {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
