"""fastnai: compiled simulator of sodium-ion electrode interface physics.

>>> import fastnai
>>> sorted(fastnai.__all__)
['CaseError', 'ConvergenceError', '__version__', 'load_case', 'run', 'sweep']
"""

import os

# Numba's OpenMP workers otherwise spin between parallel loops; on a 2-core machine whose cores
# are shared (CI runners, cloud VMs) the spinning thread takes the time the main thread needs:
# the CI-sized deposition run took 22-25 s on 2 threads against 8-16 s on 1, and 8.6-15.8 s on
# 2 threads with passive waiting (measured 2026-12-07). A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import version as __version__  # noqa: E402
from .api import load_case, run, sweep  # noqa: E402
from .errors import CaseError, ConvergenceError  # noqa: E402

__all__ = ["run", "sweep", "load_case", "CaseError", "ConvergenceError", "__version__"]
