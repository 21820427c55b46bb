"""Performance-regression check for CI: asv quick runs of the kernels, normalised by machine probes.

Each checked kernel benchmark (:data:`CHECKS`) is divided by a machine-speed probe timed in the
same asv runs (:mod:`benchmarks.machine`): the STREAM triad for memory-bound kernels, a scalar
recurrence with libm calls for compute-bound ones (not the FMA loop, whose rate follows the
width of the vector units and moved 2.2x between hosts of the same pool while the kernels
moved 1.1-1.4x). A slower runner, or a slow hour of a shared one, slows the probe
with the kernel, so the *ratio* is what is compared with the stored reference
(``benchmarks/regression_reference.json``). The check fails (exit 1) when a ratio is more than
``FASTNAI_PERF_TOLERANCE`` (default 2.0) times its reference, or when a benchmark or its probe
failed to run (asv records ``null``). A benchmark in the reference but not in the results (or
the other way round) and one that asv skipped (NaN) is reported with a warning and does not
fail; a ratio far *below* the reference is reported as ``faster`` and passes (update the
reference so that the gain is kept).

Run from the repository root::

    python benchmarks/regression.py run                      # CI: 3 asv quick runs, compare
    python benchmarks/regression.py compare R1.json R2.json  # compare asv result files
    python benchmarks/regression.py run --update             # re-measure the reference

How it measures (the choices come from repeated runs on the noisy 2-core project machine;
the reference file records the numbers):

- ``run`` registers the asv machine ``ci`` when ``~/.asv-machine.json`` lacks it (what ``asv
  machine --yes`` detects, under the name ``ci``), then runs ``asv run --python=same --quick
  --machine ci --set-commit-hash HEAD --bench <regex> ...`` in the installed environment, the
  regexes selecting exactly :data:`CHECKS` and :data:`PROBES`, with a copy of
  ``asv.conf.json`` whose ``branches`` is ``HEAD`` (a pull request's checkout may have no
  ``main``). asv writes under ``.asv/results/ci/`` (git-ignored) and keeps a commit's older
  rows in the same file, so each run's own rows are read and saved, asv-formatted, to
  ``.asv/regression/`` (for ``compare``).
- Numba runs on one thread (``NUMBA_NUM_THREADS=1`` for the asv run; :data:`THREADS`). On a
  shared 2-core machine the second core comes and goes: single 2-thread calls of the same
  kernel differed by 2-5x between runs, 1-thread calls by 1.2-1.8x, so the check covers the
  kernels' code, not their thread scaling (``TrackThreadSpeedup``, ``TimeEnsembleBordered``
  report that).
- Quick mode times each benchmark with a single call, so one check is a *set* of
  :data:`RUNS` asv runs: the kernel's fastest call over the probe's best rate (noise only ever
  adds time). The probes are the ``track_`` rates (best of a batch of calls in one process),
  which stayed within 10 % (FMA; the scalar probe within 1 %) and 30 % (triad) while single
  probe calls varied 2-3x.
- A kernel that comes out more than the tolerance slower is timed again with its probe in one
  more set (``--retries``) and judged on all its runs: a regression is slow every time, a
  burst of load from a neighbour is not.

Updating the reference is an explicit step that is reviewed like code: on the CI machine run
``python benchmarks/regression.py run --update`` (3 sets of 3 runs, about 7 minutes), which
writes, for every benchmark of :data:`CHECKS`, the median over the sets of the set ratio, each
set's ratio and time, their spread, the probe, the machine and the date; commit the diff of
``benchmarks/regression_reference.json`` with the change that explains it. ``compare --update
FILE...`` does the same from saved result files (``--runs`` consecutive files make a set). CI
never passes ``--update``. To check a kernel more or less, edit :data:`CHECKS` (the kernel, its
probe and why) and update the reference; drop a kernel whose set ratios spread more than
:data:`MAX_SPREAD` (``--update`` warns).

This file lives in ``benchmarks/`` but defines no benchmarks (asv imports it while discovering
the suite); at import it needs only the standard library (asv is imported where it is run).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "benchmarks" / "regression_reference.json"
#: asv machine name of the check (results in ``.asv/results/<MACHINE>/``).
MACHINE = "ci"
RESULTS_DIR = ROOT / ".asv" / "results" / MACHINE
TOLERANCE_ENV = "FASTNAI_PERF_TOLERANCE"
DEFAULT_TOLERANCE = 2.0
#: Numba threads of the asv runs (NUMBA_NUM_THREADS).
THREADS = 1
#: asv quick runs in one set: the set's ratio is the fastest kernel call over the best probe.
RUNS = 3
#: A kernel whose set ratios differ by more than this is too noisy to check (``--update`` warns).
MAX_SPREAD = 1.5

#: Machine-speed probes: name -> (asv benchmark with its parameters, ``"time"`` [s] or
#: ``"rate"`` (higher is faster), unit, what it measures).
PROBES = {
    "triad": ("machine.Triad.track_bandwidth(33554432, 1)", "rate", "GB/s",
              "STREAM triad a = b + s c, 3 x 256 MiB (out of the 32 MiB L3), 1 thread, best of 20"),
    "scalar": ("machine.ScalarProbe.track_rate", "rate", "Mrow/s",
               "Thomas solve of 4096 rows and exp(-x) log1p(x) over it, 1 thread, best of 20 "
               "(the FMA probe followed the vector-unit width: 2.2x faster on another host of "
               "the pool while the kernels were 1.1-1.4x faster)"),
}

#: Checked kernels: asv benchmark with its parameters -> (probe, bound, why). Medium sizes:
#: the smallest of each benchmark (1000 nodes, 256^2) is mostly call overhead.
CHECKS = {
    "kernels.TimeFermiDirac.time_half(100000)":
        ("scalar", "compute", "per-element series / Chebyshev / Sommerfeld branches (exp, log)"),
    "kernels.TimeFermiDirac.time_minus_half(100000)":
        ("scalar", "compute", "as time_half"),
    "kernels.TimeFermiDirac.time_half_inverse(100000)":
        ("scalar", "compute", "per-element rational approximation and Newton polish"),
    "kernels.TimeTridiagonal.time_solve_tridiagonal(100000)":
        ("scalar", "compute", "Thomas recurrence: division latency, 5 MB in cache"),
    "kernels.TimePoissonAssembly.time_assemble_serial(100000)":
        ("scalar", "compute", "Fermi-Dirac densities and derivatives per node"),
    "kernels.TimePoissonAssembly.time_assemble_parallel(100000)":
        ("scalar", "compute", "the prange twin of assemble_serial"),
    "kernels.TimeNewtonSolve.time_newton_solve(100000, 'boltzmann')":
        ("scalar", "compute", "7 Newton steps: assembly (exp) and Thomas solve"),
    "kernels.TimeNewtonSolve.time_newton_solve(100000, 'fermi-dirac')":
        ("scalar", "compute", "5 Newton steps: assembly (Fermi-Dirac) and Thomas solve"),
    "kernels.TimeBlockTridiagonal.time_solve(10000)":
        ("scalar", "compute", "3 x 3 block LU recurrence"),
    "kernels.TimeBlockTridiagonal.time_bordered(10000)":
        ("scalar", "compute", "bordered 3 x 3 block LU (two solves)"),
    "kernels.TimeEnsembleBordered.time_solve(1)":
        ("scalar", "compute", "64 bordered 3 x 3 block solves of 200 nodes"),
    "drift_diffusion.TimeStepParts.time_assemble(10000, 'dd-boltzmann')":
        ("scalar", "compute", "Scharfetter-Gummel residual and 3 x 3 Jacobian blocks per node"),
    "drift_diffusion.TimeStepParts.time_assemble(10000, 'qe-fermi-dirac')":
        ("scalar", "compute", "as dd-boltzmann, with Fermi-Dirac statistics"),
    "drift_diffusion.TimeStepParts.time_block_solve(10000, 'qe-fermi-dirac')":
        ("scalar", "compute", "specialised 3 x 3 block-tridiagonal solve"),
    "drift_diffusion.TimeStepParts.time_unknowns_from_state(10000, 'dd-boltzmann')":
        ("scalar", "compute", "bracketed Newton inversion of e = n + n_t per node"),
    "fem_q1.TimeFemAssembly.time_assemble(100000, 'bbar')":
        ("scalar", "compute", "B-bar Q1 element matrices (2 x 2 Gauss) scattered into CSR"),
    "film_stress.TimeFilmDiffusionStep.time_step(20000)":
        ("scalar", "compute", "one implicit film-diffusion step: fluxes and a tridiagonal solve"),
    "phase_field.TimeProfileStep.time_profile_step(1024)":
        ("triad", "memory", "9-point stencil, 33 B/cell over 35 MB (beyond L3)"),
    "phase_field.TimeProfileStep.time_profile_step(4096)":
        ("triad", "memory", "9-point stencil, 33 B/cell over 550 MB (DRAM)"),
    "phase_field.TimeGrowth.time_growth_sum":
        ("triad", "memory", "scans 8 MB geometry arrays, Butler-Volmer on the 10 % reacting cells"),
    "phase_field.TimeGrowth.time_apply_growth":
        ("triad", "memory", "reads xi, xi_star, geom, writes xi_new, source: 40 MB a call"),
}


#: Left out of the check, and why (recorded in the reference for its reviewers).
EXCLUDED = {
    "the smallest size of each kernel benchmark (1000 nodes, 256^2 cells, 200 cells)":
        "tens of microseconds: call overhead and timer noise, not the kernel",
    "kernels.TimeEnsembleBordered.time_solve(2), machine probes on 2 threads":
        "2 threads: skipped at NUMBA_NUM_THREADS=1; at 2 threads single calls of a kernel "
        "varied 2-5x between runs and set ratios (3 runs each, 2-thread probes) spread 1.3-3x "
        "over 5 sets (the second core comes and goes on the shared machine)",
    "kernels.TimeNewtonSolve.track_newton_iterations, transient.*.track_steps":
        "iteration counts, not timings (tests check them)",
    "transient.TimeIntegrateHeatEquation":
        "times the Python integrator's per-step overhead, not a compiled kernel",
    "compare.*, phase_field.FipyComparison, drift_diffusion.*Devsim*, fem_q1.TimeSkfem*":
        "peers (FiPy, DEVSIM, scikit-fem): their speed is not fastnai's",
    "models.*, deposition.*, film_stress.TimeFilmStressCycle/TimeFilmGitt, laminate.*, "
    "drift_diffusion.TimeImplicitStep/TimeCVSweep/TimeGalvanostaticEnsemble, fem_q1.TimeFemSolve, "
    "sweep.*, compile.*":
        "model time-to-solution, sweeps and cold starts: seconds to minutes each, set-ups "
        "beyond 30 s, or Python-level work",
    "phase_field.TrackProfileStepLarge, phase_field.TrackThreadSpeedup":
        "already ratios (to the triad, 1 vs 2 threads) over repeated 4096^2 steps (> 30 s)",
}


# --------------------------------------------------------------------------------------------
# asv result files


def flatten_results(data: dict, since_ms: float | None = None) -> dict[str, float | None]:
    """One asv 0.6 result file (``json.load``-ed) as ``{"name(p1, p2)": value}``.

    asv stores each benchmark as a row whose fields are named by ``result_columns``: ``result``
    holds one value per combination of ``params`` (``itertools.product`` order, each parameter
    as its ``repr``), ``None`` for a combination that failed, NaN for one that was skipped; a
    row whose combinations all failed has ``result`` ``None`` (or cut off). Unparametrised
    benchmarks are keyed by their bare name. With ``since_ms``, only rows whose ``started_at``
    [ms since the epoch] is not earlier are kept: asv keeps the old rows of a commit's file.
    """
    columns = data["result_columns"]
    out: dict[str, float | None] = {}
    for name, row in data["results"].items():
        fields = dict(zip(columns, row, strict=False))
        started = fields.get("started_at")
        if since_ms is not None and (started is None or started < since_ms):
            continue
        params = fields.get("params") or []
        keys = ([f"{name}({', '.join(combo)})" for combo in itertools.product(*params)]
                if params else [name])
        values = fields.get("result")
        if values is None:
            values = [None] * len(keys)
        for key, value in itertools.zip_longest(keys, values[:len(keys)]):
            out[key] = None if value is None else float(value)
    return out


def load_results(path: Path, since_ms: float | None = None) -> dict[str, float | None]:
    """:func:`flatten_results` of the asv result file at ``path``."""
    with open(path) as f:
        return flatten_results(json.load(f), since_ms)


def restrict_results(data: dict, keys, since_ms: float | None = None) -> dict:
    """The asv result file ``data`` cut down to one run: the rows that started at ``since_ms``
    or later, and in them only the combinations in ``keys`` (the others become NaN, asv's
    "skipped"). asv keeps a commit's old rows in its file, and the old values of a row's
    unselected combinations under the row's new ``started_at``."""
    keys = set(keys)
    columns = data["result_columns"]
    out = {**data, "results": {}}
    for name, row in data["results"].items():
        fields = dict(zip(columns, row, strict=False))
        started = fields.get("started_at")
        if since_ms is not None and (started is None or started < since_ms):
            continue
        params = fields.get("params") or []
        combos = ([f"{name}({', '.join(c)})" for c in itertools.product(*params)] if params
                  else [name])
        if not keys.intersection(combos):
            continue
        row = list(row)
        values = fields.get("result")
        if values is not None:
            row[columns.index("result")] = [v if k in keys else math.nan
                                            for k, v in zip(combos, values, strict=False)]
        out["results"][name] = row
    return out


