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
    """A nonlinear solve or a time integration did not converge.

    Parameters
    ----------
    message
        What failed.
    history
        One row per iteration or failed attempt: ``(update_norm, residual_norm)`` for a Newton
        solve (the default ``columns``); the time integrator passes
        ``(t, dt, error, newton_iterations)`` rows with their own ``columns``.
    columns
        Names of the columns of ``history``, for the message.
    """

    exit_status = 3

    def __init__(self, message: str, history: list[tuple] | None = None,
                 columns: tuple[str, ...] = ("|dpsi|/Vt", "|F|")):
        self.history = list(history or [])
        if self.history:
            header = "  ".join(f"{c:>12s}" for c in columns)
            rows = "\n".join(f"  {k:4d}  " + "  ".join(f"{v:12.4e}" for v in row)
                             for k, row in enumerate(self.history))
            label = "Newton history" if columns == ("|dpsi|/Vt", "|F|") else "history"
            message = f"{message}\n{label}:\n        {header}\n{rows}"
        super().__init__(message)


class Interrupted(FastnaiError):
    """The run stopped on SIGTERM after writing a checkpoint (if it had a checkpointer).

    Parameters
    ----------
    message
        What happened.
    checkpoint_path
        The checkpoint written, or None when the run had no checkpointer.
    t
        Time of the last accepted step [s].
    """

    exit_status = 4

    def __init__(self, message: str, checkpoint_path=None, t: float = float("nan")):
        super().__init__(message)
        self.checkpoint_path = checkpoint_path
        self.t = t


class OutputError(FastnaiError):
    """An output or checkpoint path cannot be written (found before any work starts).

    The message names the path, what it is for and why it cannot be used (a directory, not a
    regular file, an unwritable folder, the input case itself, a name too long).
    """

    exit_status = 2


class WriteError(FastnaiError):
    """Writing a result or checkpoint failed while the run was writing it (disk full, I/O error).

    The file being replaced is left as it was; the temporary file is removed.
    """

    exit_status = 1
