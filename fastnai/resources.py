"""Memory a run will need, memory the process may use, and the check between them (SPEC §8);
the Numba thread count of a run.

Every model estimates its peak memory from the mesh and the output settings *before* it
allocates anything, and a case that would not fit is refused with a
:class:`~fastnai.errors.CaseError` (exit status 2) whose message names the mesh keys, the
estimate and the memory available, instead of dying in an allocation (a ``MemoryError``
traceback, or the kernel's OOM killer) minutes or hours into a batch job.

* :func:`available_memory` -- bytes this process may still allocate: the smallest of the cgroup
  (v2 or v1) limit minus the cgroup's usage, ``MemAvailable`` of ``/proc/meminfo`` and the
  address-space rlimit; the environment variable ``FASTNAI_MEMORY_LIMIT`` replaces it.
* :func:`estimate_memory` -- a conservative (rounded-up) estimate of the peak bytes a run of a
  case allocates: bytes per mesh cell (or node, element) times the cells, plus the stored output
  (snapshots, profiles, output states), plus a fixed :data:`OVERHEAD`.
* :func:`check_memory` -- refuses a case whose estimate exceeds :data:`USABLE_FRACTION` of the
  available memory.

* :data:`THREADS_DEFAULT`, :func:`max_threads`, :func:`check_threads`, :func:`numba_threads` --
  the one default (``NUMBA_NUM_THREADS`` if set, else all cores), range check and setting of
  ``--threads`` for ``fastnai run``, ``fastnai sweep`` and ``fastnai validate``.

The module reads only resolved case values (``case["section.key"]`` and ``case.kind``); it
imports neither a kernel nor a model module, and Numba only inside the thread helpers, so
checking a case stays cheap.

What is not counted: what grows with the number of accepted time steps, unknowable before the
run -- the per-step series (20 Python floats a step in deposition, about 640 bytes; 8 in
drift_diffusion, plus one value per particle of an ensemble; the per-step states of a
film_stress diffusion run) -- and the interpreter with its imported libraries and compiled
kernels (already resident when the check runs, so already outside the available memory).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

from .errors import CaseError

__all__ = ["OVERHEAD", "THREADS_DEFAULT", "USABLE_FRACTION", "available_memory", "check_memory",
           "check_threads", "estimate_memory", "format_bytes", "max_threads", "numba_threads",
           "parse_bytes"]

#: Fixed bytes added to every estimate: Python objects, xarray/netCDF buffers, solver and
#: pyamg set-up scratch that does not scale with the mesh [B].
OVERHEAD = 64 * 2**20

#: A case is refused when its estimate exceeds this fraction of :func:`available_memory`.
USABLE_FRACTION = 0.9

#: The environment variable that replaces the detected available memory.
ENV_LIMIT = "FASTNAI_MEMORY_LIMIT"

_CGROUP = Path("/sys/fs/cgroup")
_MEMINFO = Path("/proc/meminfo")
_SELF_CGROUP = Path("/proc/self/cgroup")
#: cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages): anything above this
_V1_UNLIMITED = 2**60

_UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}


# ---------------------------------------------------------------------------------------------
# sizes as text


def parse_bytes(text: str | int | float) -> int:
    """Bytes from ``"4 GiB"``, ``"500 MB"``, ``"2G"`` or a bare number [B].

    ``KiB``/``MiB``/``GiB``/``TiB`` and the single letters ``K``/``M``/``G``/``T`` are binary
    (as in Docker and Slurm); ``kB``/``MB``/``GB``/``TB`` decimal. Case does not matter.

    Raises
    ------
    ValueError
        For anything else, or a negative or non-finite size.

    Examples
    --------
    >>> parse_bytes("4 GiB"), parse_bytes("500 MB"), parse_bytes("2g"), parse_bytes(1024)
    (4294967296, 500000000, 2147483648, 1024)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        number, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(text))
        if match is None:
            raise ValueError(f"{text!r} is not a size (expected e.g. '4 GiB', '500 MB', 1e9)")
        try:
            number = float(match.group(1))
        except ValueError:
            raise ValueError(f"{text!r} is not a size (expected e.g. '4 GiB', '500 MB', 1e9)") from None
        unit = match.group(2).lower()
    if unit not in _UNITS:
        raise ValueError(f"{text!r}: unknown unit {unit!r} (expected B, kB, MB, GB, TB, KiB, MiB, "
                         "GiB, TiB, K, M, G or T)")
    if not math.isfinite(number) or number < 0.0:
        raise ValueError(f"{text!r}: expected a finite size >= 0")
    return int(number * _UNITS[unit])