# --------------------------------------------------------------------------------------------
# comparison


def tolerance_from_env(environ=None) -> float:
    """``FASTNAI_PERF_TOLERANCE`` (default 2.0): the factor over the reference that fails."""
    environ = os.environ if environ is None else environ
    text = environ.get(TOLERANCE_ENV, "").strip()
    if not text:
        return DEFAULT_TOLERANCE
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"{TOLERANCE_ENV}={text!r} is not a number") from None
    if not value > 1.0 or math.isinf(value):
        raise SystemExit(f"{TOLERANCE_ENV}={text!r} must be a finite number above 1")
    return value


def _is_number(value) -> bool:
    return value is not None and math.isfinite(value) and value > 0.0


def split_key(key: str) -> tuple[str, str]:
    """``"a.B.time_c(1, 'x')"`` -> ``("a.B.time_c", "1, 'x'")``."""
    match = re.fullmatch(r"([^()]*)\((.*)\)", key)
    return (match.group(1), match.group(2)) if match else (key, "")


def probe_seconds(value: float, kind: str) -> float:
    """A probe result as a time: a ``time`` probe is one already; a ``rate`` probe (GB/s,
    GFLOP/s: higher is faster) becomes the seconds per unit of work, ``1 / rate``."""
    if kind == "time":
        return value
    if kind == "rate":
        return 1.0 / value
    raise ValueError(f"unknown probe kind {kind!r}")


