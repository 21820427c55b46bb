"""Shared implicit time integrator: variable-step BDF2, error control, events, checkpoints.

Every time-dependent model (drift-diffusion, film stress, deposition) advances its state with
:func:`integrate`. The engine is model-agnostic: it chooses step sizes, forms the BDF
combination of past states, estimates the local error, locates events and hands its state to
checkpoints. The model solves each implicit stage itself (Newton in Numba)
through the :class:`ImplicitProblem` protocol.

Implicit-equation convention
----------------------------
For a model ``M dy/dt = f(t, y)`` (``M`` a constant, possibly singular, mass matrix that the model
applies itself; rows with ``M = 0`` are algebraic, e.g. Poisson) each step from ``t_n`` to
``t_new = t_n + dt`` asks the model to solve, for ``y``,

    M (alpha0 * y + history) = dt * f(t_new, y)                                          (1)

with the scalars and vector the engine passes to ``solve_step(y_guess, alpha0, history, t_new,
dt)``:

- BDF1 (implicit Euler): ``alpha0 = 1``, ``history = -y_n``.
- Variable-step BDF2, with ``omega = dt / (t_n - t_(n-1))``:
  ``alpha0 = (1 + 2 omega)/(1 + omega)``, ``history = alpha1 y_n + alpha2 y_(n-1)``,
  ``alpha1 = -(1 + omega)``, ``alpha2 = omega^2/(1 + omega)``; ``alpha0 + alpha1 + alpha2 = 0``.

``(alpha0 y + history)/dt`` is the BDF approximation of dy/dt at ``t_new``, so algebraic rows
simply read ``0 = f_i(t_new, y)`` (scale them as the model likes). Codes written for the
"gamma" form ``y - gamma dt f(y) = psi`` (ODEs, ``M = I``) use ``gamma = 1/alpha0`` and
``psi = -history/alpha0``. ``y_guess`` is the engine's predictor (a copy: the model may
overwrite it). ``solve_step`` returns ``(y, converged, newton_iterations)`` and must be a pure
function of its arguments and of the state the model saves in its checkpoint dict, otherwise a
resumed run cannot be bitwise identical.

Step-size control
-----------------
The first step, and the first step of every call (a restart after an event or a protocol
change), is BDF1 by step doubling: one step of ``dt`` and two of ``dt/2``; the two half steps
are accepted and ``y_full - y_half`` estimates their local error (implicit Euler's error is
``C dt^2``: ``2 C (dt/2)^2`` for the halves, ``C dt^2`` for the full step). Afterwards every
step is BDF2 and its local error is estimated from the difference between the corrector ``y``
and the quadratic extrapolation ``p`` through the last three states (Milne's device). With
``h = dt``, ``h1``, ``h2`` the present and two previous steps and exact past values, Taylor
expansion gives

    y - y(t_new) = h^2 (h + h1)^2 / (6 (2h + h1)) y''',
    p - y(t_new) = -h (h + h1)(h + h1 + h2) / 6 y''',
    error = A/(A + B) (y - p),   A = h (h + h1)/(2h + h1),   B = h + h1 + h2,

which is ``(2/11)(y - p)`` for constant steps. (``method="bdf1"`` uses the linear
extrapolation through two states and ``error = h/(2h + h1) (y - p)``.) The error is measured
in the weighted RMS norm ``sqrt(mean((error/w)^2))`` with ``w = problem.error_weights(y, rtol)``
(the model returns ``atol_family + rtol*|y|`` per variable family) and the step is accepted
when the norm is at most 1. The next step is ``dt * clip(safety * err^(-0.7/k) * err_prev^(0.4/k),
min_factor, max_factor)`` (a PI controller, ``k = order + 1``; elementary ``safety err^(-1/k)``
for the first step and after a rejection, no growth right after a rejection), capped by
``max_step`` and, for BDF2, by the step ratio ``max_step_ratio = 2.4 < 1 + sqrt(2)`` above
which variable-step BDF2 loses zero-stability. A rejected step is retried with
``clip(safety err^(-1/k), min_factor, 0.9) dt``; a step whose Newton fails (or returns
non-finite values) is retried with ``dt/2``. After ``max_rejections`` consecutive rejections
:class:`~fastnai.errors.ConvergenceError` is raised with ``history`` = rows
``(t, dt, err, newton_iterations)`` of the failed attempts (``err = inf`` where Newton failed).

The control is per step, as in DASSL and CVODE: the global error is roughly the number of steps
times the local tolerance, so it falls about as ``rtol^(2/3)`` for BDF2 and is typically 10 to
100 times ``rtol`` (the PI controller settles at ``err = safety^(k/0.3)``, 0.35 for BDF2);
choose ``rtol`` accordingly.

Conservation: the integrator's own quadrature
---------------------------------------------
Let ``Q(y) = w^T M y`` be an inventory whose rate is ``w^T f(t, y) = I(t, y)`` (cell volumes
times concentrations, and the boundary flux). Multiplying (1) by ``w^T`` and using
``alpha1 = -(alpha0 + alpha2)``,

    alpha0_n (Q_n - Q_(n-1)) - alpha2_n (Q_(n-1) - Q_(n-2)) = dt_n I_n,

so the increments obey ``dQ_n = (dt_n I_n + alpha2_n dQ_(n-1)) / alpha0_n`` (``alpha2 = 0``,
``alpha0 = 1`` on BDF1 steps, which cuts the chain) and exactly

    Q_N - Q_0 = sum_n w_n I_n,   w_n = dt_n/alpha0_n * P_n,   P_N = 1,
                                 P_n = 1 + (alpha2_(n+1)/alpha0_(n+1)) P_(n+1).

For constant steps ``w_n = dt (1 - 3^-(N-n+1))``: interior weights are ``dt`` but the last ones
are ``2/3 dt, 8/9 dt, ...`` (BDF2's lag), so the rectangle rule ``sum dt_n I_n`` does not
balance the discrete inventory; :meth:`Trajectory.integrate_series` applies the recursion and
:meth:`Trajectory.quadrature_weights` returns ``w_n``. Both are exact for every step sequence,
events and restarts included, to rounding and the model's Newton tolerance.

Events and checkpoints
----------------------
An event fires when a component of ``problem.event_functions(t, y)`` changes sign within an
accepted step; the step is re-solved with shorter ``dt`` (Illinois regula falsi on the step
length) until the crossing is bracketed within ``event_tolerance``; integration stops at the
right end of the bracket (where the sign has changed) and :attr:`Trajectory.event` says which
components fired. The model restarts by calling :func:`integrate` again.

A :class:`Checkpointer` writes, atomically, everything the continuation depends on: ``t``, the
last three states and their times (BDF history and step sizes), the controller state (next
``dt``, previous error), the step counters, the event signs, the step records of the
trajectory (and the stored states) and the model's own dict (``problem.checkpoint_state()``:
protocol position, RNG counters). ``integrate(..., resume_from=path)`` continues from it and
performs the same floating-point operations in the same order as an uninterrupted run, so it
ends at the bitwise-identical state. Signals are not the integrator's business: a protocol
run passes ``step_hook``, through which :mod:`fastnai.runner` takes the engine state into its
own checkpoints and stops the run on SIGTERM (:mod:`fastnai.lifecycle`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .errors import ConvergenceError, FastnaiError

__all__ = [
    "Checkpointer",
    "ControllerState",
    "EventRecord",
    "ImplicitProblem",
    "StepControl",
    "StepStats",
    "Trajectory",
    "integrate",
    "read_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "fastnai.transient/1"
_MODEL_PREFIX = "model__"


@runtime_checkable
class ImplicitProblem(Protocol):
    """What a model implements to be advanced by :func:`integrate`.

    Required: ``n_unknowns``, ``solve_step`` and ``error_weights``. Optional, looked up with
    ``getattr``: ``event_functions(t, y) -> ndarray`` (an event fires when a component changes
    sign), ``on_accept(t, y)`` (called once per accepted step, after event location, e.g. to
    record outputs sparsely; not called for the initial state), ``checkpoint_state() -> dict``
    and ``restore_state(state)`` (the model's opaque part of a checkpoint: numbers, strings or
    numeric arrays; they come back as numpy arrays, 0-d ones as numpy scalars).
    """

    n_unknowns: int

    def solve_step(self, y_guess: np.ndarray, alpha0: float, history: np.ndarray, t_new: float,
                   dt: float) -> tuple[np.ndarray, bool, int]:
        """Solve ``M (alpha0 y + history) = dt f(t_new, y)`` for ``y``.

        Parameters
        ----------
        y_guess
            Predictor, a copy the model may overwrite.
        alpha0
            BDF coefficient of the new state [1].
        history
            BDF combination of the past states, in the units of ``y``.
        t_new
            Time at the end of the step [s].
        dt
            Step size [s].

        Returns
        -------
        tuple
            ``(y, converged, newton_iterations)``.
        """
        ...

    def error_weights(self, y: np.ndarray, rtol: float) -> np.ndarray:
        """Per-unknown error scale, typically ``atol_family + rtol*|y|``, in the units of ``y``."""
        ...


@dataclass(frozen=True)
class StepControl:
    """Step-size controller parameters.

    Parameters
    ----------
    safety
        Safety factor on the optimal step [1].
    min_factor, max_factor
        Limits of the step-size change per step [1].
    max_step_ratio
        Largest ratio of consecutive BDF2 steps; must stay below 1 + sqrt(2) for
        zero-stability [1].
    pi_integral, pi_proportional
        PI exponents times the error order k: ``err^(-pi_integral/k) err_prev^(pi_proportional/k)`` [1].
    max_rejections
        Consecutive rejected attempts (error or Newton failure) before ConvergenceError.
    """

    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 5.0
    max_step_ratio: float = 2.4
    pi_integral: float = 0.7
    pi_proportional: float = 0.4
    max_rejections: int = 20


@dataclass
class StepStats:
    """Counters of one integration (restored from a checkpoint on resume).

    Attributes
    ----------
    n_steps
        Accepted steps.
    n_rejected_error
        Attempts rejected because the local error exceeded the tolerance.
    n_rejected_newton
        Attempts rejected because the model's Newton did not converge.
    n_solves
        Calls of ``solve_step`` (attempts, step-doubling solves and event re-solves).
    n_newton_iterations
        Newton iterations summed over all solves.
    n_event_solves
        Re-solves spent locating events.
    """

    n_steps: int = 0
    n_rejected_error: int = 0
    n_rejected_newton: int = 0
    n_solves: int = 0
    n_newton_iterations: int = 0
    n_event_solves: int = 0

    def as_attrs(self, prefix: str = "solver_") -> dict[str, int]:
        """Counters as Dataset attributes: ``{"solver_n_steps": ..., ...}``."""
        return {prefix + k: int(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ControllerState:
    """Step-size controller state at the end of a run.

    Attributes
    ----------
    dt_next
        Step the controller proposes next [s].
    error_previous
        Weighted local error of the last accepted step (NaN if none) [1].
    """

    dt_next: float
    error_previous: float


@dataclass(frozen=True)
class EventRecord:
    """The event that stopped the integration.

    Attributes
    ----------
    indices
        Components of ``event_functions`` that changed sign in the last step.
    t
        Time the integration stopped at, within ``event_tolerance`` after the crossing [s].
    """

    indices: tuple[int, ...]
    t: float


@dataclass
class Trajectory:
    """Accepted steps of one :func:`integrate` call.

    Attributes
    ----------
    t
        Accepted times including the initial one, shape (n_steps + 1,) [s].
    y
        States at ``t``, shape (n_steps + 1, n_unknowns), or None if not stored.
    y_final
        Last state.
    dt
        Step sizes, shape (n_steps,) [s].
    order
        BDF order of each step (1 or 2).
    alpha0, alpha2
        BDF coefficients of each step (``alpha1 = -alpha0 - alpha2``) [1].
    error
        Weighted local-error estimate of each step (NaN where none was formed) [1].
    newton_iterations
        Newton iterations of each accepted solve.
    stats
        Counters.
    status
        ``"finished"`` (reached ``t_end``) or ``"event"``.
    event
        The event that stopped the run, or None.
    controller
        Final controller state.
    """

    t: np.ndarray
    y: np.ndarray | None
    y_final: np.ndarray
    dt: np.ndarray
    order: np.ndarray
    alpha0: np.ndarray
    alpha2: np.ndarray
    error: np.ndarray
    newton_iterations: np.ndarray
    stats: StepStats
    status: str
    event: EventRecord | None
    controller: ControllerState

    @property
    def t_final(self) -> float:
        """Time of the last accepted step [s]."""
        return float(self.t[-1])

    def _step_values(self, values: Any) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        n = self.dt.size
        if v.shape[:1] == (n + 1,):
            return v[1:]
        if v.shape[:1] == (n,):
            return v
        raise ValueError(f"expected {n + 1} values (one per t) or {n} (one per step), got shape {v.shape}")

    def quadrature_weights(self) -> np.ndarray:
        """Weights ``w_n`` with ``Q_N - Q_0 = sum_n w_n I_n`` exactly for this step sequence.

        ``I_n`` is the rate at the end of step n (at ``t[n]``). See the module docstring for the
        derivation. The result has shape (n_steps,) [s].

        Examples
        --------
        >>> import numpy as np
        >>> class Decay:
        ...     n_unknowns = 1
        ...     def solve_step(self, y_guess, alpha0, history, t_new, dt):
        ...         return -history / (alpha0 + dt), True, 1
        ...     def error_weights(self, y, rtol):
        ...         return 1e-8 + rtol * np.abs(y)
        >>> traj = integrate(Decay(), np.array([1.0]), 0.0, 1.0, dt_initial=0.1, adaptive=False)
        >>> w = traj.quadrature_weights()
        >>> bool(np.isclose(traj.y[-1, 0] - 1.0, w @ -traj.y[1:, 0], rtol=1e-13))
        True
        >>> np.round(w[-3:] / 0.1, 4)
        array([0.963 , 0.8889, 0.6667])
        """
        n = self.dt.size
        w = np.empty(n)
        carry = 1.0
        for k in range(n - 1, -1, -1):
            w[k] = self.dt[k] / self.alpha0[k] * carry
            carry = 1.0 + self.alpha2[k] / self.alpha0[k] * carry
        return w

    def integrate_series(self, values: Any) -> np.ndarray:
        """Integrate a rate over time with the BDF weights that balance the discrete state.

        Parameters
        ----------
        values
            Rate at each accepted time, shape (n_steps + 1, ...) on ``t`` (the value at ``t[0]``
            is not used: implicit steps see the rate at the end of the step) or (n_steps, ...)
            for ``t[1:]``, in [unit of the inventory s-1].

        Returns
        -------
        numpy.ndarray
            Running integral on ``t``, shape (n_steps + 1, ...), zero at ``t[0]``; it equals
            ``Q(y_n) - Q(y_0)`` for an inventory ``Q`` whose rate is ``values``
            [unit of the inventory].

        Examples
        --------
        >>> import numpy as np
        >>> class Growth:  # y' = 1 + y, inventory y, rate 1 + y
        ...     n_unknowns = 1
        ...     def solve_step(self, y_guess, alpha0, history, t_new, dt):
        ...         return (dt - history) / (alpha0 - dt), True, 1
        ...     def error_weights(self, y, rtol):
        ...         return 1e-9 + rtol * np.abs(y)
        >>> traj = integrate(Growth(), np.array([0.0]), 0.0, 2.0, rtol=1e-3)
        >>> q = traj.integrate_series(1.0 + traj.y[:, 0])
        >>> bool(np.allclose(q, traj.y[:, 0] - traj.y[0, 0], rtol=1e-13, atol=0))
        True
        """
        v = self._step_values(values)
        out = np.zeros((self.dt.size + 1,) + v.shape[1:])
        increment = np.zeros(v.shape[1:])
        for k in range(self.dt.size):
            increment = (self.dt[k] * v[k] + self.alpha2[k] * increment) / self.alpha0[k]
            out[k + 1] = out[k] + increment
        return out


# --------------------------------------------------------------------------------------------
# checkpoints and SIGTERM


class Checkpointer:
    """Writes integrator checkpoints atomically at most every ``every_seconds`` of wall time.

    A checkpoint is a NumPy ``.npz`` archive written to a temporary file in the same directory,
    flushed to disk and renamed over ``path``: a killed write leaves the old checkpoint or the
    new one, never a truncated file.

    Parameters
    ----------
    path
        Checkpoint file.
    every_seconds
        Wall-time interval between checkpoints; 0 writes after every accepted step [s].

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> class Decay:
    ...     n_unknowns = 1
    ...     def solve_step(self, y_guess, alpha0, history, t_new, dt):
    ...         return -history / (alpha0 + dt), True, 1
    ...     def error_weights(self, y, rtol):
    ...         return 1e-8 + rtol * np.abs(y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ckpt = Checkpointer(pathlib.Path(tmp) / "run.ckpt.npz", every_seconds=0.0)
    ...     traj = integrate(Decay(), np.array([1.0]), 0.0, 1.0, checkpoint=ckpt)
    ...     state = read_checkpoint(ckpt.path)
    >>> ckpt.n_written > 0, float(state["hist_t"][0]) < 1.0, state["format"]
    (True, True, 'fastnai.transient/1')
    """

    def __init__(self, path: str | os.PathLike, every_seconds: float = 600.0):
        if not every_seconds >= 0.0:
            raise ValueError(f"every_seconds must be >= 0, got {every_seconds!r}")
        self.path = Path(path)
        self.every_seconds = float(every_seconds)
        self.n_written = 0
        self._last = time.monotonic()

    def restart_clock(self) -> None:
        """Count the interval from now (called when an integration starts)."""
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether ``every_seconds`` have passed since the last write (or start)."""
        return time.monotonic() - self._last >= self.every_seconds

    def write(self, payload: dict[str, np.ndarray]) -> Path:
        """Write ``payload`` (name -> array) atomically to :attr:`path` (:mod:`fastnai.io`)."""
        from .io import write_checkpoint

        write_checkpoint(self.path, payload, meta={"writer": CHECKPOINT_FORMAT})
        self.n_written += 1
        self._last = time.monotonic()
        return self.path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by a :class:`Checkpointer` into a plain dict.

    0-d arrays come back as numpy scalars (strings as ``str``).

    Parameters
    ----------
    path
        Checkpoint file.

    Returns
    -------
    dict
        Engine entries by name, plus ``"model"``: the dict ``problem.checkpoint_state()`` gave.

    Examples
    --------
    See :class:`Checkpointer`.
    """
    from .io import read_checkpoint as read

    try:
        raw, meta = read(path)
    except FastnaiError as exc:
        raise FastnaiError(str(exc)) from exc
    fmt = str(raw.get("format", ""))
    if fmt != CHECKPOINT_FORMAT or meta.get("writer") != CHECKPOINT_FORMAT:
        raise FastnaiError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {fmt!r})")
    out: dict[str, Any] = {"model": {}}
    for name, value in raw.items():
        if name.startswith(_MODEL_PREFIX):
            out["model"][name[len(_MODEL_PREFIX):]] = value
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------------------------
# progress


class _Progress:
    """:class:`fastnai.lifecycle.Progress` over one integration (``callback(t, stats)``)."""

    def __init__(self, spec: bool | Callable | None, t0: float, t_end: float, interval: float):
        from .lifecycle import Progress

        self.t0, self.t_end = t0, t_end
        callback = (lambda info: spec(info["t"], info["stats"])) if callable(spec) else spec
        self.report = Progress(callback, interval, time.monotonic(), logger)

    def __call__(self, t: float, stats: StepStats, dt: float, final: bool = False) -> None:
        self.report({"t": t, "fraction": (t - self.t0) / (self.t_end - self.t0),
                     "n_steps": stats.n_steps, "dt": dt, "stats": stats}, final)

    def close(self) -> None:
        self.report.close()


# --------------------------------------------------------------------------------------------
# the integrator


@dataclass
class _Attempt:
    """One solve of the implicit equation from a given history."""

    t_new: float
    dt: float
    order: int
    alpha0: float
    alpha2: float
    y: np.ndarray
    ok: bool
    newton_iterations: int
    err: float  # weighted RMS local error, NaN if no estimate, inf if the solve failed


@dataclass
class _Settings:
    """Settings a checkpoint must agree with to be resumed."""

    n_unknowns: int
    t0: float
    t_end: float
    rtol: float
    method: str
    adaptive: bool
    max_step: float
    event_tolerance: float
    store_states: bool
    fixed_step: float  # 0 when adaptive


_STAT_FIELDS = tuple(f.name for f in fields(StepStats))


class _Integrator:
    def __init__(self, problem, settings: _Settings, control: StepControl, events: bool):
        self.problem = problem
        self.s = settings
        self.control = control
        self.event_fn = getattr(problem, "event_functions", None) if events else None
        self.on_accept = getattr(problem, "on_accept", None)
        self.stats = StepStats()
        self.failures: list[tuple[float, float, float, int]] = []
        # state at a step boundary: this, and nothing else, goes into a checkpoint
        self.hist_t: list[float] = []  # newest first, at most 3
        self.hist_y: list[np.ndarray] = []
        self.dt_next = math.nan
        self.err_prev = math.nan
        self.g_old: np.ndarray | None = None
        self.rec_t: list[float] = []
        self.rec_y: list[np.ndarray] = []
        self.rec_dt: list[float] = []
        self.rec_order: list[int] = []
        self.rec_alpha0: list[float] = []
        self.rec_alpha2: list[float] = []
        self.rec_err: list[float] = []
        self.rec_nit: list[int] = []
        self.status = "running"
        self.event: EventRecord | None = None

    # ---- state ---------------------------------------------------------------------------

    def start(self, y0: np.ndarray, t0: float, dt_initial: float) -> None:
        self.hist_t = [t0]
        self.hist_y = [y0]
        self.dt_next = dt_initial
        self.rec_t = [t0]
        if self.s.store_states:
            self.rec_y = [y0]
        if self.event_fn is not None:
            self.g_old = self._events(t0, y0)

    def payload(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"format": np.array(CHECKPOINT_FORMAT)}
        for k, v in asdict(self.s).items():
            out["setting_" + k] = np.array(v)
        for k, v in asdict(self.control).items():
            out["control_" + k] = np.array(v)
        for k in _STAT_FIELDS:
            out["stat_" + k] = np.array(getattr(self.stats, k), dtype=np.int64)
        out["hist_t"] = np.array(self.hist_t, dtype=np.float64)
        out["hist_y"] = np.array(self.hist_y, dtype=np.float64)
        out["dt_next"] = np.array(self.dt_next)
        out["err_prev"] = np.array(self.err_prev)
        out["has_events"] = np.array(self.g_old is not None)
        out["g_old"] = np.zeros(0) if self.g_old is None else self.g_old
        out["rec_t"] = np.array(self.rec_t, dtype=np.float64)
        out["rec_dt"] = np.array(self.rec_dt, dtype=np.float64)
        out["rec_order"] = np.array(self.rec_order, dtype=np.int8)
        out["rec_alpha0"] = np.array(self.rec_alpha0, dtype=np.float64)
        out["rec_alpha2"] = np.array(self.rec_alpha2, dtype=np.float64)
        out["rec_err"] = np.array(self.rec_err, dtype=np.float64)
        out["rec_nit"] = np.array(self.rec_nit, dtype=np.int64)
        if self.s.store_states:
            out["rec_y"] = np.array(self.rec_y, dtype=np.float64).reshape(-1, self.s.n_unknowns)
        save = getattr(self.problem, "checkpoint_state", None)
        if save is not None:
            for k, v in save().items():
                arr = np.asarray(v)
                if arr.dtype.hasobject:
                    raise TypeError(f"checkpoint_state()[{k!r}] is not numeric or text: {type(v).__name__}")
                out[_MODEL_PREFIX + k] = arr
        return out

    def restore(self, source: Path | Mapping) -> None:
        if isinstance(source, Mapping):
            state, path = dict(source), "(runner state)"
        else:
            state, path = read_checkpoint(source), source
        expected = {**{"setting_" + k: v for k, v in asdict(self.s).items()},
                    **{"control_" + k: v for k, v in asdict(self.control).items()}}
        for key, v in expected.items():
            saved = state.get(key)
            if saved is None or type(v)(saved) != v:
                name = key.split("_", 1)[1]
                raise FastnaiError(f"checkpoint {path} was written with {name} = {saved!r}; "
                                   f"this run has {name} = {v!r}")
        for k in _STAT_FIELDS:
            setattr(self.stats, k, int(state["stat_" + k]))
        self.hist_t = [float(t) for t in state["hist_t"]]
        self.hist_y = [np.array(y) for y in state["hist_y"]]
        self.dt_next = float(state["dt_next"])
        self.err_prev = float(state["err_prev"])
        if bool(state["has_events"]) != (self.event_fn is not None):
            raise FastnaiError(f"checkpoint {path} and this run disagree on whether events are on")
        self.g_old = np.array(state["g_old"]) if self.event_fn is not None else None
        self.rec_t = [float(t) for t in state["rec_t"]]
        self.rec_dt = [float(v) for v in state["rec_dt"]]
        self.rec_order = [int(v) for v in state["rec_order"]]
        self.rec_alpha0 = [float(v) for v in state["rec_alpha0"]]
        self.rec_alpha2 = [float(v) for v in state["rec_alpha2"]]
        self.rec_err = [float(v) for v in state["rec_err"]]
        self.rec_nit = [int(v) for v in state["rec_nit"]]
        if self.s.store_states:
            self.rec_y = list(np.array(state["rec_y"]))
        load = getattr(self.problem, "restore_state", None)
        if state.get("model"):
            if load is None:
                raise FastnaiError(f"checkpoint {path} holds model state but the problem has no "
                                   "restore_state()")
            load(state["model"])

    # ---- numerics ------------------------------------------------------------------------

    def _events(self, t: float, y: np.ndarray) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.event_fn(t, y), dtype=np.float64)).copy()

    def _norm(self, error: np.ndarray, y: np.ndarray) -> float:
        w = self.problem.error_weights(y, self.s.rtol)
        if not np.all(w > 0.0):
            raise ValueError("error_weights() must return positive weights")
        with np.errstate(over="ignore", invalid="ignore"):  # a huge error is a rejection, not a warning
            return float(np.sqrt(np.mean(np.square(error / w))))

    def _solve(self, order: int, t_new: float, hist_t: list[float], hist_y: list[np.ndarray],
               estimate: bool = True) -> _Attempt:
        """Solve the BDF step of ``order`` from the history (newest first) to ``t_new``."""
        t1, y1 = hist_t[0], hist_y[0]
        dt = t_new - t1
        k_err = math.nan
        if order == 2:
            h1 = t1 - hist_t[1]
            y2 = hist_y[1]
            omega = dt / h1
            alpha0 = (1.0 + 2.0 * omega) / (1.0 + omega)
            alpha1 = -(1.0 + omega)
            alpha2 = omega * omega / (1.0 + omega)
            history = alpha1 * y1 + alpha2 * y2
            if len(hist_t) >= 3:
                # quadratic extrapolation through the last three states (Lagrange form)
                h2 = hist_t[1] - hist_t[2]
                l0 = (dt + h1) * (dt + h1 + h2) / (h1 * (h1 + h2))
                l1 = -dt * (dt + h1 + h2) / (h1 * h2)
                l2 = dt * (dt + h1) / ((h1 + h2) * h2)
                guess = l0 * y1 + l1 * y2 + l2 * hist_y[2]
                a = dt * (dt + h1) / (2.0 * dt + h1)
                k_err = a / (a + dt + h1 + h2)
            else:
                guess = y1 + omega * (y1 - y2)
        else:
            alpha0, alpha2 = 1.0, 0.0
            history = -y1
            if len(hist_t) >= 2:
                h1 = t1 - hist_t[1]
                guess = y1 + (dt / h1) * (y1 - hist_y[1])
                k_err = dt / (2.0 * dt + h1)
            else:
                guess = y1.copy()
        y, ok, nit = self.problem.solve_step(guess.copy(), alpha0, history, t_new, dt)
        y = np.array(y, dtype=np.float64)
        nit = int(nit)
        ok = bool(ok) and y.shape == y1.shape and bool(np.all(np.isfinite(y)))
        self.stats.n_solves += 1
        self.stats.n_newton_iterations += nit
        err = math.inf
        if ok:
            with np.errstate(over="ignore", invalid="ignore"):
                difference = y - guess
            err = self._norm(k_err * difference, y) if estimate and not math.isnan(k_err) else math.nan
        return _Attempt(t_new, dt, order, alpha0, alpha2, y, ok, nit, err)

    def _attempt(self, t_new: float) -> list[_Attempt] | _Attempt:
        """Try one step to ``t_new``: a list of accepted-candidate sub-steps, or the failed attempt."""
        s = self.s
        if len(self.hist_t) == 1 and s.adaptive:
            # start by step doubling: one BDF1 step of dt, two of dt/2
            t1 = self.hist_t[0]
            t_mid = t1 + 0.5 * (t_new - t1)
            full = self._solve(1, t_new, self.hist_t, self.hist_y)
            if not full.ok:
                return full
            half1 = self._solve(1, t_mid, self.hist_t, self.hist_y)
            if not half1.ok:
                return half1
            half2 = self._solve(1, t_new, [t_mid, *self.hist_t], [half1.y, *self.hist_y], estimate=False)
            if not half2.ok:
                return half2
            with np.errstate(over="ignore", invalid="ignore"):
                difference = full.y - half2.y
            err = self._norm(difference, half2.y)
            half1.err = half2.err = err
            return [half1, half2]
        order = 1 if (s.method == "bdf1" or len(self.hist_t) == 1) else 2
        return [self._solve(order, t_new, self.hist_t, self.hist_y)]

    def _propose(self) -> float:
        """End time of the next attempt from the controller's proposal."""
        s, c = self.s, self.control
        t = self.hist_t[0]
        dt = self.dt_next
        if s.adaptive:
            dt = min(dt, s.max_step)
        if s.method == "bdf2" and len(self.hist_t) >= 2:
            dt = min(dt, c.max_step_ratio * (t - self.hist_t[1]))
        remaining = s.t_end - t
        if dt >= remaining * (1.0 - 1e-9):
            return s.t_end
        if s.adaptive and dt > 0.5 * remaining:
            dt = 0.5 * remaining  # two equal steps rather than a sliver at the end
        return t + dt

    def _fail(self, message: str) -> ConvergenceError:
        return ConvergenceError(f"{message} (failed attempts; t at the step start)",
                                self.failures, columns=("t [s]", "dt [s]", "error", "newton its"))

    def _reject(self, dt: float, err: float, newton_iterations: int, order_k: int,
                newton_failed: bool) -> None:
        """Record a failed attempt of step ``dt`` and shrink dt."""
        c = self.control
        t = self.hist_t[0]
        self.failures.append((t, dt, math.inf if newton_failed else err, newton_iterations))
        if newton_failed:
            self.stats.n_rejected_newton += 1
            factor = 0.5
        else:
            self.stats.n_rejected_error += 1
            factor = min(0.9, max(c.min_factor, c.safety * err ** (-1.0 / order_k)))
        self.dt_next = dt * factor
        if len(self.failures) >= c.max_rejections:
            raise self._fail(f"time step rejected {len(self.failures)} times in a row at t = {t:.9g} s")
        if not t + self.dt_next > t:
            raise self._fail(f"time step underflow at t = {t:.9g} s (dt = {self.dt_next:.3e} s)")

    def _controller(self, dt: float, err: float, order_k: int, after_reject: bool) -> float:
        c = self.control
        if not self.s.adaptive:
            return self.s.fixed_step
        if err == 0.0:
            factor = c.max_factor
        elif math.isnan(self.err_prev) or after_reject:
            factor = c.safety * err ** (-1.0 / order_k)
        else:
            factor = (c.safety * err ** (-c.pi_integral / order_k)
                      * max(self.err_prev, 1e-10) ** (c.pi_proportional / order_k))
        factor = min(c.max_factor, max(c.min_factor, factor))
        if after_reject:
            factor = min(factor, 1.0)
        return dt * factor

    def _crossed(self, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
        return ((g1 > 0.0) & (g2 <= 0.0)) | ((g1 < 0.0) & (g2 >= 0.0))

    def _locate(self, att: _Attempt, g_new: np.ndarray, hist_t, hist_y) -> tuple[_Attempt, np.ndarray]:
        """Shorten ``att`` until its end lies within event_tolerance after the first crossing."""
        t_a, g_a = hist_t[0], self.g_old
        t_b, g_b, best = att.t_new, g_new, att
        ga_s, gb_s = g_a.copy(), g_b.copy()  # Illinois-scaled copies for the secant
        last_side = 0
        iterations = 0
        while t_b - t_a > self.s.event_tolerance:
            iterations += 1
            width = t_b - t_a
            mask = self._crossed(g_a, g_b)
            if iterations > 20 or not mask.any():  # fall back to bisection
                t_try = t_a + 0.5 * width
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    frac = ga_s[mask] / (ga_s[mask] - gb_s[mask])
                frac = float(np.min(np.where(np.isfinite(frac), frac, 0.5)))
                # at least tol/2 from either end: a secant that lands on the root is confirmed by
                # the next trial, tol/2 on the other side, which closes the bracket
                tol = self.s.event_tolerance
                t_try = min(max(t_a + frac * width, t_a + 0.5 * tol), t_b - 0.5 * tol)
            if not t_a < t_try < t_b:
                break
            trial = self._solve(att.order, t_try, hist_t, hist_y)
            self.stats.n_event_solves += 1
            if not trial.ok:
                self.failures.append((hist_t[0], trial.dt, trial.err, trial.newton_iterations))
                raise self._fail(f"Newton failed while locating an event near t = {t_try:.9g} s")
            g_try = self._events(t_try, trial.y)
            if self._crossed(g_a, g_try).any():
                t_b, g_b, best = t_try, g_try, trial
                gb_s = g_try.copy()
                if last_side == -1:
                    ga_s = 0.5 * ga_s
                last_side = -1
            else:
                t_a, g_a = t_try, g_try
                ga_s = g_try.copy()
                if last_side == 1:
                    gb_s = 0.5 * gb_s
                last_side = 1
        return best, g_b

    def _accept(self, att: _Attempt) -> bool:
        """Accept one sub-step (after event location); True when an event stopped the run."""
        fired = None
        g_new = None
        if self.event_fn is not None:
            g_new = self._events(att.t_new, att.y)
            if self._crossed(self.g_old, g_new).any():
                att, g_new = self._locate(att, g_new, self.hist_t, self.hist_y)
                fired = tuple(int(i) for i in np.flatnonzero(self._crossed(self.g_old, g_new)))
        self.hist_t = [att.t_new, *self.hist_t[:2]]
        self.hist_y = [att.y, *self.hist_y[:2]]
        self.stats.n_steps += 1
        self.rec_t.append(att.t_new)
        self.rec_dt.append(att.dt)
        self.rec_order.append(att.order)
        self.rec_alpha0.append(att.alpha0)
        self.rec_alpha2.append(att.alpha2)
        self.rec_err.append(att.err)
        self.rec_nit.append(att.newton_iterations)
        if self.s.store_states:
            self.rec_y.append(att.y)
        if g_new is not None:
            self.g_old = g_new
        if self.on_accept is not None:
            self.on_accept(att.t_new, att.y)
        if fired:
            self.status = "event"
            self.event = EventRecord(fired, att.t_new)
            return True
        return False

    def step(self) -> None:
        """Take one step (with retries) from the current state; update the status."""
        t_new = self._propose()
        dt = t_new - self.hist_t[0]
        result = self._attempt(t_new)
        if isinstance(result, _Attempt):  # Newton failed
            self._reject(dt, math.inf, result.newton_iterations, 2, newton_failed=True)
            return
        order_k = 3 if result[-1].order == 2 else 2
        err = result[-1].err
        if self.s.adaptive and not err <= 1.0:
            self._reject(dt, err, result[-1].newton_iterations, order_k, newton_failed=False)
            return
        after_reject = bool(self.failures)
        self.failures = []
        self.dt_next = self._controller(dt, err, order_k, after_reject)
        if not math.isnan(err):
            self.err_prev = err
        for sub in result:
            if self._accept(sub):
                return
        if self.hist_t[0] >= self.s.t_end:
            self.status = "finished"

    def trajectory(self) -> Trajectory:
        ys = np.array(self.rec_y) if self.s.store_states else None
        return Trajectory(
            t=np.array(self.rec_t), y=ys, y_final=self.hist_y[0].copy(),
            dt=np.array(self.rec_dt), order=np.array(self.rec_order, dtype=np.int8),
            alpha0=np.array(self.rec_alpha0), alpha2=np.array(self.rec_alpha2),
            error=np.array(self.rec_err), newton_iterations=np.array(self.rec_nit, dtype=np.int64),
            stats=StepStats(**asdict(self.stats)), status=self.status, event=self.event,
            controller=ControllerState(self.dt_next, self.err_prev),
        )


def _settings(problem, y0, t0, t_end, rtol, dt_initial, max_step, method, adaptive,
              event_tolerance, store_states) -> tuple[_Settings, np.ndarray]:
    """Check :func:`integrate`'s arguments; its settings and ``y0`` as float64."""
    span = float(t_end) - float(t0)
    if not span > 0.0:
        raise ValueError(f"t_end must exceed t0, got t0 = {t0!r}, t_end = {t_end!r}")
    if method not in ("bdf1", "bdf2"):
        raise ValueError(f"method must be 'bdf1' or 'bdf2', got {method!r}")
    if not adaptive and dt_initial is None:
        raise ValueError("adaptive=False needs dt_initial (the fixed step)")
    if not rtol > 0.0:
        raise ValueError(f"rtol must be positive, got {rtol!r}")
    n = int(problem.n_unknowns)
    y0 = np.array(y0, dtype=np.float64)
    if y0.shape != (n,):
        raise ValueError(f"y0 has shape {y0.shape}; the problem has {n} unknowns")
    settings = _Settings(
        n_unknowns=n, t0=float(t0), t_end=float(t_end), rtol=float(rtol), method=method,
        adaptive=bool(adaptive), max_step=float(span if max_step is None else max_step),
        event_tolerance=float(1e-9 * span if event_tolerance is None else event_tolerance),
        store_states=bool(store_states), fixed_step=0.0 if adaptive else float(dt_initial),
    )
    return settings, y0


def _advance(engine: _Integrator, reporter: _Progress, checkpoint: Checkpointer | None,
             step_hook) -> None:
    """Step ``engine`` to its end or its event; report, checkpoint and call the hook after
    every accepted step that does not end the integration."""
    if engine.hist_t[0] >= engine.s.t_end:
        engine.status = "finished"
    while engine.status == "running":
        n_before = engine.stats.n_steps
        engine.step()
        if engine.stats.n_steps == n_before or engine.status != "running":
            continue
        reporter(engine.hist_t[0], engine.stats, engine.dt_next)
        if checkpoint is not None and checkpoint.due():
            checkpoint.write(engine.payload())
        if step_hook is not None:
            step_hook(engine.payload)
    reporter(engine.hist_t[0], engine.stats, engine.dt_next, final=True)


def integrate(
    problem: ImplicitProblem,
    y0: np.ndarray,
    t0: float,
    t_end: float,
    *,
    rtol: float = 1e-4,
    dt_initial: float | None = None,
    max_step: float | None = None,
    method: Literal["bdf2", "bdf1"] = "bdf2",
    adaptive: bool = True,
    control: StepControl | None = None,
    events: bool = True,
    event_tolerance: float | None = None,
    store_states: bool = True,
    checkpoint: Checkpointer | None = None,
    resume_from: str | os.PathLike | None = None,
    progress: bool | Callable[[float, StepStats], None] | None = None,
    progress_interval: float = 5.0,
    step_hook: Callable[[Callable[[], dict]], None] | None = None,
) -> Trajectory:
    """Advance ``problem`` from ``t0`` to ``t_end`` (or to the first event) with implicit BDF steps.

    See the module docstring for the implicit equation passed to ``problem.solve_step``, the
    error estimate, the controller and the checkpoint contents.

    Parameters
    ----------
    problem
        The model, an :class:`ImplicitProblem`.
    y0
        Initial state, shape (n_unknowns,) [model units].
    t0, t_end
        Start and end time [s].
    rtol
        Relative tolerance handed to ``problem.error_weights`` [1].
    dt_initial
        First step; with ``adaptive=False`` the fixed step (required). Default
        ``1e-6 (t_end - t0)`` [s].
    max_step
        Largest step of the adaptive controller; default ``t_end - t0`` [s].
    method
        ``"bdf2"`` (BDF1 start, then variable-step BDF2) or ``"bdf1"`` (implicit Euler).
    adaptive
        False: fixed steps of ``dt_initial`` (the last one shortened to hit ``t_end``), the
        first one BDF1 without step doubling; local errors are still estimated and recorded.
    control
        Controller parameters; default :class:`StepControl()`.
    events
        Use ``problem.event_functions`` if the problem has it.
    event_tolerance
        Width of the time bracket an event is located to; default ``1e-9 (t_end - t0)`` [s].
    store_states
        Keep every accepted state in the trajectory (and in checkpoints). For large problems
        set False and record outputs in ``problem.on_accept``.
    checkpoint
        Write checkpoints with this :class:`Checkpointer` (a standalone integration; runs
        of a protocol checkpoint through ``step_hook`` instead).
    resume_from
        Continue from this checkpoint file, or from the engine state a ``step_hook`` was
        given (as read back), instead of ``y0`` (the settings must match).
    progress
        None: a tqdm bar if stderr is a terminal, else INFO log lines; False: off; a callable
        ``progress(t, stats)``. At most every ``progress_interval`` seconds and at the end.
    progress_interval
        Wall time between progress reports [s].
    step_hook
        Called after every accepted step that does not end the integration, with a function
        that returns the engine's state (for a checkpoint; call it only when needed). The
        protocol runner handles signals and checkpoints there; what it raises propagates.

    Returns
    -------
    Trajectory
        Accepted times, states, step records, counters, event and controller state.

    Raises
    ------
    ConvergenceError
        ``max_rejections`` consecutive rejected attempts, or a step-size underflow; ``history``
        holds ``(t, dt, err, newton_iterations)`` per failed attempt.

    Examples
    --------
    ``y' = -y`` in the convention ``alpha0 y + history = dt f(y)``:

    >>> import numpy as np
    >>> class Decay:
    ...     n_unknowns = 1
    ...     def solve_step(self, y_guess, alpha0, history, t_new, dt):
    ...         return -history / (alpha0 + dt), True, 1
    ...     def error_weights(self, y, rtol):
    ...         return 1e-10 + rtol * np.abs(y)
    >>> traj = integrate(Decay(), np.array([1.0]), 0.0, 2.0, rtol=1e-7)
    >>> traj.status, bool(abs(traj.y_final[0] - np.exp(-2.0)) < 1e-5)
    ('finished', True)
    """
    control = StepControl() if control is None else control
    settings, y0 = _settings(problem, y0, t0, t_end, rtol, dt_initial, max_step, method, adaptive,
                             event_tolerance, store_states)
    engine = _Integrator(problem, settings, control, events)
    dt0 = float(1e-6 * (settings.t_end - settings.t0) if dt_initial is None else dt_initial)
    if resume_from is not None:
        engine.restore(resume_from if isinstance(resume_from, Mapping) else Path(resume_from))
    else:
        engine.start(y0, settings.t0, dt0)
    if checkpoint is not None:
        checkpoint.restart_clock()
    reporter = _Progress(progress, settings.t0, settings.t_end, progress_interval)
    try:
        _advance(engine, reporter, checkpoint, step_hook)
    finally:
        reporter.close()
    return engine.trajectory()
