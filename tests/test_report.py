"""The validation report (fastnai.report): one self-contained HTML file, opened in a real
headless browser (Chromium from the Debian packages; ``.ci/run`` installs it) to check that every
figure renders. Without Chromium the browser test is skipped and says how to get it."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict

import pytest

import fastnai
from fastnai import validation
from fastnai.io import write_dataset
from fastnai.report import write_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def _folder(tmp_path):
    """A validate folder with one band-bending group: two rows and one result file."""
    ds = fastnai.run(validation.cases_dir() / "band_bending_ticn_tio2.toml")
    write_dataset(ds, tmp_path / "band_bending_ticn_tio2.nc")
    rows = [validation.Row("TiC/N-TiO2 (planar)", "interface field", "V cm-1", 1.03e7, 2.16e6,
                           "computed", f"a note; {validation.CAI}"),
            validation.Row("TiC/N-TiO2 (planar)", "band bending", "eV", None, 0.98, "computed")]
    record = {"format": validation.GROUP_FORMAT, "model": "band_bending", "key": {},
              "rows": [asdict(r) for r in rows], "datasets": ["band_bending_ticn_tio2"]}
    (tmp_path / "band_bending.group.json").write_text(json.dumps(record))
    return tmp_path


def _rendered_title(path):
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return out.split("<title>", 1)[1].split("</title>", 1)[0]


def test_report_is_one_file_with_rows_papers_and_embedded_figures(tmp_path):
    path = write_report(_folder(tmp_path), ["band_bending", "deposition"])
    text = path.read_text(encoding="utf-8")
    assert text.count("<img ") == 1 and "src='data:image/png;base64," in text
    assert "doi:10.1002/smll.202200694" in text
    assert "interface field" in text and "0.21×" in text and "—" in text
    assert "not run in this folder" in text  # the deposition group has no record here
    assert "http" not in text.replace("https://doi", "")  # nothing fetched from elsewhere


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                                             "chromium; .ci/run does): no browser to render in")
def test_every_figure_renders_in_a_headless_browser(tmp_path):
    path = write_report(_folder(tmp_path), ["band_bending"])
    assert _rendered_title(path) == "fastnai validation: 1 of 1 figures rendered"
    # the check has teeth: an image the browser cannot decode is counted as not rendered
    broken = path.read_text(encoding="utf-8").replace(
        "</body>", "<img alt='broken' src='data:image/png;base64,AAAA'></body>")
    path.write_text(broken, encoding="utf-8")
    assert _rendered_title(path) == "fastnai validation: 1 of 2 figures rendered"