def set_ratio(runs: list[dict[str, float | None]], key: str, probe_key: str,
              probe_kind: str) -> tuple[float, float, float] | None:
    """``(time, probe time, time / probe time)`` of one set of runs: the kernel's fastest run
    over the probe's fastest (noise on a shared machine only ever adds time), or None when
    either has no number in any run."""
    times = [r[key] for r in runs if _is_number(r.get(key))]
    probes = [probe_seconds(r[probe_key], probe_kind) for r in runs
              if _is_number(r.get(probe_key))]
    if not times or not probes:
        return None
    time_s, probe_s = min(times), min(probes)
    return time_s, probe_s, time_s / probe_s


def compare(runs: list[dict[str, float | None]], reference: dict, tolerance: float,
            checks=None) -> tuple[list[dict], bool]:
    """Compare the flattened results of a set of runs (one dict per asv run, see
    :func:`flatten_results`) with the reference; returns the table rows and whether the check
    failed.

    A benchmark's ratio is its fastest time over its probe's fastest time in the set
    (:func:`set_ratio`), its factor that ratio over the reference ratio. Verdicts: ``ok``,
    ``faster`` (factor below 1/tolerance; passes), ``SLOWER`` (factor above tolerance),
    ``FAILED`` (the benchmark or its probe has a ``null`` result in some run), ``missing`` (in
    the reference, in no run), ``skipped`` (NaN in every run), ``no probe`` (its probe is
    missing or skipped) and ``no reference`` (a checked benchmark the reference does not have;
    ``checks``, default :data:`CHECKS`, names the benchmarks that should have one). Only
    ``SLOWER`` and ``FAILED`` fail.
    """
    probes = reference.get("probes", {})
    entries = reference.get("benchmarks", {})
    rows = []
    failed = False
    measured = set().union(*runs) if runs else set()
    unreferenced = sorted((measured & set(CHECKS if checks is None else checks)) - set(entries))
    for key in [*entries, *unreferenced]:
        entry = entries.get(key)
        name, params = split_key(key)
        row = {"key": key, "benchmark": name, "params": params, "time": None, "probe": None,
               "probe_time": None, "ratio": None, "reference": None, "factor": None,
               "verdict": "", "note": ""}
        rows.append(row)
        if entry is None:
            row["verdict"] = "no reference"
            row["note"] = "run with --update to add it"
            row["time"] = min((r[key] for r in runs if _is_number(r.get(key))), default=None)
            continue
        probe = probes[entry["probe"]]
        probe_key = probe["benchmark"]
        row["probe"] = entry["probe"]
        row["reference"] = entry["ratio"]
        nulls = [k for k in (key, probe_key) if any(k in r and r[k] is None for r in runs)]
        if nulls:
            row["verdict"] = "FAILED"
            row["note"] = f"{nulls[0]} failed to run (null result)"
            failed = True
            continue
        if not any(key in r for r in runs):
            row["verdict"] = "missing"
            row["note"] = "not in the results"
            continue
        if not any(_is_number(r.get(key)) for r in runs):
            row["verdict"] = "skipped"
            row["note"] = "asv skipped it (NaN)"
            continue
        measured_ratio = set_ratio(runs, key, probe_key, probe.get("kind", "time"))
        if measured_ratio is None:
            row["verdict"] = "no probe"
            row["note"] = f"probe {probe_key} missing or skipped"
            row["time"] = min(r[key] for r in runs if _is_number(r.get(key)))
            continue
        row["time"], row["probe_time"], row["ratio"] = measured_ratio
        row["factor"] = row["ratio"] / entry["ratio"]
        if row["factor"] > tolerance:
            row["verdict"] = "SLOWER"
            failed = True
        elif row["factor"] < 1.0 / tolerance:
            row["verdict"] = "faster"
            row["note"] = "faster than the reference: consider --update"
        else:
            row["verdict"] = "ok"
    return rows, failed


