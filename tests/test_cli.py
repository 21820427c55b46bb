"""Command line: run, --set, exit statuses and messages, materials, schema, validate, plot, Numba cache.

Most tests call ``fastnai.cli.main`` in-process (fast); one runs the installed ``fastnai`` script
and one checks in two fresh processes that the second run of a case compiles nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import fastnai
from fastnai.cli import main
from fastnai.io import read_dataset
from fastnai.materials import MATERIALS
from fastnai.models.band_bending import KEYS

CASES = Path(__file__).resolve().parents[1] / "cases"
CASE = CASES / "band_bending_ticn_tio2.toml"
SMALL = ["--set", "mesh.n_nodes=300"]  # 0.01 nm * 299 <= 100 nm
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_clean_failure(capsys, status: int, *expected: str) -> str:
    """Exit status 2, one paragraph on stderr naming ``expected``, no traceback."""
    out, err = capsys.readouterr()
    assert status == 2
    assert err.startswith("fastnai: CaseError: ")
    assert "Traceback" not in err and "Traceback" not in out
    assert "\n\n" not in err.strip(), "the message is one paragraph"
    flat = " ".join(err.split())
    for text in expected:
        assert text in flat, text
    return flat


@pytest.fixture(scope="module")
def result_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("result") / "small.nc"
    assert main(["run", str(CASE), "-o", str(path), "-q", *SMALL]) == 0
    return path


def test_run_writes_netcdf_at_the_default_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(CASE), *SMALL]) == 0
    out = tmp_path / "band_bending_ticn_tio2.nc"
    assert out.is_file()
    stdout = capsys.readouterr().out
    assert "wrote band_bending_ticn_tio2.nc" in stdout
    assert "interface_field" in stdout
    assert read_dataset(out).attrs["model"] == "band_bending"


def test_run_writes_netcdf_at_the_o_path(tmp_path, capsys):
    out = tmp_path / "sub" / "result.nc"
    assert main(["run", str(CASE), "-o", str(out), *SMALL]) == 0
    ds = read_dataset(out)
    assert ds.sizes["x"] == 300
    assert f"wrote {out}" in capsys.readouterr().out


def test_run_quiet_prints_nothing(tmp_path, capsys):
    assert main(["run", str(CASE), "-o", str(tmp_path / "q.nc"), "-q", *SMALL]) == 0
    assert capsys.readouterr().out == ""


def test_set_overrides_reach_the_result(tmp_path):
    out = tmp_path / "set.nc"
    status = main(["run", str(CASE), "-o", str(out), *SMALL,
                   "--set", "semiconductor.donor_density=1e17 cm^-3",
                   "--set", "model.geometry=sphere", "--set", "semiconductor.thickness=20 nm"])
    assert status == 0
    ds = read_dataset(out)
    assert "r" in ds.dims and ds.attrs["geometry"] == "sphere"
    assert 'donor_density = 1e+23  # [m^-3]' in ds.attrs["case"]
    assert float(ds["r"].max()) == pytest.approx(20e-9, rel=1e-12)


def test_threads_option_sets_numba_threads(tmp_path):
    import numba

    before = numba.get_num_threads()
    try:
        assert main(["run", str(CASE), "-o", str(tmp_path / "t.nc"), "-q", "--threads", "1",
                     *SMALL]) == 0
        assert read_dataset(tmp_path / "t.nc").attrs["numba_threads"] == 1
    finally:
        numba.set_num_threads(before)


def test_bad_threads_exits_2(tmp_path, capsys):
    out = tmp_path / "t.nc"
    status = main(["run", str(CASE), "-o", str(out), "--threads", "0", *SMALL])
    assert_clean_failure(capsys, status, "--threads = 0")
    assert not out.exists()


def threads_help(capsys, command: str) -> str:
    """The ``--threads`` help of ``fastnai COMMAND --help``, unwrapped to one line."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    return text.split("--threads N ", 1)[1].split(" --", 1)[0]


def test_run_sweep_and_validate_help_give_the_same_threads_default(capsys):
    helps = {command: threads_help(capsys, command) for command in ("run", "sweep", "validate")}
    for command, text in helps.items():
        assert text.startswith("Numba threads"), command
        assert "(default: NUMBA_NUM_THREADS if set, else all cores" in text, (command, text)
        assert "else 1" not in text, command


