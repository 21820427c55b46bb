"""Exception types raised by fastnai; the command line maps them to exit statuses."""

from __future__ import annotations


class FastnaiError(Exception):
    """Base class of every error fastnai raises on purpose."""

    exit_status = 1


class CaseError(FastnaiError, ValueError):
    """A case (file, dict or ``--set`` override) is malformed.

    The message names the key, the value given and what was expected. Raised
    before any work starts and before any file is written.
    """

    exit_status = 2


class ConvergenceError(FastnaiError, RuntimeError):
    """A nonlinear solve did not converge.

    Parameters
    ----------
    message
        What failed.
    history
        One row per Newton iteration: ``(update_norm, residual_norm)``.
    """

    exit_status = 3

    def __init__(self, message: str, history: list[tuple[float, float]] | None = None):
        self.history = list(history or [])
        if self.history:
            rows = "\n".join(
                f"  {k:3d}  |dpsi|/Vt = {du:10.3e}   |F| = {fr:10.3e}"
                for k, (du, fr) in enumerate(self.history)
            )
            message = f"{message}\nNewton history:\n{rows}"
        super().__init__(message)
