"""One run's contract: signals, the checkpoint clock and file, progress lines and the summary.

A :class:`Lifecycle` spans a run from the end of input validation to the written output file
(:func:`fastnai.api.run` opens it; :func:`fastnai.runner.run_protocol` drives it):

- **Signals.** SIGTERM (what a batch scheduler sends at the wall-time limit) and SIGINT
  (Ctrl-C) are caught in the main thread only, and the previous handlers are restored when
  the run ends (Dask worker threads and notebooks keep theirs). Until the run has a state
  worth saving (set-up: building the mesh, compiling kernels, the first equilibrium) a signal
  stops the run at once and the checkpoint records "start from the beginning"; afterwards it
  sets a flag that the runner reads after every step and every segment, where it writes a
  checkpoint of the last completed step and raises :class:`~fastnai.errors.Interrupted`
  (exit status 4). A signal after the last step (while the Dataset is built or written) gives
  a checkpoint of the final state: resuming it writes the same output.
- **Checkpoints.** One file (:func:`fastnai.io.write_checkpoint`, atomic, umask modes), at
  most every ``checkpoint_every`` seconds of wall time counted over the whole run, and on a
  signal. Its metadata hold the case digest (SHA-256 of the resolved case) and the fastnai
  version: resuming with an edited case or another version is a
  :class:`~fastnai.errors.CaseError` (exit 2). A checkpoint is removed when the run that
  used it ends with its output written (``keep_checkpoint`` keeps it).
- **Progress.** A tqdm bar when stderr is a terminal; otherwise INFO lines on the
  ``fastnai`` logger (the command line sends them to stderr) every ``progress_interval``
  seconds: model time, segment, voltage, current, fraction of the protocol, wall time.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import CaseError, Interrupted

__all__ = ["Lifecycle", "Progress", "StopNow", "case_digest"]

logger = logging.getLogger("fastnai")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopNow(BaseException):  # noqa: N818 - a control-flow signal, like KeyboardInterrupt
    """Raised by the signal handler while the run has nothing to save yet (set-up).

    A BaseException, so that ``except Exception`` in a library cannot swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def case_digest(case) -> str:
    """SHA-256 of the resolved case (its TOML text), the identity a checkpoint is tied to.

    >>> from fastnai.case import load_case
    >>> a = load_case({"model": {"kind": "band_bending"}, "semiconductor": {"material": "anatase-TiO2"},
    ...                "contact": {"material": "TiC"}})
    >>> case_digest(a) == case_digest(a.with_overrides({"mesh.n_nodes": 2000})), len(case_digest(a))
    (True, 64)
    """
    return hashlib.sha256(case.to_toml().encode()).hexdigest()


def _version() -> str:
    from ._version import version

    return version