def test_run_without_threads_uses_the_documented_default_not_the_inherited_count(tmp_path):
    import numba

    default = numba.config.NUMBA_NUM_THREADS  # NUMBA_NUM_THREADS if set, else all cores
    before = numba.get_num_threads()
    numba.set_num_threads(1)  # a count left behind by earlier work in this process
    try:
        assert main(["run", str(CASE), "-o", str(tmp_path / "d.nc"), "-q", *SMALL]) == 0
        assert numba.get_num_threads() == 1, "the caller's count is restored"
    finally:
        numba.set_num_threads(before)
    assert read_dataset(tmp_path / "d.nc").attrs["numba_threads"] == default


def test_run_without_threads_takes_numba_num_threads_from_the_environment(tmp_path):
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "fastnai", "run", str(CASE), "-o",
                           str(tmp_path / "e.nc"), "-q", *SMALL],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp_path / "e.nc").attrs["numba_threads"] == 1


def test_sweep_without_threads_runs_its_points_with_the_documented_default(tmp_path):
    import numba

    default = numba.config.NUMBA_NUM_THREADS
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert main(["sweep", str(CASE), "--vary", "contact.work_function=4.1,4.3",
                     "--scheduler", "synchronous", "-o", str(tmp_path / "s"), "-q", *SMALL]) == 0
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
    ds = read_dataset(tmp_path / "s" / "sweep.nc")
    assert ds.run_numba_threads.values.tolist() == [default, default]


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("beyond", [False, True], ids=["zero", "above-the-pool"])
def test_run_and_sweep_refuse_the_same_thread_counts(tmp_path, capsys, command, beyond):
    import numba

    pool = numba.config.NUMBA_NUM_THREADS
    threads = str(pool + 1 if beyond else 0)
    args = [command, str(CASE), "-o", str(tmp_path / "o.nc"), "--threads", threads, *SMALL]
    if command == "sweep":
        args += ["--vary", "contact.work_function=4.1,4.3", "--scheduler", "synchronous"]
    status = main(args)
    assert_clean_failure(capsys, status, f"--threads = {threads}: expected a whole number from 1 "
                                         f"to {pool} (NUMBA_NUM_THREADS if set, else all cores)")
    assert list(tmp_path.iterdir()) == []


def test_bad_case_exits_2_with_one_paragraph_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nkind = "band_bending"\n[semiconductor]\nmaterial = "anatase-TiO2"\n'
                   'thickness = "5 eV"\n[contact]\nmaterial = "TiC"\n')
    out = tmp_path / "bad.nc"
    status = main(["run", str(bad), "-o", str(out)])
    assert_clean_failure(capsys, status, "semiconductor.thickness", "'5 eV'", "dimension")
    assert list(tmp_path.iterdir()) == [bad]


def test_bad_case_does_not_replace_an_existing_output(tmp_path, capsys):
    out = tmp_path / "keep.nc"
    out.write_bytes(b"previous result")
    status = main(["run", str(CASE), "-o", str(out), "--set", "mesh.n_nodes=-5"])
    assert_clean_failure(capsys, status, "mesh.n_nodes", "-5")
    assert out.read_bytes() == b"previous result"


@pytest.mark.parametrize(("item", "expected"), [
    ("mesh.n_nodes=abc", ("mesh.n_nodes", "'abc'")),
    ("mesh.n_node=300", ("'mesh.n_node'", "did you mean 'mesh.n_nodes'")),
    ("semiconductor.thickness=5 eV", ("semiconductor.thickness", "'5 eV'")),
    ("mesh.n_nodes", ("--set 'mesh.n_nodes'", "key=value")),
])
def test_bad_set_exits_2_and_writes_nothing(tmp_path, capsys, item, expected):
    out = tmp_path / "out.nc"
    status = main(["run", str(CASE), "-o", str(out), "--set", item])
    assert_clean_failure(capsys, status, *expected)
    assert list(tmp_path.iterdir()) == []


