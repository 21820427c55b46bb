"""Sparse SPD solves of the deposition model's electrolyte: AMG-preconditioned CG, reused.

The salt and potential operators of :mod:`fastnai._kernels.electrolyte` change a little every
time step (the electrolyte fraction follows the metal), so an algebraic-multigrid hierarchy
(pyamg, Bell, Olson and Schroder, doi:10.1016/j.softx.2022.101275) built for one step stays a
good preconditioner for the next ones. Classical (Ruge-Stuben) AMG is used: on these scalar
M-matrices it needs fewer and cheaper cycles than smoothed aggregation (measured here on the
256 x 128 box: 7 vs 11 CG iterations to 1e-7, a third of the build time).
:class:`SpdSolver` keeps the hierarchy and rebuilds when CG needs
more than ``rebuild_factor`` times the iterations it needed right after the last build (or on
the first solve).

For a resumed run to repeat an uninterrupted one bit for bit, the preconditioner must be the
same: :meth:`SpdSolver.state` returns the matrix values the hierarchy was built from, and
:meth:`SpdSolver.restore` rebuilds it from them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg

from .errors import ConvergenceError


class SpdSolver:
    """CG with a reused classical-AMG preconditioner on a fixed CSR pattern.

    Parameters
    ----------
    indptr, indices
        The CSR pattern; :attr:`data` holds the values (filled in place by the caller).
    rtol
        Relative residual of CG, ``|b - A x| <= rtol |b|``.
    rebuild_factor
        Rebuild the hierarchy when a solve needs more than this many times the iterations of
        the first solve after the last build (and at least ``min_rebuild_iterations``).
    name
        For error messages.

    Examples
    --------
    >>> from fastnai._kernels import electrolyte as ke
    >>> lat = ke.lateral_neighbours(4)
    >>> indptr, indices = ke.csr_pattern(8, lat, 0)
    >>> s = SpdSolver(indptr, indices)
    >>> ke.fill(s.data, indptr, indices, np.ones((8, 4)), lat, 1e-4, 1.0, 0.0, 1.0, 0, 1.0, 1.0,
    ...         0.0, True)
    >>> x, its = s.solve(np.ones(32), np.zeros(32))
    >>> bool(np.allclose(s.matrix() @ x, 1.0))
    True
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, *, rtol: float = 1e-11,
                 rebuild_factor: float = 2.0, min_rebuild_iterations: int = 12,
                 name: str = "electrolyte"):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.n = self.indptr.size - 1
        self.data = np.zeros(self.indices.size)
        self.rtol = rtol
        self.rebuild_factor = rebuild_factor
        self.min_rebuild_iterations = min_rebuild_iterations
        self.name = name
        self._built_from: np.ndarray | None = None
        self._base_iterations = 0
        self._preconditioner = None
        self.n_builds = 0
        self.n_iterations = 0

    def matrix(self) -> sp.csr_matrix:
        """The current matrix (shares :attr:`data`)."""
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.n))

    def _build(self, data: np.ndarray) -> None:
        import pyamg

        a = sp.csr_matrix((data.copy(), self.indices, self.indptr), shape=(self.n, self.n))
        ml = pyamg.ruge_stuben_solver(a, max_coarse=500)
        self._preconditioner = ml.aspreconditioner(cycle="V")
        self._built_from = data.copy()
        self._base_iterations = 0
        self.n_builds += 1

    def _cg(self, a, b, x0):
        its = [0]

        def count(_):
            its[0] += 1

        scale = float(np.linalg.norm(b))
        if scale == 0.0:
            return np.zeros_like(b), 0
        x, info = cg(a, b, x0=x0, rtol=self.rtol, atol=0.0, maxiter=500, M=self._preconditioner,
                     callback=count)
        return x, its[0] if info == 0 else -1

    def solve(self, b: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, int]:
        """Solve ``A x = b`` from ``x0``; returns ``(x, iterations)``."""
        a = self.matrix()
        if self._preconditioner is None:
            self._build(self.data)
        x, its = self._cg(a, b, x0)
        limit = max(self.min_rebuild_iterations, self.rebuild_factor * self._base_iterations)
        if its < 0 or (self._base_iterations and its > limit):
            self._build(self.data)
            x, its = self._cg(a, b, x0)
            if its < 0:
                raise ConvergenceError(f"{self.name}: CG did not reach rtol {self.rtol:g} in 500 "
                                       "iterations after a fresh AMG build", [])
        if self._base_iterations == 0:
            self._base_iterations = max(its, 1)
        self.n_iterations += its
        if not np.all(np.isfinite(x)):
            raise ConvergenceError(f"{self.name}: non-finite solution", [])
        return x, its

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint needs to rebuild the same preconditioner."""
        built = self._built_from if self._built_from is not None else np.zeros(0)
        return {"built_from": built, "base_iterations": np.int64(self._base_iterations)}

    def restore(self, state: dict) -> None:
        """Rebuild the preconditioner of :meth:`state`."""
        built = np.asarray(state["built_from"])
        if built.size:
            self._build(built)
            self.n_builds -= 1
        self._base_iterations = int(state["base_iterations"])