class Lifecycle:
    """Signals, checkpoints and progress of one run (see the module docstring).

    Parameters
    ----------
    case
        The validated case (its digest goes into every checkpoint).
    checkpoint
        Checkpoint file, or None (then a signal stops the run without one).
    checkpoint_every
        Wall time between periodic checkpoints, counted from the start of the run [s];
        ``math.inf`` writes one only on a signal.
    resume
        Continue from ``checkpoint``.
    keep_checkpoint
        Keep the checkpoint after the run has written its output.
    progress
        None: a bar on a terminal, log lines otherwise; False: silent; or a callable
        ``progress(info: dict)`` called at most every ``progress_interval`` seconds.
    progress_interval
        Wall time between progress reports [s]; default 10 s in batch, 0.5 s for a bar.

    Examples
    --------
    >>> import os, signal, tempfile
    >>> from fastnai.case import load_case
    >>> case = load_case("cases/deposition_na_vn.toml")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     life = Lifecycle(case, checkpoint=f"{folder}/run.ckpt.npz", progress=False)
    ...     with life:
    ...         life.started()                       # a state worth saving exists from now
    ...         os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag
    ...         try:
    ...             life.after_step(lambda: {"cell": {"t": 1.0}})
    ...         except Interrupted as exc:
    ...             print(exc.checkpoint_path.name, life.read()[0]["cell"]["t"])
    run.ckpt.npz 1.0
    """

    def __init__(self, case, *, checkpoint: str | os.PathLike | None = None,
                 checkpoint_every: float = 600.0, resume: bool = False,
                 keep_checkpoint: bool = False, progress: bool | Callable | None = None,
                 progress_interval: float | None = None):
        if not (isinstance(checkpoint_every, (int, float)) and checkpoint_every >= 0.0):
            raise CaseError(f"checkpoint_every = {checkpoint_every!r}: expected a number of "
                            "seconds >= 0 (inf: only on a signal)")
        if resume and checkpoint is None:
            raise CaseError("resume needs a checkpoint file")
        self.case = case
        self.kind = case.kind
        self.digest = case_digest(case)
        self.path = None if checkpoint is None else Path(checkpoint)
        self.every = float(checkpoint_every)
        self.resume = bool(resume)
        self.keep = bool(keep_checkpoint)
        self.stop_signal: int | None = None
        self.phase = "setup"  # "setup" -> "running" -> "done"
        self.n_written = 0
        self.resumed_from_state = False
        self._saved: tuple[dict, dict] | None = None  # the checkpoint read() checked
        self.final_state: Callable[[], Mapping] | None = None  # set by the runner at its end
        self._previous: dict[int, Any] = {}
        self._installed = False
        self._start = time.monotonic()
        self._last_write = self._start
        self._progress = Progress(progress, progress_interval, self._start)

    # -- signals ------------------------------------------------------------------------------
    def __enter__(self) -> Lifecycle:
        self._start = self._last_write = time.monotonic()
        self._progress.start = self._start
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        self._progress.close()
        if self._installed:
            for signum, previous in self._previous.items():
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            self._installed = False
        self.phase = "done"

    def _handler(self, signum, frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        if self.phase == "setup":
            raise StopNow(signum)

    @property
    def stop_requested(self) -> bool:
        """Whether SIGTERM or SIGINT arrived."""
        return self.stop_signal is not None

    def started(self) -> None:
        """The run has a state worth saving: signals set a flag from now on."""
        self.phase = "running"

    # -- checkpoints --------------------------------------------------------------------------
    def read(self) -> tuple[dict, dict]:
        """The checkpoint's (state, meta), checked against this case and version."""
        from .io import read_checkpoint

        state, meta = read_checkpoint(self.path)
        self._saved = (state, meta)  # resume_state() takes it without reading the file again
        if meta.get("model") != self.kind:
            raise CaseError(f"--resume: checkpoint {self.path} belongs to a {meta.get('model')!r} "
                            f"run, this case is {self.kind!r}")
        if meta.get("case_digest") != self.digest:
            raise CaseError(f"--resume: checkpoint {self.path} was written for another case "
                            "(the resolved case differs: an edited file or other --set values); "
                            "rerun without --resume, or restore the case it was written for")
        if meta.get("fastnai_version") != _version():
            raise CaseError(f"--resume: checkpoint {self.path} was written by fastnai "
                            f"{meta.get('fastnai_version')}, this is {_version()}: a resume could "
                            "not promise the same result; rerun without --resume")
        return state, meta

    def resume_state(self) -> dict | None:
        """The saved state to continue from, or None (a fresh run, or one stopped in set-up)."""
        if not self.resume:
            return None
        state, meta = self._saved if self._saved is not None else self.read()
        self._saved = None
        if meta.get("phase") == "start":
            return None
        self.resumed_from_state = True
        return state

    def write(self, state: Mapping, phase: str = "running") -> Path | None:
        """Write ``state`` as the checkpoint (atomically); restart the clock."""
        if self.path is None:
            return None
        from .io import write_checkpoint

        meta = {"model": self.kind, "case_digest": self.digest, "fastnai_version": _version(),
                "phase": phase}
        write_checkpoint(self.path, state, meta=meta)
        self.n_written += 1
        self._last_write = time.monotonic()
        return self.path

    def due(self) -> bool:
        """Whether the periodic checkpoint is due (wall clock over the whole run)."""
        return self.path is not None and time.monotonic() - self._last_write >= self.every

    def after_step(self, snapshot: Callable[[], Mapping]) -> None:
        """Called after every completed step or segment: checkpoint when due or on a signal.

        ``snapshot()`` builds the state (called only when a checkpoint is written).
        """
        if self.stop_requested:
            path = self.write(snapshot())
            raise self._interrupted(path, "at the last completed step")
        if self.due():
            self.write(snapshot())

    def raise_if_stopped(self) -> None:
        """After the last step: on a signal, checkpoint the final state and raise."""
        if not self.stop_requested:
            return
        path = None
        if self.final_state is not None:
            path = self.write(self.final_state())
        raise self._interrupted(path, "after the last step (a resume writes the output)")

    def stop_at_start(self) -> Interrupted:
        """The :class:`Interrupted` of a signal in set-up, with a "start" checkpoint.

        A run resumed from a saved state keeps that checkpoint (it is still valid).
        """
        path = self.path
        if path is not None and not self.resumed_from_state:
            path = self.write({}, phase="start")
        return self._interrupted(path, "during set-up (a resume starts from the beginning)")

    def _interrupted(self, path: Path | None, where: str) -> Interrupted:
        name = signal.Signals(self.stop_signal).name if self.stop_signal else "signal"
        saved = f"checkpoint written to {path}" if path else "no checkpoint (none was asked for)"
        return Interrupted(f"{name} {where}: {saved}", path)

    def finished(self) -> None:
        """The output is written: remove the checkpoint unless it is to be kept."""
        from .io import remove_file

        if self.path is not None and not self.keep and (self.n_written or self.resume):
            remove_file(self.path)

    # -- progress -----------------------------------------------------------------------------
    def report(self, info: Mapping[str, float] | Callable[[], Mapping[str, float]],
               final: bool = False) -> None:
        """Progress: ``t`` [s], ``fraction`` [0-1], ``segment``, ``n_segments``, ``voltage``
        [V], ``current`` (anodic positive), ``n_steps``; or a function returning them, called
        only when a report is due (every step of a run passes one)."""
        self._progress(info, final)


class Progress:
    """Progress reports: a tqdm bar on a terminal, INFO lines otherwise, or a user callback.

    Parameters
    ----------
    spec
        None: bar or log lines; False: silent; a callable: called with the info dict.
    interval
        Wall time between reports [s]; default 10 s for log lines, 0.5 s for a bar.
    start
        ``time.monotonic()`` at the start (for the wall time in log lines).
    log
        Logger of the lines.

    The info dict holds ``t`` [s] and ``fraction`` [0-1], and may hold ``segment`` and
    ``n_segments``, ``voltage`` [V], ``current``, ``n_steps``, ``dt`` [s].
    """

    def __init__(self, spec, interval: float | None, start: float,
                 log: logging.Logger = logger):
        self.callback = spec if callable(spec) else None
        self.enabled = spec is not False
        self.start = start
        self.log = log
        self.bar = None
        tty = sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        if self.enabled and self.callback is None and tty:
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is an optional extra: log lines instead
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=1000, unit="", desc="progress", leave=False,
                                bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        self.interval = (0.5 if self.bar is not None else 10.0) if interval is None else interval
        self._last = -math.inf

    def __call__(self, info: Mapping[str, float] | Callable[[], Mapping[str, float]],
                 final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        if callable(info):
            info = info()
        if self.callback is not None:
            self.callback(dict(info))
            return
        fraction = min(max(float(info.get("fraction", 0.0)), 0.0), 1.0)
        if self.bar is not None:
            self.bar.n = int(round(1000 * fraction))
            self.bar.set_postfix_str(f"t={info['t']:.4g} s", refresh=False)
            self.bar.refresh()
            return
        self.log.info("%s", self.line(info, fraction, now - self.start))

    @staticmethod
    def line(info: Mapping[str, float], fraction: float, wall: float) -> str:
        """The log line of ``info``."""
        parts = [f"t = {info['t']:.6g} s"]
        if "segment" in info:
            parts.append(f"segment {int(info['segment']) + 1}/{int(info['n_segments'])}")
        parts.append(f"{100.0 * fraction:.1f} % done")
        if "voltage" in info:
            parts.append(f"V = {info['voltage']:.6g} V")
        if "current" in info:
            parts.append(f"I = {info['current']:.4g}")
        parts.append(f"{int(info.get('n_steps', 0))} steps")
        if "dt" in info:
            parts.append(f"dt = {info['dt']:.3g} s")
        parts.append(f"wall {wall:.1f} s")
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
