"""Memory estimates and the refusal of cases that would not fit (fastnai.resources, SPEC §8)."""

from __future__ import annotations

import importlib
import tracemalloc
from pathlib import Path

import pytest

from fastnai import resources
from fastnai.case import load_case
from fastnai.errors import CaseError

REPO = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((REPO / "cases").glob("*.toml"))
GiB, MiB = 2**30, 2**20


def _case(name: str, overrides=None):
    return load_case(REPO / "cases" / f"{name}.toml", overrides)


def _short_deposition(nx: int, ny: int):
    """deposition_na_vn on an nx x ny box, plated to 0.002 mA h cm-2 (a few seconds)."""
    case = _case("deposition_na_vn", {"mesh.nx": nx, "mesh.ny": ny})
    shrunk = {}
    for k, st in enumerate(case["protocol"]):
        if st.get("capacity") is not None:
            shrunk[f"protocol.{k}.capacity"] = "0.002 mA h cm^-2"
        elif st.get("duration") is not None:
            shrunk[f"protocol.{k}.duration"] = min(st["duration"], 5.0)
    return case.with_overrides(shrunk)


@pytest.fixture
def no_env_limit(monkeypatch):
    monkeypatch.delenv(resources.ENV_LIMIT, raising=False)


# -- refusing ------------------------------------------------------------------------------------


def test_the_huge_deposition_box_is_refused_before_allocating(no_env_limit):
    case = _case("deposition_na_vn", {"mesh.nx": 100000, "mesh.ny": 100000})
    with pytest.raises(CaseError) as err:
        resources.check_memory(case)
    msg = str(err.value)
    assert "mesh.nx = 100000" in msg and "mesh.ny = 100000" in msg
    assert "GiB" in msg and "\n" not in msg
    # the estimate: 1e10 cells, every float64 field alone is the 74.5 GiB of the traceback
    assert resources.estimate_memory(case) > 10 * 74.5 * GiB
    assert err.value.exit_status == 2


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_every_example_case_fits_the_real_memory(path, no_env_limit):
    try:
        case = load_case(path)
    except CaseError as exc:  # loading the examples is tests/test_cases.py's business
        pytest.skip(f"{path.name} does not load: {exc}")
    estimate = resources.check_memory(case)
    assert resources.OVERHEAD < estimate < 2 * GiB


def test_a_small_limit_in_the_environment_refuses_a_normal_case(monkeypatch):
    case = _case("deposition_na_vn")
    monkeypatch.setenv(resources.ENV_LIMIT, "50 MiB")
    assert resources.available_memory() == 50 * MiB
    with pytest.raises(CaseError, match=r"mesh\.nx = 256, mesh\.ny = 128.*FASTNAI_MEMORY_LIMIT"):
        resources.check_memory(case)
    monkeypatch.setenv(resources.ENV_LIMIT, "64 GiB")
    assert resources.check_memory(case) == resources.estimate_memory(case)


def test_band_bending_at_the_schema_maximum_is_only_estimated(no_env_limit):
    # 2e7 nodes is a question of run time, not of memory: about 10 GiB is reported
    case = _case("band_bending_ticn_tio2", {"mesh.n_nodes": 20_000_000,
                                            "mesh.min_spacing": "1e-15 m"})
    assert 5 * GiB < resources.estimate_memory(case) < 12 * GiB
    with pytest.raises(CaseError, match=r"mesh\.n_nodes = 20000000: this band_bending run"):
        resources.check_memory(case, available=4 * GiB)


def test_a_bad_environment_limit_is_a_case_error(monkeypatch):
    monkeypatch.setenv(resources.ENV_LIMIT, "lots")
    with pytest.raises(CaseError, match="FASTNAI_MEMORY_LIMIT"):
        resources.available_memory()


@pytest.mark.parametrize("text, expected", [("4 GiB", 4 * GiB), ("500 MB", 500_000_000),
                                            ("2G", 2 * GiB), ("1.5 kib", 1536), ("1e9", 10**9),
                                            ("123", 123)])
def test_sizes_parse(text, expected):
    assert resources.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "-1 GB", "4 parsecs", "nan", "GB"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        resources.parse_bytes(text)


# -- where the available memory comes from -------------------------------------------------------


