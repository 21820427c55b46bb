"""Start-up costs, each in a fresh interpreter (``timeraw_``): imports and Numba compilation.

``TimeFirstRun`` times the first ``band_bending.run`` of the seed case in a new process, with
an empty ``NUMBA_CACHE_DIR`` (everything compiles: the cold start of a fresh install) and with
a cache that ``setup_cache`` filled (every later start: SPEC 5, a second run of a case must not
recompile). Imports and case loading are in the untimed set-up of those samples, so the
difference is compilation alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .models import seed_case_path

_COLD_ENV = """
import os, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastnai-asv-cold-")
"""

_WARM_ENV = """
import os
os.environ["NUMBA_CACHE_DIR"] = {cache_dir!r}
"""

_LOAD = """
from fastnai.case import load_case
from fastnai.models import band_bending
case = load_case({path!r})
"""

_RUN = "band_bending.run(case)"


def timeraw_import_fastnai():
    """``import fastnai`` (the public API; xarray and pandas dominate)."""
    return "import fastnai", _COLD_ENV


def timeraw_import_band_bending():
    """Importing the model: Numba, scipy and the Fermi-Dirac Chebyshev tables."""
    return "from fastnai.models import band_bending", _COLD_ENV + "import fastnai\n"


timeraw_import_fastnai.repeat = timeraw_import_band_bending.repeat = (3, 5, 30.0)


class TimeFirstRun:
    """First ``band_bending.run`` of the seed case in a new process: cold and warm cache."""

    timeout = 900
    warmup_time = 0.0
    repeat = (1, 3, 60.0)  # a cold sample compiles every kernel: seconds to minutes
    number = 1

    def setup_cache(self):
        # asv runs setup_cache in a temporary directory that lives as long as the benchmarks
        cache_dir = os.path.abspath("numba-cache-warm")
        os.makedirs(cache_dir, exist_ok=True)
        code = _WARM_ENV.format(cache_dir=cache_dir) + _LOAD.format(path=str(seed_case_path())) + _RUN
        subprocess.run([sys.executable, "-c", code], check=True)
        return cache_dir

    def timeraw_first_run_cold(self, cache_dir):
        return _RUN, _COLD_ENV + _LOAD.format(path=str(seed_case_path()))

    def timeraw_first_run_warm(self, cache_dir):
        return _RUN, _WARM_ENV.format(cache_dir=cache_dir) + _LOAD.format(path=str(seed_case_path()))
