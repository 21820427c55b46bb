"""fastnai: compiled simulator of sodium-ion electrode interface physics.

>>> import fastnai
>>> sorted(fastnai.__all__)
['CaseError', 'ConvergenceError', '__version__', 'load_case', 'run', 'sweep']
"""

from ._version import version as __version__
from .api import load_case, run
from .errors import CaseError, ConvergenceError

# the function: ``fastnai.sweep(case, vary, ...)`` beside ``fastnai.run``; the package
# (plan, merge, ensemble statistics, plots) is ``importlib.import_module("fastnai.sweep")``
# or ``from fastnai.sweep import merge``
from .sweep import sweep

__all__ = ["run", "sweep", "load_case", "CaseError", "ConvergenceError", "__version__"]
