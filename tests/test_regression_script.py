"""The CI performance check (benchmarks/regression.py) on synthetic asv 0.6 result files; no asv run."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "regression.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("fastnai_perf_regression", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regression = _load_script()

KERNEL = "kernels.TimeK.time_k"
PROBE = "machine.Probe.time_p(2)"
COLUMNS = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a",
           "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
           "samples", "profile"]


def asv_file(benchmarks: dict, started_at: int = 1_800_000_000_000) -> dict:
    """An asv 0.6 result file: ``benchmarks`` maps a name to ``(params, results)`` (results in
    ``itertools.product`` order), or to a bare value for an unparametrised benchmark."""
    results = {}
    for name, spec in benchmarks.items():
        params, values = spec if isinstance(spec, tuple) else ([], [spec])
        if all(v is None for v in values):
            values = None
        results[name] = [values, params, "0" * 64, started_at, 1.0]
    return {"commit_hash": "0" * 40, "env_name": "existing-py", "date": 0,
            "params": {"machine": "ci", "num_cpu": "2"}, "python": "3.11", "requirements": {},
            "env_vars": {}, "result_columns": COLUMNS, "results": results, "durations": {},
            "version": 2}


def run_of(kernel: float | None, probe: float | None = 0.01, n: str = "100000",
           other: float | None = 1e-3) -> dict:
    """Flattened results of one run: ``KERNEL(n)`` (with a small size beside it) and the probe."""
    data = asv_file({
        KERNEL: ([["1000", n]], [other, kernel]),
        "machine.Probe.time_p": ([["1", "2"]], [0.02, probe]),
    })
    return regression.flatten_results(data)


REFERENCE = {
    "probes": {"fma": {"benchmark": PROBE, "kind": "time"}},
    "benchmarks": {f"{KERNEL}(100000)": {"probe": "fma", "ratio": 0.5}},
}


def verdicts(rows):
    return {row["key"]: row["verdict"] for row in rows}


def test_flatten_results_keys_params_like_asv_and_keeps_null_and_nan():
    data = asv_file({
        "a.T.time_x": ([["1", "2"], ["'u'", "'v'"]], [1.0, None, math.nan, 4.0]),
        "a.T.time_plain": 5.0,
        "a.T.time_broken": ([["1"]], [None]),
    })
    flat = regression.flatten_results(json.loads(json.dumps(data)))
    assert flat["a.T.time_x(1, 'u')"] == 1.0
    assert flat["a.T.time_x(1, 'v')"] is None
    assert math.isnan(flat["a.T.time_x(2, 'u')"])
    assert flat["a.T.time_x(2, 'v')"] == 4.0
    assert flat["a.T.time_plain"] == 5.0
    assert flat["a.T.time_broken(1)"] is None


def test_flatten_results_drops_rows_older_than_this_run():
    data = asv_file({"a.old": 1.0}, started_at=1000)
    data["results"].update(asv_file({"a.new": 2.0}, started_at=5000)["results"])
    assert regression.flatten_results(data, since_ms=4000) == {"a.new": 2.0}


def test_restrict_results_keeps_only_this_runs_requested_combinations():
    data = asv_file({"a.T.time_x": ([["1", "2"]], [1.0, 2.0])}, started_at=5000)
    data["results"].update(asv_file({"a.T.time_old": 3.0}, started_at=1000)["results"])
    run = regression.restrict_results(data, ["a.T.time_x(2)", "a.T.time_old"], since_ms=4000)
    assert list(run["results"]) == ["a.T.time_x"]  # the old row is another run's
    flat = regression.flatten_results(json.loads(json.dumps(run)))
    assert flat["a.T.time_x(2)"] == 2.0
    assert math.isnan(flat["a.T.time_x(1)"])  # asv's stale value of an unselected combination


def test_kernel_two_and_a_half_times_slower_fails():
    rows, failed = regression.compare([run_of(0.0125)], REFERENCE, 2.0)
    assert failed
    row = rows[0]
    assert row["verdict"] == "SLOWER"
    assert row["ratio"] == pytest.approx(1.25)
    assert row["factor"] == pytest.approx(2.5)


def test_kernel_one_and_a_half_times_slower_passes():
    rows, failed = regression.compare([run_of(0.0075)], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["verdict"] == "ok"
    assert rows[0]["factor"] == pytest.approx(1.5)


def test_uniformly_slower_machine_cancels_in_the_probe_ratio():
    # kernel and probe both 3x slower than when the reference was taken: not a regression
    rows, failed = regression.compare([run_of(3 * 0.005, probe=3 * 0.01)], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["verdict"] == "ok"
    assert rows[0]["factor"] == pytest.approx(1.0)
    # the same kernel time on the reference machine speed would have failed
    assert regression.compare([run_of(3 * 0.005)], REFERENCE, 2.0)[1]


def test_much_faster_kernel_passes_and_suggests_update():
    rows, failed = regression.compare([run_of(0.001)], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["verdict"] == "faster"


def test_benchmark_missing_from_results_warns_without_failing(capsys):
    results = regression.flatten_results(asv_file({"machine.Probe.time_p": ([["2"]], [0.01])}))
    rows, failed = regression.compare([results], REFERENCE, 2.0)
    assert not failed
    assert verdicts(rows) == {f"{KERNEL}(100000)": "missing"}
    assert regression.report(rows, failed, 2.0) == 0
    assert "warning" in capsys.readouterr().err


def test_checked_benchmark_missing_from_reference_warns_without_failing():
    reference = {"probes": REFERENCE["probes"], "benchmarks": {}}
    rows, failed = regression.compare([run_of(0.005)], reference, 2.0,
                                      checks=[f"{KERNEL}(100000)"])
    assert not failed
    assert verdicts(rows) == {f"{KERNEL}(100000)": "no reference"}


def test_missing_probe_warns_without_failing():
    results = regression.flatten_results(asv_file({KERNEL: ([["100000"]], [0.005])}))
    rows, failed = regression.compare([results], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["verdict"] == "no probe"


def test_skipped_benchmark_warns_without_failing():
    rows, failed = regression.compare([run_of(math.nan)], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["verdict"] == "skipped"


def test_null_result_fails(capsys):
    rows, failed = regression.compare([run_of(None)], REFERENCE, 2.0)
    assert failed
    assert rows[0]["verdict"] == "FAILED"
    assert regression.report(rows, failed, 2.0) == 1
    assert "FAILED" in capsys.readouterr().err


def test_null_result_of_a_whole_benchmark_fails():
    # every combination failed: asv stores result null for the row
    rows, failed = regression.compare([run_of(None, other=None)], REFERENCE, 2.0)
    assert failed
    assert rows[0]["verdict"] == "FAILED"


def test_null_probe_fails():
    rows, failed = regression.compare([run_of(0.005, probe=None)], REFERENCE, 2.0)
    assert failed
    assert rows[0]["verdict"] == "FAILED"


def test_a_set_of_runs_takes_the_fastest_kernel_over_the_fastest_probe():
    # one noisy kernel call (4x) and a normal one: a burst of load, not a regression
    rows, failed = regression.compare([run_of(0.02), run_of(0.006)], REFERENCE, 2.0)
    assert not failed
    assert rows[0]["factor"] == pytest.approx(1.2)
    # slow in every run (a retry adds runs to the set): a regression
    assert regression.compare([run_of(0.02), run_of(0.013), run_of(0.014)], REFERENCE, 2.0)[1]
    # the probe's best run counts, so a slow probe call does not hide a regression
    assert regression.compare([run_of(0.0125, probe=0.05), run_of(0.0125)], REFERENCE, 2.0)[1]


def test_rate_probe_normalises_by_the_best_rate():
    # a GFLOP/s probe: ratio = kernel time x best rate; a machine at half the rate (kernel 2x
    # slower too) gives the same ratio
    reference = {"probes": {"fma": {"benchmark": "machine.Probe.track_r", "kind": "rate",
                                    "unit": "GFLOP/s"}},
                 "benchmarks": {"kernels.TimeK.time_k": {"probe": "fma", "ratio": 0.5}}}

    def run(kernel, rate):
        return regression.flatten_results(asv_file({"kernels.TimeK.time_k": kernel,
                                                    "machine.Probe.track_r": rate}))

    rows, failed = regression.compare([run(0.01, 50.0), run(0.011, 40.0)], reference, 2.0)
    assert not failed and rows[0]["ratio"] == pytest.approx(0.5)
    rows, failed = regression.compare([run(0.02, 25.0)], reference, 2.0)
    assert not failed and rows[0]["factor"] == pytest.approx(1.0)
    rows, failed = regression.compare([run(0.025, 50.0)], reference, 2.0)
    assert failed and rows[0]["factor"] == pytest.approx(2.5)
    assert "50 GFLOP/s" in regression.format_table(rows, 2.0, reference)


def test_tolerance_from_the_environment(monkeypatch):
    monkeypatch.delenv(regression.TOLERANCE_ENV, raising=False)
    assert regression.tolerance_from_env() == 2.0
    monkeypatch.setenv(regression.TOLERANCE_ENV, "3")
    tolerance = regression.tolerance_from_env()
    assert tolerance == 3.0
    assert not regression.compare([run_of(0.0125)], REFERENCE, tolerance)[1]  # 2.5x passes
    monkeypatch.setenv(regression.TOLERANCE_ENV, "1.2")
    assert regression.compare([run_of(0.0075)], REFERENCE, regression.tolerance_from_env())[1]
    for bad in ("fast", "0.5", "inf"):
        monkeypatch.setenv(regression.TOLERANCE_ENV, bad)
        with pytest.raises(SystemExit):
            regression.tolerance_from_env()


def test_compare_command_exit_status_follows_the_tolerance_env(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(asv_file({
        KERNEL: ([["1000", "100000"]], [1e-3, 0.0125]),
        "machine.Probe.time_p": ([["1", "2"]], [0.02, 0.01]),
    })))
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(REFERENCE))
    argv = ["compare", str(results), "--reference", str(reference)]
    monkeypatch.delenv(regression.TOLERANCE_ENV, raising=False)
    assert regression.main(argv) == 1
    out = capsys.readouterr().out
    assert "SLOWER" in out and "100000" in out
    monkeypatch.setenv(regression.TOLERANCE_ENV, "3.0")
    assert regression.main(argv) == 0


def test_update_writes_median_set_ratio_and_spread(tmp_path, capsys):
    checks = {f"{KERNEL}(100000)": ("fma", "compute", "test")}
    probes = {"fma": (PROBE, "time", "s", "test probe")}
    sets = [[run_of(0.004), run_of(0.009)], [run_of(0.005)], [run_of(0.012), run_of(0.02)]]
    reference = regression.make_reference(sets, machine={"num_cpu": "2"}, how="test",
                                          checks=checks, probes=probes)
    entry = reference["benchmarks"][f"{KERNEL}(100000)"]
    assert entry["ratios"] == pytest.approx([0.4, 0.5, 1.2])
    assert entry["ratio"] == pytest.approx(0.5)
    assert entry["spread"] == pytest.approx(3.0)
    assert entry["probe"] == "fma" and entry["bound"] == "compute"
    assert reference["probes"]["fma"]["kind"] == "time"
    assert "spread" in capsys.readouterr().err  # too noisy: warned
    path = tmp_path / "reference.json"
    regression.write_reference(reference, path)
    rows, failed = regression.compare([run_of(0.005)], regression.load_reference(path), 2.0,
                                      checks=checks)
    assert not failed and rows[0]["factor"] == pytest.approx(1.0)


def test_update_leaves_out_a_benchmark_that_failed_in_a_set(capsys):
    checks = {f"{KERNEL}(100000)": ("fma", "compute", "test")}
    probes = {"fma": (PROBE, "time", "s", "test probe")}
    reference = regression.make_reference([[run_of(0.005)], [run_of(None)]], machine={},
                                          how="test", checks=checks, probes=probes)
    assert reference["benchmarks"] == {}
    assert "left out" in capsys.readouterr().err


def test_bench_regexes_select_exactly_the_checked_combinations():
    keys = ["kernels.TimeNewtonSolve.time_newton_solve(100000, 'fermi-dirac')",
            "machine.FmaProbe.time_fma(2)", "phase_field.TimeGrowth.time_growth_sum"]
    regexes = regression.bench_regexes(keys)
    names = [f"kernels.TimeNewtonSolve.time_newton_solve({n}, {s})"
             for n, s in itertools.product(["1000", "100000"], ["'boltzmann'", "'fermi-dirac'"])]
    names += ["machine.FmaProbe.time_fma(1)", "machine.FmaProbe.time_fma(2)",
              "phase_field.TimeGrowth.time_growth_sum", "phase_field.TimeGrowth.time_apply_growth"]
    selected = {n for n in names if any(re.search(r, n) for r in regexes)}
    assert selected == set(keys)


def test_stored_reference_covers_the_checks_with_their_probes():
    reference = regression.load_reference()
    assert set(reference["benchmarks"]) == set(regression.CHECKS)
    for key, entry in reference["benchmarks"].items():
        probe, bound, _ = regression.CHECKS[key]
        assert entry["probe"] == probe and entry["bound"] == bound
        assert entry["ratio"] > 0 and entry["spread"] <= regression.MAX_SPREAD
    for name, (bench, kind, unit, _) in regression.PROBES.items():
        assert reference["probes"][name]["benchmark"] == bench
        assert (reference["probes"][name]["kind"], reference["probes"][name]["unit"]) == (kind, unit)
    assert reference["numba_threads"] == regression.THREADS