def test_missing_case_file_exits_2(tmp_path, capsys):
    status = main(["run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "x.nc")])
    assert_clean_failure(capsys, status, "nope.toml", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_materials_lists_every_database_entry(capsys):
    assert main(["materials"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, material in MATERIALS.items():
        assert f"{name}: {material.description}" in lines
        for key in material.properties:
            assert key in out
    assert "TiC0.5N0.5" in out


def test_schema_lists_every_key(capsys):
    assert main(["schema", "band_bending"]) == 0
    out = capsys.readouterr().out
    names = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
    assert set(KEYS) <= names
    assert "semiconductor.thickness" in out and "quantity [m]" in out


def protocol_rows(out: str) -> dict[str, list[str]]:
    """Step type -> its key rows, from the ``[[protocol]]`` table of ``fastnai schema``."""
    _, _, table = out.partition("\n\n[[protocol]] steps: ")
    assert table, "no [[protocol]] table"
    rows: dict[str, list[str]] = {}
    for line in table.splitlines()[3:]:  # heading, column titles, rule
        if line.startswith("  "):
            rows[list(rows)[-1]].append(line.strip())
        else:
            rows[line.strip()] = []
    return rows


@pytest.mark.parametrize("kind", ["drift_diffusion", "film_stress", "deposition"])
def test_schema_lists_every_protocol_step_with_its_keys_units_and_defaults(capsys, kind):
    from fastnai.models import model_module

    assert main(["schema", kind]) == 0
    out = capsys.readouterr().out
    step_keys = model_module(kind).STEP_KEYS
    rows = protocol_rows(out)
    assert list(rows) == list(step_keys)  # every step type, in declaration order
    heading = out.split("[[protocol]] steps: ", 1)[1].splitlines()[0]
    assert all(f'"{step}"' in heading for step in step_keys)
    for step, keys in step_keys.items():
        by_leaf = {row.split()[0]: row for row in rows[step]}
        assert list(by_leaf) == list(keys), step
        for leaf, key in keys.items():
            row = by_leaf[leaf]
            assert key.kind in row and key.describe_range() in row, (step, leaf)
            if key.unit:
                assert f"[{key.unit}]" in row, (step, leaf)
            if key.default is not None:
                default = f"{key.default:g}" if isinstance(key.default, float) else str(key.default)
                assert f"  {default}  " in row, (step, leaf, default)
            elif key.required:
                assert "  required  " in row, (step, leaf)


def test_schema_protocol_table_examples(capsys):
    assert main(["schema", "deposition"]) == 0
    plate = protocol_rows(capsys.readouterr().out)["plate"]
    assert any(r.startswith("current_density") and "[A m^-2]" in r and "required" in r
               for r in plate)
    assert main(["schema", "drift_diffusion"]) == 0
    gitt = protocol_rows(capsys.readouterr().out)["gitt"]
    assert any(r.startswith("n_pulses") and "  10  " in r for r in gitt)
    assert any(r.startswith("direction") and "discharge" in r for r in gitt)


def test_schema_of_a_model_without_a_protocol_prints_only_its_keys(capsys):
    assert main(["schema", "band_bending"]) == 0
    out = capsys.readouterr().out
    assert "[[protocol]]" not in out and "step / key" not in out
    assert "\n\n" not in out.strip()


def test_schema_of_unknown_kind_exits_2(capsys):
    status = main(["schema", "nope"])
    assert_clean_failure(capsys, status, "'nope'", "band_bending")


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_version_prints_the_package_version(capsys):
    import fastnai

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == fastnai.__version__


def test_validate_prints_the_table_and_writes_csv_and_netcdf(tmp_path, capsys):
    # the deposition rows (minutes of 2D phase field) and the film rows (a minute) have their own
    # slow tests; the film rows' impedance part is tested in tests/models
    models = "band_bending,drift_diffusion"
    assert main(["validate", "-o", str(tmp_path), "--models", models]) == 0
    out = capsys.readouterr().out
    assert "1.46e+20" in out
    assert "interface electron density" in out
    csv = tmp_path / "validation.csv"
    assert csv.is_file()
    header = csv.read_text().splitlines()[0]
    assert header.startswith("system,quantity,unit,paper,fastnai")
    results = sorted(tmp_path.glob("*.nc"))
    assert results
    for path in results:
        assert path.stem.startswith(read_dataset(path).attrs["model"] + "_")
    assert "apparent-D ratio" in out and "b-value" in out and "R_ct ratio" in out
    assert max(len(line) for line in out.splitlines()) <= 120


def test_validate_rejects_an_unknown_model(tmp_path, capsys):
    status = main(["validate", "-o", str(tmp_path), "--models", "band_bending,dendrites"])
    assert_clean_failure(capsys, status, "dendrites", "unknown model")


@pytest.mark.parametrize(("suffix", "magic"), [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_vector_figures(result_file, tmp_path, suffix, magic):
    figure = tmp_path / f"figure{suffix}"
    assert main(["plot", str(result_file), "-o", str(figure)]) == 0
    assert figure.read_bytes().startswith(magic)


def test_plot_refuses_an_unknown_figure_format_before_work(result_file, tmp_path, capsys):
    status = main(["plot", str(result_file), "-o", str(tmp_path / "figure.docx")])
    assert_clean_failure(capsys, status, "figure.docx", ".pdf")
    assert not (tmp_path / "figure.docx").exists()


def test_plot_writes_a_png(result_file, tmp_path, capsys):
    figure = tmp_path / "figure.png"
    assert main(["plot", str(result_file), "-o", str(figure)]) == 0
    assert figure.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {figure}" in capsys.readouterr().out


def test_plot_default_name_is_the_result_stem(result_file, tmp_path):
    local = tmp_path / "copy.nc"
    shutil.copyfile(result_file, local)
    assert main(["plot", str(local)]) == 0
    assert (tmp_path / "copy.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_of_a_missing_file_exits_2(tmp_path, capsys):
    status = main(["plot", str(tmp_path / "missing.nc"), "-o", str(tmp_path / "f.png")])
    assert_clean_failure(capsys, status, "missing.nc", "does not exist")
    assert list(tmp_path.iterdir()) == []


def console_script() -> str:
    beside = Path(sys.executable).with_name("fastnai")
    if beside.is_file():
        return str(beside)
    found = shutil.which("fastnai")
    if found is None:
        pytest.skip("the fastnai console script is not installed")
    return found


def test_console_script_runs_a_case_and_exits_2_on_bad_input(tmp_path):
    out = tmp_path / "script.nc"
    ok = subprocess.run([console_script(), "run", str(CASE), "-o", str(out), *SMALL],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stdout
    assert read_dataset(out).sizes["x"] == 300

    bad_out = tmp_path / "bad.nc"
    bad = subprocess.run([console_script(), "run", str(CASE), "-o", str(bad_out),
                          "--set", "model.temperature=0 K"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("fastnai: CaseError: model.temperature = '0 K'")
    assert "Traceback" not in bad.stderr
    assert not bad_out.exists()


def test_second_run_of_a_case_loads_every_kernel_from_the_numba_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "NUMBA_DEBUG_CACHE": "1"}
    outputs = []
    for k in (1, 2):
        proc = subprocess.run(
            [sys.executable, "-m", "fastnai", "run", str(CASE), "-o", str(tmp_path / f"{k}.nc"),
             *SMALL], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    first, second = outputs
    assert "data saved" in first  # cold cache: compiled and saved
    assert "data saved" not in second, "the second run recompiled: " + "\n".join(
        line for line in second.splitlines() if "data saved" in line)
    assert "data loaded" in second
    xr.testing.assert_identical(read_dataset(tmp_path / "1.nc").drop_attrs(deep=False),
                                read_dataset(tmp_path / "2.nc").drop_attrs(deep=False))


def test_plot_of_a_drift_diffusion_run_writes_the_voltage_and_profile_figure(tmp_path):
    case = Path(__file__).resolve().parents[1] / "cases" / "drift_diffusion_ticn_tio2_discharge.toml"
    out = tmp_path / "dis.nc"
    assert main(["run", str(case), "-o", str(out), "-q"]) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "dis.png")]) == 0
    assert (tmp_path / "dis.png").stat().st_size > 10_000


@pytest.mark.parametrize("diffusion", [False, True], ids=["quasi-static", "diffusion"])
def test_plot_of_a_film_stress_run_writes_the_stress_profile_figure(tmp_path, diffusion):
    case = Path(__file__).resolve().parents[1] / "cases" / "film_stress_bisb_graded.toml"
    out = tmp_path / "film.nc"
    if diffusion:
        raw = tomllib.loads(case.read_text())
        raw["model"]["sodiation"] = "diffusion"
        raw["protocol"] = [{"step": "constant_current", "c_rate": 2.0, "cutoff_voltage": 0.3},
                           {"step": "rest", "duration": 100.0}]
        case = tmp_path / "film_diffusion.toml"
        case.write_text(fastnai.load_case(raw).to_toml())
    assert main(["run", str(case), "-o", str(out), "-q"]) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "film.png")]) == 0
    assert (tmp_path / "film.png").stat().st_size > 10_000


def test_validate_help_lists_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert "exit statuses:" in out and "4  interrupted" in out and "--resume" in out


# ---------------------------------------------------------------------------------------------
# impedance figures: a result's eis spectra, a measured file, a fitted circuit


def randles_csv(path: Path) -> Path:
    """A measured-style CSV (instrument convention: -Im Z) of R0 + C || (R1 + Wo)."""
    f = np.logspace(-2, 5, 50)
    s = np.sqrt(2j * np.pi * f * 2.0)
    z = 0.5 + 1.0 / (2j * np.pi * f * 1e-3 + 1.0 / (10.0 + 4.0 / np.tanh(s) / s))
    lines = ["freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm"] + [f"{a:.17g},{b:.17g},{c:.17g}" for a, b, c in
                                                 zip(f, z.real, -z.imag, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plot_of_a_measured_spectrum_fits_the_randles_circuit(tmp_path, capsys):
    data = randles_csv(tmp_path / "cell.csv")
    figure = tmp_path / "cell.png"
    assert main(["plot", str(data), "--fit", "R0-p(C1,R1-Wo1)", "-o", str(figure)]) == 0
    assert figure.read_bytes()[:8] == PNG_MAGIC
    out = capsys.readouterr().out
    fitted = dict(re.findall(r"(R0|R1) = ([0-9.e+-]+)", out))
    assert float(fitted["R0"]) == pytest.approx(0.5, rel=1e-6)
    assert float(fitted["R1"]) == pytest.approx(10.0, rel=1e-6)


def test_plot_of_a_result_with_eis_steps_draws_its_spectra(tmp_path, capsys):
    case = tmp_path / "eis.toml"
    case.write_text('[model]\nkind = "drift_diffusion"\n[semiconductor]\nmaterial = "anatase-TiO2"\n'
                    '[contact]\nmaterial = "TiC"\n[mesh]\nn_nodes = 30\n[initial]\nvoltage = 1.0\n'
                    '[interface]\ndouble_layer_capacitance = 0.2\n'
                    '[[protocol]]\nstep = "eis"\npoints_per_decade = 4\n')
    result = tmp_path / "eis.nc"
    assert main(["run", str(case), "-o", str(result), "-q"]) == 0
    figure = tmp_path / "eis.svg"
    assert main(["plot", str(result), "--impedance", "-o", str(figure)]) == 0
    assert b"<svg" in figure.read_bytes()[:500]


@pytest.mark.parametrize("args, expected", [
    (["--fit", "R0-p(C1,R1)"], "--guess"),
    (["--fit", "R0-p(C1,R1)", "--guess", "1,x"], "comma-separated"),
])
def test_plot_fit_input_errors_exit_2(tmp_path, capsys, args, expected):
    data = randles_csv(tmp_path / "cell.csv")
    status = main(["plot", str(data), *args, "-o", str(tmp_path / "f.png")])
    assert_clean_failure(capsys, status, expected)
    assert not (tmp_path / "f.png").exists()


def test_plot_of_a_measured_file_with_misnamed_columns_names_them(tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text("frequency_in_hz,real,imag\n1,2,3\n10,2,1\n")
    status = main(["plot", str(data), "-o", str(tmp_path / "f.png")])
    assert_clean_failure(capsys, status, "frequency_in_hz")