def _fake_system(monkeypatch, tmp_path, *, v2=None, v1=None, meminfo_kb=8_000_000):
    cg = tmp_path / "cgroup"
    (cg / "memory").mkdir(parents=True, exist_ok=True)
    proc_cgroup = tmp_path / "proc_cgroup"
    proc_cgroup.write_text("0::/job\n4:memory:/job\n")
    if v2 is not None:
        limit, current, inactive = v2
        (cg / "job").mkdir(exist_ok=True)
        (cg / "job" / "memory.max").write_text(f"{limit}\n")
        (cg / "job" / "memory.current").write_text(f"{current}\n")
        (cg / "job" / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\n")
        (cg / "memory.max").write_text("max\n")
        (cg / "memory.current").write_text("1\n")
    if v1 is not None:
        limit, usage = v1
        (cg / "memory" / "memory.limit_in_bytes").write_text(f"{limit}\n")
        (cg / "memory" / "memory.usage_in_bytes").write_text(f"{usage}\n")
        (cg / "memory" / "memory.stat").write_text("total_inactive_file 0\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: 16000000 kB\nMemAvailable: {meminfo_kb} kB\n")
    monkeypatch.setattr(resources, "_CGROUP", cg)
    monkeypatch.setattr(resources, "_SELF_CGROUP", proc_cgroup)
    monkeypatch.setattr(resources, "_MEMINFO", meminfo)
    monkeypatch.delenv(resources.ENV_LIMIT, raising=False)


def test_cgroup_v2_limit_minus_its_usage(monkeypatch, tmp_path):
    # 4 GiB limit, 3 GiB charged of which 1 GiB reclaimable page cache: 2 GiB left
    _fake_system(monkeypatch, tmp_path, v2=(4 * GiB, 3 * GiB, GiB))
    assert resources.available_memory() == 2 * GiB


def test_cgroup_v1_limit_and_the_unlimited_sentinel(monkeypatch, tmp_path):
    _fake_system(monkeypatch, tmp_path, v1=(3 * GiB, GiB))
    assert resources.available_memory() == 2 * GiB
    _fake_system(monkeypatch, tmp_path, v1=(9223372036854771712, GiB), meminfo_kb=1_000_000)
    assert resources.available_memory() == 1_000_000 * 1024


def test_meminfo_when_there_is_no_cgroup_limit(monkeypatch, tmp_path):
    _fake_system(monkeypatch, tmp_path, v2=("max", GiB, 0), meminfo_kb=2_000_000)
    assert resources.available_memory() == 2_000_000 * 1024


# -- the estimates -------------------------------------------------------------------------------


def test_deposition_scales_linearly_with_cells():
    sizes = [(128, 64), (256, 64), (512, 64), (256, 256)]
    est = {(nx, ny): resources.estimate_memory(_case("deposition_na_vn",
                                                     {"mesh.nx": nx, "mesh.ny": ny}))
           for nx, ny in sizes}
    step = est[256, 64] - est[128, 64]
    assert est[512, 64] - est[256, 64] == pytest.approx(2 * step, rel=0.02)
    # same cells, other shape: the same estimate up to the per-column arrays
    assert (est[256, 256] - est[128, 64]) == pytest.approx(7 * step, rel=0.05)


@pytest.mark.parametrize("name", ["band_bending_ticn_tio2", "drift_diffusion_ticn_tio2_discharge"])
def test_1d_models_scale_linearly_with_nodes(name):
    est = [resources.estimate_memory(_case(name, {"mesh.refinement": r})) for r in (1, 2, 4)]
    assert est[2] - est[1] == pytest.approx(2 * (est[1] - est[0]), rel=0.02)
    assert est[1] > est[0]


def _measured_peak(case) -> int:
    """Peak bytes traced (numpy allocations included) over ``models.<kind>.run(case)``."""
    module = importlib.import_module(f"fastnai.models.{case.kind}")
    kwargs = {"progress": False} if case.kind == "deposition" else {}
    module.run(case, **kwargs)  # compile (or load) the kernels outside the measurement
    tracemalloc.start()
    try:
        module.run(case, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("which", ["deposition", "band_bending"])
def test_the_estimate_bounds_the_measured_peak(which):
    """measured <= estimate <= 4 measured + OVERHEAD (the fixed allowance for the interpreter's
    objects, xarray, pyamg set-up: what does not scale with the mesh)."""
    if which == "deposition":
        case = _short_deposition(64, 64)
    else:
        case = _case("band_bending_ticn_tio2", {"mesh.n_nodes": 20000,
                                                "mesh.min_spacing": "1e-13 m"})
    measured = _measured_peak(case)
    estimate = resources.estimate_memory(case)
    assert measured <= estimate <= 4 * measured + resources.OVERHEAD, (measured, estimate)
