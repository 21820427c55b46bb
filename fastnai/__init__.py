"""fastnai: compiled simulator of sodium-ion electrode interface physics.

>>> import fastnai
>>> sorted(fastnai.__all__)
['CaseError', 'ConvergenceError', '__version__', 'load_case', 'run', 'sweep']
"""

from ._version import version as __version__
from .api import load_case, run, sweep
from .errors import CaseError, ConvergenceError

__all__ = ["run", "sweep", "load_case", "CaseError", "ConvergenceError", "__version__"]