def format_bytes(n: float) -> str:
    """``n`` bytes in GiB, MiB or KiB: the largest that keeps the number at least 1.

    GiB is the largest unit, as in job memory requests (``--mem=64G``).

    Examples
    --------
    >>> format_bytes(74.5 * 2**30), format_bytes(3 * 2**20), format_bytes(512)
    ('74.5 GiB', '3.0 MiB', '512 B')
    >>> format_bytes(12 * 2**40)
    '12288.0 GiB'
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


# ---------------------------------------------------------------------------------------------
# available memory


def _read_int(path: Path) -> int | None:
    """An integer file (``"max"`` and unreadable files give None)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: Path, *names: str) -> int:
    """First of ``names`` in a ``memory.stat`` file (0 when absent)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    values = dict(line.split(None, 1) for line in lines if " " in line)
    for name in names:
        if name in values:
            try:
                return int(values[name])
            except ValueError:
                return 0
    return 0


def _cgroup_dirs(controller_root: Path, v2: bool) -> list[Path]:
    """The process's cgroup directory and its ancestors under ``controller_root``."""
    rel = None
    try:
        for line in _SELF_CGROUP.read_text().splitlines():
            hid, controllers, path = line.split(":", 2)
            if (v2 and hid == "0" and controllers == "") or (
                    not v2 and "memory" in controllers.split(",")):
                rel = path
                break
    except (OSError, ValueError):
        pass
    dirs = []
    if rel:
        here = controller_root / rel.lstrip("/")
        while here != controller_root and controller_root in here.parents:
            if here.is_dir():  # in a container the process's path is often not mounted
                dirs.append(here)
            here = here.parent
    dirs.append(controller_root)
    return dirs


def _cgroup_v2_room() -> int | None:
    """Smallest ``memory.max - (memory.current - inactive_file)`` over the cgroup and ancestors."""
    room = None
    for d in _cgroup_dirs(_CGROUP, v2=True):
        limit = _read_int(d / "memory.max")  # "max" -> None: no limit at this level
        current = _read_int(d / "memory.current")
        if limit is None or current is None:
            continue
        used = max(current - _stat_value(d / "memory.stat", "inactive_file"), 0)
        room = limit - used if room is None else min(room, limit - used)
    return room


def _cgroup_v1_room() -> int | None:
    """``memory.limit_in_bytes - (memory.usage_in_bytes - total_inactive_file)`` (cgroup v1)."""
    root = _CGROUP / "memory"
    room = None
    for d in _cgroup_dirs(root, v2=False):
        limit = _read_int(d / "memory.limit_in_bytes")
        usage = _read_int(d / "memory.usage_in_bytes")
        if limit is None or usage is None or limit >= _V1_UNLIMITED:
            continue
        used = max(usage - _stat_value(d / "memory.stat", "total_inactive_file", "inactive_file"), 0)
        room = limit - used if room is None else min(room, limit - used)
    return room


