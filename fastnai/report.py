"""The validation report: ``report.html``, one self-contained file with the figures embedded.

Built from what ``fastnai validate`` leaves in its output folder (:mod:`fastnai.validation`):
each model group's record (``MODEL.group.json``: its rows) and result files (``NAME.nc``). Per
group, the seed papers it tests (the DOIs its rows cite), the rows with their basis and whole
notes, the model's versions of the papers' own figures (:mod:`fastnai.report_figures`:
Randles-Sevcik, the rate table, Nyquist, graded vs solid-solution stress, voltage transients,
Arrhenius), and the standard figure of every result (:func:`fastnai.plot.plot_result`: band diagrams,
CV families with their profiles, GITT and discharge curves, stress profiles, deposition
transients with the deposit's morphology, Nyquist and Bode plots of impedance spectra). A figure
that cannot be drawn is named with the reason instead. The page reports, in its title, how many
figures the browser rendered (a script checks every image once the page has loaded), which is
what the headless-browser test reads.
"""

from __future__ import annotations

import base64
import html
import json
import re
import tempfile
from pathlib import Path

from .io import atomic_write_text, read_dataset

_TITLES = {"band_bending": "Band bending at the TiCxN1-x / N-TiO2 junction (Poisson-Fermi)",
           "drift_diffusion": "Na+ and electron drift-diffusion: CV, rate, GITT",
           "film_stress": "Stress in graded Bi(x)Sb(1-x) films on Cu",
           "deposition": "Na deposition on bare Na and Na/VN (phase field)"}

_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
figure { display: inline-block; vertical-align: top; margin: 0.5%; width: 48%; }
figure img { width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; }
.missing { color: #a00; font-size: 0.85em; }
figure.paper { width: 98%; }
"""

# Sets the page title to the count of images the browser decoded (naturalWidth > 0) and of those
# it could not; the headless-browser test reads it.
_CHECK = """
window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img"), ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.title = "fastnai validation: " + ok + " of " + imgs.length + " figures rendered";
});
"""


def _figures(path: Path) -> list[tuple[str | None, str]]:
    """``(data URI of the PNG, "")`` of each figure of a result file (its standard figure, and
    the Nyquist/Bode plots of its impedance spectra when the standard one does not show them),
    or ``[(None, why)]``."""
    from .plot import plot_result
    from .plot_impedance import impedance_figure

    out = []
    try:
        ds = read_dataset(path)
        with tempfile.TemporaryDirectory() as tmp:
            standard = plot_result(ds, Path(tmp) / "figure.png")
            out.append(standard.read_bytes())
            if "impedance_real" in ds and "t" in ds and float(
                    ds.t.values.max() - ds.t.values.min()) > 0.0:
                out.append(impedance_figure(ds, Path(tmp) / "impedance.png").read_bytes())
    except Exception as err:  # noqa: BLE001 - a report names what it could not draw
        return [(None, f"{type(err).__name__}: {err}")]
    return [("data:image/png;base64," + base64.b64encode(png).decode("ascii"), "") for png in out]


def _paper_figures(output_dir: Path, model: str) -> list[str]:
    """The model's versions of the papers' own figures (:mod:`fastnai.report_figures`)."""
    from .report_figures import paper_figures

    parts = []
    for caption, png, why in paper_figures(output_dir, model):
        if png is None:
            parts.append(f"<p class='missing'>{html.escape(caption)}: no figure "
                         f"({html.escape(why)})</p>")
            continue
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        parts.append(f"<figure class='paper'><img alt='{html.escape(caption[:80])}' "
                     f"src='{uri}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    return parts


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _rows_table(rows: list[dict]) -> str:
    from .validation import Row

    head = ("system", "quantity", "unit", "paper", "fastnai", "vs paper", "basis", "note")
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for raw in rows:
        r = Row(**raw)
        cells = [html.escape(r.system), html.escape(r.quantity), html.escape(r.unit),
                 _number(r.paper), _number(r.fastnai), html.escape(r.comparison),
                 html.escape(r.basis), html.escape(r.note)]
        out.append("<tr>" + "".join(f'<td class="num">{c}</td>' if k in (3, 4, 5) else f"<td>{c}</td>"
                                    for k, c in enumerate(cells)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def write_report(output_dir: Path, models) -> Path:
    """Write ``output_dir/report.html`` from the group records and result files of ``models``
    (the groups without a record are listed as not run); returns its path."""
    output_dir = Path(output_dir)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>fastnai validation</title>"
             f"<style>{_STYLE}</style><script>{_CHECK}</script></head><body>",
             "<h1>fastnai validation report</h1>",
             "<p>Each seed paper's numbers beside fastnai's, with the basis of each: "
             "<b>computed</b> (the solver's result), <b>closed form</b> (a formula evaluated "
             "exactly), <b>calibrated</b> (a parameter chosen to reproduce a measured number; "
             "the row then shows that number, not a prediction). 'vs paper': the ratio of two "
             "magnitudes of the same sign, the difference of two percentages in percentage "
             "points, — where nothing compares.</p>"]
    for model in models:
        parts.append(f"<h2>{html.escape(_TITLES.get(model, model))}</h2>")
        try:
            record = json.loads((output_dir / f"{model}.group.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            parts.append("<p class='missing'>not run in this folder</p>")
            continue
        dois = sorted(set(re.findall(r"doi:\S+?(?=[;,)\s]|$)",
                                     " ".join(r["note"] + " " + r["basis"] for r in record["rows"]))))
        if dois:
            parts.append("<p>Seed papers: " + ", ".join(html.escape(d) for d in dois) + "</p>")
        parts.append(_rows_table(record["rows"]))
        parts += _paper_figures(output_dir, model)
        for name in record.get("datasets", []):
            for uri, why in _figures(output_dir / f"{name}.nc"):
                if uri is None:
                    parts.append(f"<p class='missing'>{html.escape(name)}: no figure "
                                 f"({html.escape(why)})</p>")
                    continue
                parts.append(f"<figure><img alt='{html.escape(name)}' src='{uri}'>"
                             f"<figcaption>{html.escape(name)}.nc</figcaption></figure>")
    parts.append("</body></html>")
    path = output_dir / "report.html"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
