"""Command line: parse arguments, call the API, map fastnai errors to exit statuses.

Exit statuses: 0 success; 2 bad input or an unusable output/checkpoint path, found before any
work (CaseError, OutputError, bad usage); 3 no convergence; 4 interrupted (SIGTERM or SIGINT)
with a checkpoint written (``run``) or the finished points saved (``sweep``); 1 other fastnai
errors (a write that failed, e.g. disk full; for ``sweep``, points that failed with them).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import textwrap
from pathlib import Path

from .errors import CaseError, FastnaiError
from .resources import THREADS_DEFAULT

FIGURE_FORMATS = (".png", ".pdf", ".svg", ".eps")

EXIT_STATUSES = """exit statuses:
  0  success
  1  other errors (a write failed, e.g. disk full)
  2  bad input or an unusable output/checkpoint path (found before any work)
  3  no convergence
  4  interrupted by SIGTERM/SIGINT: a checkpoint was written; --resume continues it
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnai",
        description="Compiled simulator of sodium-ion electrode interface physics.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a case file and write its netCDF result",
                         epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("case", help="case file (TOML)")
    run.add_argument("-o", "--output", help="output netCDF file (default: CASE stem + .nc)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a case key, e.g. --set semiconductor.donor_density='1e19 cm^-3'")
    run.add_argument("--threads", type=int, metavar="N",
                     help=f"Numba threads, at most the default ({THREADS_DEFAULT})")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no progress lines and no summary")
    run.add_argument("--checkpoint-every", type=_seconds, default=600.0, metavar="SECONDS",
                     help="write a checkpoint every SECONDS of wall time over the whole run "
                          "(time-dependent models; default %(default)s); SIGTERM or SIGINT "
                          "always writes one and exits with status 4")
    run.add_argument("--checkpoint", metavar="FILE",
                     help="checkpoint file (default: OUTPUT stem + .ckpt.npz)")
    run.add_argument("--resume", action="store_true",
                     help="continue from the checkpoint; ends at the uninterrupted run's state")
    run.add_argument("--keep-checkpoint", action="store_true",
                     help="keep the checkpoint after the output is written (removed by default)")

    val = sub.add_parser("validate",
                         help="run the validation cases and print the paper-vs-fastnai table",
                         epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    val.add_argument("--full", action="store_true", help="add the long cases")
    val.add_argument("-o", "--output-dir", default="results/validation",
                     help="folder for the result files and the table (default: %(default)s)")
    val.add_argument("--resume", action="store_true",
                     help="reuse the groups (models) a previous run in the same folder finished, "
                          "when fastnai and their case files are unchanged")
    val.add_argument("--threads", type=int, metavar="N",
                     help=f"Numba threads, at most the default ({THREADS_DEFAULT})")
    val.add_argument("--models", metavar="M1,M2",
                     help="comma-separated subset of band_bending, drift_diffusion, film_stress, "
                          "deposition (default: all)")

    plot = sub.add_parser("plot", help="plot a result file (its model's figure), or the impedance "
                                       "spectra of a result or of a measured file")
    plot.add_argument("result", help="netCDF result of `fastnai run`, or a measured impedance "
                                     "spectrum (EC-Lab .mpt, .csv, .txt)")
    plot.add_argument("-o", "--output",
                      help="figure file, .png or vector .pdf/.svg/.eps (default: RESULT stem + .png)")
    plot.add_argument("--impedance", action="store_true",
                      help="Nyquist and Bode plots of the result's eis spectra (implied for a "
                           "measured spectrum)")
    plot.add_argument("--fit", metavar="CIRCUIT",
                      help="fit an equivalent circuit (impedance.py notation, e.g. "
                           "'R0-p(C1,R1-Wo1)') to each spectrum and draw it over the data; "
                           "the fitted values and standard errors are printed")
    plot.add_argument("--guess", metavar="V1,V2,...",
                      help="initial values of the circuit's parameters (default for the Randles "
                           "circuit R0-p(C1,R1-Wo1): read off the spectrum)")

    sub.add_parser("materials", help="list the material database with sources")

    from .sweeps import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    sch = sub.add_parser("schema", help="list every key of a model (and the keys of each of its "
                                        "[[protocol]] steps): unit, default, range, source")
    sch.add_argument("kind", help="model kind, e.g. band_bending")
    return parser


def _seconds(text: str) -> float:
    """``--checkpoint-every``: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number of seconds >= 0")
    return value


def _log_to_stderr(quiet: bool) -> None:
    """Progress lines of the ``fastnai`` logger on stderr (what batch logs keep)."""
    logger = logging.getLogger("fastnai")
    if quiet or any(getattr(h, "_fastnai_cli", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s fastnai: %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler._fastnai_cli = True
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _cmd_run(args) -> int:
    from . import api
    from .resources import numba_threads
    from .variables import summary_line

    output = Path(args.output) if args.output else Path(Path(args.case).stem + ".nc")
    _log_to_stderr(args.quiet)
    with numba_threads(args.threads):  # --threads, else the documented default, not inherited
        ds = api.run(args.case, args.overrides, output=output, checkpoint=args.checkpoint,
                     checkpoint_every=args.checkpoint_every, resume=args.resume,
                     keep_checkpoint=args.keep_checkpoint, progress=False if args.quiet else None)
    if not args.quiet:
        print(f"{ds.attrs['model']}: wrote {output} ({ds.attrs['wall_time_s']:.3g} s)")
        print(f"  result: {summary_line(ds)}")
        for name, var in ds.data_vars.items():
            if var.ndim == 0:
                print(f"  {name:40s} {float(var):12.5g} {var.attrs.get('units', '')}")
    return 0


def _cmd_validate(args) -> int:
    import time

    from .resources import numba_threads
    from .validation import format_row, run_validation, table_header

    models = None
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    _log_to_stderr(False)
    shown = {"system": None, "rows": 0}

    def show(row) -> None:  # each row as soon as it is computed (stdout, flushed)
        lines = table_header() if shown["system"] is None else []
        if row.system != shown["system"]:
            lines += ["", row.system]
            shown["system"] = row.system
        lines += format_row(row)
        shown["rows"] += 1
        print("\n".join(lines), flush=True)

    start = time.perf_counter()
    with numba_threads(args.threads):
        run_validation(full=args.full, output_dir=Path(args.output_dir), models=models,
                       resume=args.resume, on_row=show)
    # the table alone on stdout (120 columns); where the files went, on stderr with the log
    print(f"validate: {shown['rows']} rows in {time.perf_counter() - start:.0f} s; whole notes "
          f"in {Path(args.output_dir) / 'validation.txt'} and validation.csv, figures in "
          f"{Path(args.output_dir) / 'report.html'}", file=sys.stderr)
    return 0


def _cmd_plot(args) -> int:
    path = Path(args.result)
    if not path.is_file():
        raise CaseError(f"result file {str(path)!r} does not exist")
    out = Path(args.output) if args.output else path.with_suffix(".png")
    if out.suffix.lower() not in FIGURE_FORMATS:
        raise CaseError(f"figure {str(out)!r}: expected one of {', '.join(FIGURE_FORMATS)} "
                        "(PNG, or vector PDF / SVG / EPS)")
    guess = _parse_guess(args.guess)
    if path.suffix.lower() in MEASURED_SPECTRA or args.impedance or args.fit:
        from .plot_impedance import plot_spectra

        for line in plot_spectra(path, out, circuit=args.fit, guess=guess):
            print(line)
    else:
        from .io import read_dataset
        from .plot import plot_result

        plot_result(read_dataset(path), out)
    print(f"wrote {out}")
    return 0


#: Suffixes `fastnai plot` reads as measured impedance spectra (fastnai.spectra.read_spectrum).
MEASURED_SPECTRA = (".mpt", ".csv", ".txt")


def _parse_guess(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise CaseError(f"--guess {text!r}: expected comma-separated numbers") from None


def _cmd_materials(args) -> int:
    from .materials import materials_table

    print(materials_table())
    return 0


def _cmd_schema(args) -> int:
    from .models import MODEL_KINDS, model_module
    from .schema import schema_table, table_array_table

    if args.kind not in MODEL_KINDS:
        raise CaseError(f"schema {args.kind!r}: expected one of {', '.join(MODEL_KINDS)}")
    module = model_module(args.kind)
    print(schema_table(module.KEYS))
    # arrays of tables ([[protocol]]): every step type and its keys, as the case loader reads them
    for name, kinds in getattr(module, "TABLE_ARRAYS", {}).items():
        print()
        print(table_array_table(name, kinds))
    return 0


def _cmd_sweep(args) -> int:
    from .sweeps import cli_main

    return cli_main(args)


_COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "validate": _cmd_validate, "plot": _cmd_plot,
             "materials": _cmd_materials, "schema": _cmd_schema}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastnai`` script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from ._version import version

        print(version)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except FastnaiError as exc:
        kind = type(exc).__name__
        text = str(exc)
        first, _, rest = text.partition("\n")
        print(textwrap.fill(f"fastnai: {kind}: {first}", width=100), file=sys.stderr)
        if rest:
            print(rest, file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("fastnai: interrupted", file=sys.stderr)
        return 130