def _mem_available() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` [B]."""
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                value, *unit = line.split(":", 1)[1].split()
                return int(value) * (1024 if unit and unit[0].lower() == "kb" else 1)
    except (OSError, ValueError):
        pass
    return None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int:
    """Bytes this process may still allocate [B].

    The smallest of what these sources allow (a source that is absent or says "no limit" is
    skipped):

    1. **cgroup v2** (``/sys/fs/cgroup/<own cgroup>/memory.max`` and every ancestor up to
       ``/sys/fs/cgroup``; ``max`` is no limit): the limit minus the cgroup's usage
       ``memory.current`` less its reclaimable ``inactive_file`` page cache. This is what a batch
       scheduler (Slurm, Kubernetes, Docker) enforces with the OOM killer; the usage already
       includes this process.
    2. **cgroup v1** (``/sys/fs/cgroup/memory/.../memory.limit_in_bytes``, values above 2^60 are
       no limit): the limit minus ``memory.usage_in_bytes`` less ``total_inactive_file``.
    3. ``MemAvailable`` of ``/proc/meminfo``: what the machine can give without swapping.
    4. ``RLIMIT_AS`` (``ulimit -v``), when finite, used as a cap on the total (the current virtual
       size is not subtracted: it counts reservations and mapped libraries, not use).

    Where none of them can be read (not Linux), the physical memory (``sysconf``), else
    ``sys.maxsize``.

    The environment variable ``FASTNAI_MEMORY_LIMIT`` (bytes, or a size such as ``"4 GiB"``,
    ``"500 MB"``; see :func:`parse_bytes`) replaces the detection: for tests, for a user who
    wants to keep a run below a share of a node, or where the detection is wrong.

    Raises
    ------
    CaseError
        ``FASTNAI_MEMORY_LIMIT`` is not a size.

    Examples
    --------
    >>> available_memory() > 0
    True
    >>> os.environ["FASTNAI_MEMORY_LIMIT"] = "500 MiB"
    >>> available_memory()
    524288000
    >>> del os.environ["FASTNAI_MEMORY_LIMIT"]
    """
    env = os.environ.get(ENV_LIMIT, "").strip()
    if env:
        try:
            return parse_bytes(env)
        except ValueError as exc:
            raise CaseError(f"environment variable {ENV_LIMIT} = {env!r}: {exc}") from None
    candidates = [_cgroup_v2_room(), _cgroup_v1_room(), _mem_available()]
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError, AttributeError):
        soft = resource.RLIM_INFINITY
    if soft != resource.RLIM_INFINITY and soft > 0:
        candidates.append(int(soft))
    known = [max(int(c), 0) for c in candidates if c is not None]
    if known:
        return min(known)
    return _physical_memory() or sys.maxsize


# ---------------------------------------------------------------------------------------------
# estimates, per model kind

#: deposition, bytes per cell of the box (ny x nz x nx), not counting snapshots: 11 float64
#: fields and work arrays of ``Cell`` (xi, conc, phi, xi_star, geom, geom2, eta_shift, xi_new,
#: source, lnc, div) and the uint8 mask (96); the labelling and dilation temporaries of
#: ``update_mask`` and ``morphology`` (boolean masks, int32 labels, int64 isin temporaries: 96);
#: the electrolyte solves (psi, right-hand side, start vector, solution, CG vectors: 128)
_DEP_FIELDS = 96 + 96 + 128
#: deposition, bytes per matrix row of one ``SpdSolver`` with ``s`` non-zeros a row (5: 2D, 7:
#: 3D): the int64 CSR pattern and values (8 + 16 s), the values the hierarchy was built from
#: (8 s), the int32 copy scipy makes of the pattern each solve (4 + 4 s), and the classical-AMG
#: hierarchy (coarse operators, strength and interpolation matrices, splitting, set-up
#: temporaries), counted as 8 times the matrix: 8 (3 + 12 s)
_DEP_SOLVER_FIXED, _DEP_SOLVER_PER_NNZ = 8 + 4 + 8 * 3, 16 + 8 + 4 + 8 * 12
#: deposition, safety factor on the per-cell total: the tracemalloc peak grows by 1.86 kB a cell
#: (64 x 64 -> 256 x 64 boxes, n_snapshots = 6), the counts above give 2.0 kB, the estimate 2.5 kB
_DEP_SAFETY = 1.25
#: band_bending, bytes per node: mesh and geometry (depth, midpoints, edges, spacings, face
#: areas, volumes, coordinate, conductances), start profile and continuation copies (13
#: float64 arrays), Newton's Numba work arrays (6), the profiles and their temporaries (12),
#: the Dataset's reordered copies and ordering (16) and writing (3): 50 arrays, rounded up to 64
_BB_PER_NODE = 64 * 8
#: drift_diffusion, bytes per node (3 unknowns a node): the Setup arrays (12 float64), the
#: Newton workspace (z, y, res, bcol, brow, dz: 6 x 3; lower, diag, upper, work blocks 4 x 9;
#: two-column work 6: 60 float64), the history copy (3), about 14 state vectors of the BDF2
#: integrator (predictor, history, weights, errors, trial: 42) and the equilibrium start (9):
#: 126 float64, rounded up to 160
_DD_PER_NODE = 160 * 8
#: drift_diffusion, bytes per node per stored profile: the stored state (3 float64) and, for a
#: single particle, the Dataset's profiles (6 fields, the per-profile rows, the stacked and the
#: reordered arrays: 15 float64): rounded up to 24 float64
_DD_PER_PROFILE_NODE = 24 * 8
#: film_stress laminate, bytes per layer of the stack (Numba work arrays, history, geometry)
_FS_PER_LAYER = 4096
#: film_stress laminate, bytes per layer per output state: stress, plastic strain at 2
#: points, theta, moduli and the Dataset's fields and copies (about 48 float64)
_FS_PER_LAYER_STATE = 48 * 8
#: film_stress plane strain, bytes per Q1 element (about one node, two DOF): Gauss-point
#: material data and plastic state (trial and committed), the B-bar data, the COO triplets of
#: the 8 x 8 element matrices, the CSR stiffness (18 non-zeros a DOF), the AMG hierarchy (3
#: times the matrix, with the 3 rigid-body modes) or SuperLU factors (<= 30000 DOF), CG vectors
_FS_PER_ELEMENT = 8 * 1024


def _dep_box(case) -> tuple[int, int, int]:
    return int(case["mesh.nx"]), int(case["mesh.ny"]), int(case["mesh.nz"])


#: Bytes of one complex LU factorisation of the deposition electrolyte per cell (2D).
_DEP_EIS_PER_CELL = 4_400


def _estimate_deposition(case) -> int:
    nx, ny, nz = _dep_box(case)
    cells = nx * ny * nz
    layer = nx * nz
    nnz_row = 7 if nz > 1 else 5
    solver = _DEP_SOLVER_FIXED + _DEP_SOLVER_PER_NNZ * nnz_row
    sep = int(case["separator.n_nodes"]) if case["separator.thickness"] > 0.0 else 0
    # snapshots: n_snapshots + 1 (+1 final) of phase, c_Na, potential (float64 cells) and the
    # active columns; held twice while the lists are stacked into the result
    n_snap = int(case["output.n_snapshots"]) + 2
    snapshots = 2 * n_snap * (3 * 8 * cells + 8 * layer)
    # per column of the substrate layer: wall/site masks, front heights, morphology temporaries
    columns = 128 * layer
    # sites: at most one a column, (site_width / dx)^d cells each (int64) and a few per-site arrays
    w = max(2, math.ceil(case["substrate.site_width"] / case["mesh.dx"]))
    sites = layer * 64 + layer * 8 * (w if nz == 1 else w * w)
    # eis steps: one SuperLU factorisation of the complex electrolyte system per worker thread
    # (at most one a Numba thread)
    # (measured 4.3 kB a cell at 256 x 128 in 2D; fill-in grows faster in 3D: 4x assumed)
    eis = 0
    if any(step.get("step") == "eis" for step in case["protocol"]):
        per_cell = _DEP_EIS_PER_CELL * (4 if nz > 1 else 1)
        eis = per_cell * (cells + sep) * max_threads()
    return _DEP_SAFETY * (_DEP_FIELDS * cells + solver * (cells + sep) + solver * cells + snapshots
                          + columns + sites + eis)


def _estimate_band_bending(case) -> int:
    nodes = int(case["mesh.n_nodes"]) * int(case["mesh.refinement"])
    return _BB_PER_NODE * nodes


def _dd_nodes(case) -> tuple[int, int]:
    """(particles, nodes per particle) as ``drift_diffusion.build`` makes them."""
    from .models.drift_diffusion.keys import base_nodes  # the model's own count; no Numba

    return int(case["ensemble.n_particles"]), (base_nodes(case) - 1) * int(case["mesh.refinement"]) + 1


def _estimate_drift_diffusion(case) -> int:
    n_p, n = _dd_nodes(case)
    nodes = n_p * n
    profiles = int(case["output.max_profiles"]) + 1
    stored = profiles * 3 * 8 * nodes
    dataset = profiles * (_DD_PER_PROFILE_NODE - 3 * 8) * n if n_p == 1 else 0
    # equilibrium start: a band-bending solve of one particle's base mesh
    return _DD_PER_NODE * nodes + stored + dataset + _BB_PER_NODE * n


def _graded_cells(length: float, h0: float, growth: float, h_max: float) -> int:
    """Cells of ``fem.graded_line(length, h0, growth, h_max)`` (the same loop, no arrays)."""
    if length <= 0.0:
        return 0
    h0 = min(h0, length)
    h_max = max(h_max, h0)
    if growth <= 1.0:
        return max(1, math.ceil(length / h0 * (1.0 - 1e-12)))
    total, n, h = 0.0, 0, h0
    while total < length * (1.0 - 1e-12):
        total += min(h, h_max)
        h *= growth
        n += 1
        if h >= h_max:  # uniform from here on: count the rest at once
            rest = length * (1.0 - 1e-12) - total
            if rest > 0.0:
                n += math.ceil(rest / h_max)
            break
    return max(n, 1)


def _film_elements(case) -> int:
    h_f, h_s = case["film.thickness"], case["substrate.thickness"]
    half = 0.5 * case["film.width"]
    extension = case["substrate.extension"]
    extension = 10.0 * h_f if extension is None else extension
    h0 = case["mesh.element_size"] or h_f / 16.0
    h_max = case["mesh.max_element_size"]
    if h_max is None:
        h_max = max(min(h_f + h_s, half) / 4.0, 2.0 * h_f)
    g = case["mesh.growth"]
    nz = _graded_cells(h_s, h0, g, h_max) + _graded_cells(h_f, h0, g, h_max)
    nx = _graded_cells(half, h0, g, h_max) + _graded_cells(extension, h0, g, h_max)
    return nx * nz


def _film_states(case) -> int:
    states = 1
    for st in case["protocol"]:
        states += int(st.get("n_states") or 1)
    return states


def _estimate_film_stress(case) -> int:
    states = _film_states(case)
    if case["model.mechanics"] == "plane_strain":
        elements = _film_elements(case)
        # the symmetry-line column and the edge zone per state: small; final stress fields
        return _FS_PER_ELEMENT * elements + states * 4096
    layers = int(case["mesh.film_layers"]) + int(case["mesh.substrate_layers"])
    return _FS_PER_LAYER * layers + _FS_PER_LAYER_STATE * layers * states


_ESTIMATORS = {
    "band_bending": _estimate_band_bending,
    "drift_diffusion": _estimate_drift_diffusion,
    "film_stress": _estimate_film_stress,
    "deposition": _estimate_deposition,
}

#: the keys that set the size of a run, per kind (for the refusal message)
MESH_KEYS = {
    "band_bending": ("mesh.n_nodes", "mesh.refinement"),
    "drift_diffusion": ("mesh.n_nodes", "mesh.refinement", "ensemble.n_particles",
                        "output.max_profiles"),
    "film_stress": ("mesh.film_layers", "mesh.substrate_layers"),
    "deposition": ("mesh.nx", "mesh.ny", "mesh.nz", "output.n_snapshots"),
}
_FILM_2D_KEYS = ("mesh.element_size", "mesh.max_element_size", "mesh.growth", "film.width",
                 "substrate.extension")


def _kind(case) -> str:
    kind = getattr(case, "kind", None)
    return kind if kind is not None else case["model.kind"]


def estimate_memory(case) -> int:
    """Peak bytes a run of ``case`` allocates, estimated from its mesh and output settings [B].

    A conservative (rounded-up) model per kind, bytes per mesh unit times the units, plus the
    output the run keeps in memory, plus :data:`OVERHEAD`:

    ``deposition``
        N = nx ny nz cells: 320 B (11 float64 fields and work arrays, the mask, labelling and
        electrolyte-solve temporaries) plus two sparse SPD solvers (salt, potential) of 5-point
        (2D) or 7-point (3D) CSR pattern with a classical-AMG hierarchy counted as 8 times the
        matrix, 656 B (2D) / 904 B (3D) each a row; snapshots: (``output.n_snapshots`` + 2) x 3
        float64 fields, held twice while stacked: 48 (n_snapshots + 2) B a cell; sites and
        per-column arrays of the substrate layer; all times 1.25 (2.5 kB a cell in 2D with 6
        snapshots, against a measured 1.86 kB).
    ``band_bending``
        ``mesh.n_nodes * mesh.refinement`` nodes x 512 B (64 float64 arrays: mesh, geometry,
        Newton's work arrays, profiles, the Dataset's copies).
    ``drift_diffusion``
        particles x nodes (as the model builds the mesh, at most ``mesh.n_nodes *
        mesh.refinement``) x 1280 B (Setup, block-tridiagonal Newton workspace, BDF2 vectors),
        plus ``output.max_profiles + 1`` stored states (24 B a node) and for one particle the
        Dataset's profiles (168 B a node each), plus the band-bending start of one particle.
    ``film_stress``
        laminate: 4 KiB a layer plus 384 B a layer per output state (1 + the ``n_states`` of
        the steps); plane strain: 8 KiB per Q1 element of the graded cross-section (material
        and plastic state, element matrices, CSR stiffness, AMG hierarchy or sparse LU).

    Not counted: what grows with the number of time steps (per-step series, a few hundred
    bytes a step; ensemble particle currents, 8 B per particle a step; the per-step states of a
    film_stress diffusion run), which cannot be known before the run.

    Parameters
    ----------
    case
        A validated case (:class:`~fastnai.case.Case`): read through ``case.kind`` and
        ``case["section.key"]`` only.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> from fastnai import load_case
    >>> case = load_case({"model": {"kind": "band_bending"},
    ...                   "semiconductor": {"material": "anatase-TiO2"},
    ...                   "contact": {"material": "TiC"}, "mesh": {"n_nodes": 2000}})
    >>> format_bytes(estimate_memory(case))
    '65.0 MiB'
    """
    kind = _kind(case)
    try:
        estimator = _ESTIMATORS[kind]
    except KeyError:
        raise CaseError(f"model.kind = {kind!r}: no memory estimate for this kind") from None
    return int(math.ceil(estimator(case))) + OVERHEAD


def _size_keys(case) -> list[str]:
    kind = _kind(case)
    keys = list(MESH_KEYS.get(kind, ()))
    if kind == "film_stress" and case["model.mechanics"] == "plane_strain":
        keys = list(_FILM_2D_KEYS)
    if kind == "deposition" and case["mesh.nz"] == 1:
        keys.remove("mesh.nz")
    if kind in ("band_bending", "drift_diffusion") and case["mesh.refinement"] == 1:
        keys.remove("mesh.refinement")
    if kind == "drift_diffusion" and case["ensemble.n_particles"] == 1:
        keys.remove("ensemble.n_particles")
    return keys


def check_memory(case, *, available: int | None = None) -> int:
    """Refuse ``case`` if its run would not fit in memory; return its estimate [B].

    Parameters
    ----------
    case
        A validated case.
    available
        Bytes the run may use; default :func:`available_memory`.

    Returns
    -------
    int
        :func:`estimate_memory` of the case.

    Raises
    ------
    CaseError
        (exit status 2) when the estimate exceeds :data:`USABLE_FRACTION` (90 %) of the
        available memory; the message names the mesh keys and their values, the estimate,
        the memory available and which keys to lower.

    Examples
    --------
    >>> from fastnai import load_case
    >>> case = load_case("cases/deposition_na_vn.toml",
    ...                  {"mesh.nx": 100000, "mesh.ny": 100000})
    >>> check_memory(case, available=64 * 2**30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fastnai.errors.CaseError: mesh.nx = 100000, mesh.ny = 100000, output.n_snapshots = 6: ...
    >>> check_memory(case.with_overrides({"mesh.nx": 64, "mesh.ny": 64}),
    ...              available=64 * 2**30) < 2**30
    True
    """
    estimate = estimate_memory(case)
    given = available is not None
    if available is None:
        available = available_memory()
    if estimate > USABLE_FRACTION * available:
        keys = _size_keys(case)
        values = ", ".join(f"{k} = {_show(case[k])}" for k in keys)
        if given:
            source = "as given"
        elif os.environ.get(ENV_LIMIT, "").strip():
            source = f"from {ENV_LIMIT}"
        else:
            source = "from the cgroup limit, the free memory and the address-space limit"
        lower = " or ".join(keys)
        raise CaseError(
            f"{values}: this {_kind(case)} run needs about {format_bytes(estimate)} of memory "
            f"(estimated from the mesh before allocating), more than {USABLE_FRACTION:.0%} of "
            f"the {format_bytes(available)} available to this process ({source}); "
            f"lower {lower}, or run on a machine (or with a job memory request) that gives it "
            f"at least {format_bytes(estimate / USABLE_FRACTION)}")
    return estimate


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Numba threads


#: What ``--threads`` defaults to: the words of ``fastnai run --help`` and ``fastnai sweep
#: --help`` (the number is :func:`max_threads`).
THREADS_DEFAULT = "default: NUMBA_NUM_THREADS if set, else all cores"


def max_threads() -> int:
    """Numba's thread-pool size, the most threads a run here can use and the default of
    ``--threads``: ``NUMBA_NUM_THREADS`` as it was when Numba was imported, else the cores this
    process may run on (its CPU affinity)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def check_threads(n_threads, name: str = "--threads", *, here: bool = True) -> None:
    """Refuse a thread count that is not a whole number from 1 to :func:`max_threads`.

    ``None`` (the default) passes. ``here=False`` (points on another machine's Dask workers)
    checks only ``>= 1``: a worker uses at most its own pool.

    >>> check_threads(0, "n_threads")
    Traceback (most recent call last):
    ...
    fastnai.errors.CaseError: n_threads = 0: expected a whole number from 1 to ...
    """
    if n_threads is None:
        return
    whole = isinstance(n_threads, int) and not isinstance(n_threads, bool)
    if whole and n_threads >= 1 and not here:
        return
    if not whole or not 1 <= n_threads <= max_threads():
        bound = f"from 1 to {max_threads()} (NUMBA_NUM_THREADS if set, else all cores)" if here \
            else ">= 1"
        raise CaseError(f"{name} = {_show(n_threads)}: expected a whole number {bound}")


@contextlib.contextmanager
def numba_threads(n_threads: int | None = None) -> Iterator[int]:
    """Run the block on ``n_threads`` Numba threads (default :func:`max_threads`), then restore
    the count this thread had (Numba's count is per thread).

    >>> with numba_threads(1) as n:
    ...     n
    1
    """
    check_threads(n_threads)
    import numba

    n = max_threads() if n_threads is None else n_threads
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(before)