def _fmt_time(value) -> str:
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _fmt(value, spec) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict], tolerance: float, reference: dict | None = None) -> str:
    """The comparison as a plain-text table (probe: the probe's best value in the set)."""
    probes = (reference or {}).get("probes", {})

    def probe_value(row):
        if row["probe_time"] is None:
            return "-"
        probe = probes.get(row["probe"], {})
        if probe.get("kind") == "rate":
            return f"{1.0 / row['probe_time']:.3g} {probe.get('unit', '')}".rstrip()
        return _fmt_time(row["probe_time"])

    header = ["benchmark", "params", "time", "probe", "probe value", "ratio", "reference",
              "factor", "verdict"]
    lines = [[r["benchmark"], r["params"], _fmt_time(r["time"]), r["probe"] or "-",
              probe_value(r), _fmt(r["ratio"], ".4g"), _fmt(r["reference"], ".4g"),
              _fmt(r["factor"], ".2f"), r["verdict"] + (f" ({r['note']})" if r["note"] else "")]
             for r in rows]
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    out.append(f"time: fastest run; ratio = time / probe time (a rate probe counts 1/rate); "
               f"factor = ratio / reference; fails above {tolerance:g} ({TOLERANCE_ENV})")
    return "\n".join(out)


def report(rows: list[dict], failed: bool, tolerance: float, reference: dict | None = None) -> int:
    """Print the table and the warnings; the exit status (1 when the check failed)."""
    print(format_table(rows, tolerance, reference))
    for row in rows:
        if row["verdict"] in ("missing", "skipped", "no probe", "no reference"):
            print(f"warning: {row['key']}: {row['verdict']}: {row['note']}", file=sys.stderr)
    if failed:
        bad = [r["key"] for r in rows if r["verdict"] in ("SLOWER", "FAILED")]
        print(f"performance check FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    n_compared = sum(r["verdict"] in ("ok", "faster") for r in rows)
    print(f"performance check passed ({n_compared} of {len(rows)} benchmarks compared)")
    return 0


# --------------------------------------------------------------------------------------------
# the reference


def load_reference(path: Path = REFERENCE) -> dict:
    with open(path) as f:
        return json.load(f)


def make_reference(sets: list[list[dict[str, float | None]]], *, machine: dict, how: str,
                   checks: dict = CHECKS, probes: dict = PROBES) -> dict:
    """The reference from several sets of runs (each set as CI measures it: see
    :func:`set_ratio`): per benchmark of ``checks`` the median ratio over the sets, each set's
    ratio and the spread (largest / smallest). A benchmark without a ratio in every set is left
    out, one whose spread exceeds :data:`MAX_SPREAD` is kept with a warning."""
    entries = {}
    for key, (probe, bound, why) in checks.items():
        probe_key, kind = probes[probe][0], probes[probe][1]
        measured = [set_ratio(runs, key, probe_key, kind) for runs in sets]
        if not measured or any(m is None for m in measured):
            print(f"warning: {key}: measured in {sum(m is not None for m in measured)} of "
                  f"{len(sets)} sets, left out of the reference", file=sys.stderr)
            continue
        ratios = [m[2] for m in measured]
        spread = max(ratios) / min(ratios)
        if spread > MAX_SPREAD:
            print(f"warning: {key}: ratios spread {spread:.2f}x > {MAX_SPREAD}x across sets: too "
                  "noisy to check, consider dropping it from CHECKS", file=sys.stderr)
        entries[key] = {
            "probe": probe, "bound": bound, "why": why,
            "ratio": _round(statistics.median(ratios)),
            "ratios": [_round(x) for x in ratios],
            "spread": round(spread, 3),
            "time_s": [_round(m[0]) for m in measured],
        }
    return {
        "description": ("Reference ratios of benchmarks/regression.py: fastest kernel time over "
                        "its probe's fastest time in a set of asv quick runs, median over the "
                        "sets. Written by `python benchmarks/regression.py run --update`; review "
                        "the diff like code, CI never writes it."),
        "how_measured": how,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numba_threads": THREADS,
        "machine": machine,
        "probes": {name: {"benchmark": bench, "kind": kind, "unit": unit, "measures": what}
                   for name, (bench, kind, unit, what) in probes.items()},
        "benchmarks": entries,
        "excluded": EXCLUDED,
    }


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def machine_info(asv_params: dict | None = None) -> dict:
    """This machine, for the reference: the asv machine entry plus what sets kernel speed."""
    info = {k: v for k, v in (asv_params or {}).items()
            if k in ("machine", "arch", "cpu", "num_cpu", "os", "ram")}
    info["python"] = platform.python_version()
    for name in ("numba", "llvmlite", "numpy", "asv"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
        info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags)
    except OSError:
        pass
    info["os_cpu_count"] = os.cpu_count()
    return info


def write_reference(reference: dict, path: Path = REFERENCE) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(reference, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}: {len(reference['benchmarks'])} benchmarks")


# --------------------------------------------------------------------------------------------
# running asv


def bench_regexes(keys) -> list[str]:
    """``asv run --bench`` regexes selecting exactly these benchmarks (asv matches a
    parametrised benchmark as ``name(p1, p2)``), one regex per benchmark function."""
    by_name: dict[str, list[str]] = {}
    for key in keys:
        name, params = split_key(key)
        by_name.setdefault(name, []).append(params)
    out = []
    for name, param_list in by_name.items():
        if param_list == [""]:
            out.append(f"^{re.escape(name)}$")
        else:
            alternatives = "|".join(re.escape(p) for p in param_list)
            out.append(f"^{re.escape(name)}\\(({alternatives})\\)$")
    return out


def _asv() -> list[str]:
    exe = shutil.which("asv")
    return [exe] if exe else [sys.executable, "-m", "asv"]


def ensure_machine() -> None:
    """Register the asv machine :data:`MACHINE` unless ``~/.asv-machine.json`` knows it.

    With this machine's description (``asv machine --yes --machine ci`` on a fresh home
    would store the name alone, and ``asv run`` would prompt for an unknown machine).
    """
    path = Path.home() / ".asv-machine.json"
    try:
        known = MACHINE in json.loads(path.read_text())
    except (OSError, ValueError):
        known = False
    if not known:
        from asv.machine import Machine, MachineCollection

        MachineCollection.save(MACHINE, {**Machine.get_defaults(), "machine": MACHINE})


def asv_config() -> Path:
    """``asv.conf.json`` with ``"branches": ["HEAD"]``, written to ``.asv/regression/``.

    With ``--python=same`` asv takes no commit range and still resolves the configured branch
    (``main``), which a CI checkout of a pull request (detached HEAD) may not have. The
    copy's paths are absolute.
    """
    from asv import util as asv_util

    conf = asv_util.load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    conf["branches"] = ["HEAD"]
    for key in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir"):
        if key in conf:  # asv reads relative paths from the config file's folder
            conf[key] = str((ROOT / conf[key]).resolve())
    path = ROOT / ".asv" / "regression" / "asv.conf.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return path


def run_asv(keys, label: str) -> tuple[dict[str, float | None], dict, Path]:
    """One asv quick run of ``keys`` in the installed environment on :data:`THREADS` Numba
    threads; this run's results, ``{"params": asv machine parameters, "commit_hash": ...}``
    and the path of its copy (:func:`_keep_copy`)."""
    cmd = [*_asv(), "run", "--config", str(asv_config().relative_to(ROOT)), "--python=same",
           "--quick", "--show-stderr", "--machine", MACHINE, "--set-commit-hash", "HEAD"]
    for regex in bench_regexes(keys):
        cmd += ["--bench", regex]
    print(f"[{label}] NUMBA_NUM_THREADS={THREADS} {' '.join(cmd)}", flush=True)
    since_ms = time.time() * 1000.0 - 1000.0
    start = time.perf_counter()
    env = {**os.environ, "NUMBA_NUM_THREADS": str(THREADS)}
    status = subprocess.run(cmd, cwd=ROOT, env=env).returncode  # 2 if one failed: judged later
    print(f"[{label}] asv exit status {status}, {time.perf_counter() - start:.0f} s", flush=True)
    files = [p for p in RESULTS_DIR.glob("*.json")
             if p.name != "machine.json" and p.stat().st_mtime * 1000.0 >= since_ms]
    if not files:
        raise SystemExit(f"asv wrote no result file under {RESULTS_DIR} (exit status {status})")
    path = max(files, key=lambda p: p.stat().st_mtime)
    with open(path) as f:
        data = restrict_results(json.load(f), keys, since_ms)
    copy = _keep_copy(data, path.name, label)
    meta = {"params": data.get("params", {}), "commit_hash": data.get("commit_hash")}
    return flatten_results(data), meta, copy


def _keep_copy(data: dict, name: str, label: str) -> Path:
    """This run's results (:func:`restrict_results`) as an asv-format file under
    ``.asv/regression/``, for ``compare`` and ``compare --update``."""
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = ROOT / ".asv" / "regression" / f"{stamp}-{re.sub(r'[^A-Za-z0-9]+', '-', label)}-{name}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(data))
    return dest


def run_set(keys, n_runs: int, label: str) -> tuple[list[dict], list[dict], list[Path]]:
    """:func:`run_asv` ``n_runs`` times: the results, the file metadata, the saved copies."""
    runs, metas, copies = [], [], []
    for index in range(n_runs):
        results, meta, copy = run_asv(keys, f"{label} run {index + 1}/{n_runs}")
        runs.append(results)
        metas.append(meta)
        copies.append(copy)
    return runs, metas, copies


def command_run(args) -> int:
    tolerance = tolerance_from_env()
    ensure_machine()
    wall = time.perf_counter()
    if args.update:
        keys = [*CHECKS, *(probe[0] for probe in PROBES.values())]
        sets, metas, copies = [], [], []
        for index in range(args.sets):
            runs, set_metas, paths = run_set(keys, args.runs, f"set {index + 1}/{args.sets}")
            sets.append(runs)
            metas += set_metas
            copies += paths
        commits = sorted({str(m["commit_hash"])[:8] for m in metas})
        how = (f"`python benchmarks/regression.py run --update --sets {args.sets} --runs "
               f"{args.runs}`: {args.sets} sets of {args.runs} asv quick runs (--python=same, one "
               f"call per benchmark, NUMBA_NUM_THREADS={THREADS}) in {time.perf_counter() - wall:.0f}"
               f" s at commit {', '.join(commits)}; copies of the {len(copies)} result files in "
               f".asv/regression/")
        write_reference(make_reference(sets, machine=machine_info(metas[-1]["params"]), how=how),
                        args.reference)
        return 0
    reference = load_reference(args.reference)
    probe_of = {k: reference["probes"][e["probe"]]["benchmark"]
                for k, e in reference["benchmarks"].items()}
    keys = sorted({*probe_of, *probe_of.values(), *CHECKS})
    runs, _, _ = run_set(keys, args.runs, "check")
    rows, failed = compare(runs, reference, tolerance)
    for attempt in range(args.retries):
        slow = [r["key"] for r in rows if r["verdict"] == "SLOWER"]
        if not slow:
            break
        print(f"slower than {tolerance:g}x: {', '.join(slow)}; timing them and their probes "
              f"{args.runs} more times", flush=True)
        more, _, _ = run_set([*slow, *sorted({probe_of[k] for k in slow})], args.runs,
                             f"retry {attempt + 1}")
        runs += more
        rows, failed = compare(runs, reference, tolerance)
    print(f"asv runs took {time.perf_counter() - wall:.0f} s")
    return report(rows, failed, tolerance, reference)


def command_compare(args) -> int:
    tolerance = tolerance_from_env()
    runs = [load_results(Path(p)) for p in args.results]
    if args.update:
        if len(runs) % args.runs:
            raise SystemExit(f"{len(runs)} files do not make sets of --runs {args.runs}")
        sets = [runs[i:i + args.runs] for i in range(0, len(runs), args.runs)]
        with open(args.results[0]) as f:
            asv_params = json.load(f).get("params", {})
        how = (f"`python benchmarks/regression.py compare --update --runs {args.runs}` on "
               f"{len(sets)} sets of {args.runs} asv quick result files: "
               + ", ".join(Path(p).name for p in args.results))
        write_reference(make_reference(sets, machine=machine_info(asv_params), how=how),
                        args.reference)
        return 0
    reference = load_reference(args.reference)
    rows, failed = compare(runs, reference, tolerance)
    return report(rows, failed, tolerance, reference)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Kernel performance check against machine-probe-normalised reference ratios.",
        epilog=f"{TOLERANCE_ENV}: the factor over the reference ratio that fails (default "
               f"{DEFAULT_TOLERANCE:g}).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--reference", type=Path, default=REFERENCE,
                        help="reference file (default: benchmarks/regression_reference.json)")
    common.add_argument("--update", action="store_true",
                        help="write the reference (median ratio over the sets) instead of "
                             "comparing: an explicit step whose diff is reviewed; CI never does")
    common.add_argument("--runs", type=int, default=RUNS,
                        help=f"asv quick runs in one set (default {RUNS}); the set's ratio is "
                             "the fastest kernel run over the fastest probe run")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[common],
                         help="asv quick runs of the checked kernels and probes, then compare")
    run.add_argument("--retries", type=int, default=1,
                     help="time the kernels that come out too slow (and their probes) in this "
                          "many more sets (default 1)")
    run.add_argument("--sets", type=int, default=3,
                     help="with --update: sets of runs, the reference is their median (default 3)")
    run.set_defaults(func=command_run)
    compare_ = sub.add_parser("compare", parents=[common],
                              help="compare asv result files (the runs of one set)")
    compare_.add_argument("results", nargs="+", help="asv result JSON files")
    compare_.set_defaults(func=command_compare)
    args = parser.parse_args(argv)
    if args.runs < 1 or getattr(args, "sets", 1) < 1 or getattr(args, "retries", 0) < 0:
        parser.error("--runs and --sets must be at least 1, --retries at least 0")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
