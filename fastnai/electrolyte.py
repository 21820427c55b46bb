"""SPD solves of the deposition model's electrolyte: geometric multigrid-CG, or AMG-CG.

:class:`MultigridSolver` (the default, ``electrolyte.solver = "multigrid"``) holds the operator
as cell faces (:func:`fastnai._kernels.electrolyte.faces`) and solves it with CG preconditioned
by the compiled geometric multigrid of :mod:`fastnai._kernels.multigrid`; the separator column
is eliminated exactly (below). :class:`SpdSolver` (``"amg"``) solves the CSR matrix of
:func:`fastnai._kernels.electrolyte.fill` with pyamg.

AMG path.

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

from ._kernels import electrolyte as kel
from ._kernels import multigrid as kmg
from ._kernels.tridiagonal import solve_tridiagonal
from .errors import ConvergenceError

TOP_CLOSED, TOP_DIRICHLET, TOP_COLUMN = 0, 1, 2


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


class MultigridSolver:
    """CG with the geometric-multigrid preconditioner on the electrolyte's face operator.

    The unknowns are those of :mod:`fastnai._kernels.electrolyte`: the ``ny nl`` cells, then
    ``ncol`` separator-column nodes. The column's first node couples to every top cell, which
    no grid hierarchy represents; it is eliminated instead. With ``A_gc = -w e_0^T`` (``w``
    the top cells' conductances to that node) and the column's tridiagonal block ``C``, the
    grid unknowns solve the Schur complement

        S x_g = (A_gg - gamma w w^T) x_g = b_g + w (C^-1 b_c)_0,    gamma = (C^-1)_00,

    a rank-one change of the grid operator: CG applies ``S`` exactly and preconditions with the
    multigrid of ``A_gg`` (a rank-one difference costs CG at most one iteration). The column
    follows, ``x_c = C^-1 b_c + C^-1 e_0 (w^T x_g)``. Nothing is dropped: the result solves
    the whole system.

    Parameters
    ----------
    ny, nz, nx
        Grid (``nz = 1`` in 2D); fields are ``(ny, nz nx)``.
    ncol
        Separator-column nodes (0: none).
    rtol
        ``|b' - S x_g| <= rtol |b'|`` on the grid's (Schur) system.
    maxiter
        CG iterations before a :class:`~fastnai.errors.ConvergenceError` (exit 3) that carries
        the residual history.

    Examples
    --------
    >>> s = MultigridSolver(8, 1, 4, rtol=1e-12)
    >>> s.assemble(np.ones((8, 4)), 1e-4, 1.0, 0.0, 1.0, TOP_DIRICHLET)
    >>> x, its = s.solve(np.ones(32), np.zeros(32))
    >>> bool(np.allclose(s.matrix() @ x, 1.0))
    True
    """

    def __init__(self, ny: int, nz: int, nx: int, ncol: int = 0, *, rtol: float = 1e-8,
                 maxiter: int = 200, name: str = "electrolyte"):
        self.shape = (ny, nz, nx)
        self.dims, self.offs = kmg.plan(ny, nz, nx)
        total, n = int(self.offs[-1]), int(self.offs[1])
        self.n = n
        self.ncol = ncol
        self.rtol = rtol
        self.maxiter = maxiter
        self.name = name
        self._kx, self._ky, self._kz, self._d = (np.zeros(total) for _ in range(4))
        self.w = np.zeros(n)
        nc = int(np.prod(self.dims[-1]))
        self._chol = np.zeros((nc, nc))
        self._u, self._f, self._r = (np.zeros(total) for _ in range(3))
        self._res, self._res_old, self._p, self._q = (np.zeros(n) for _ in range(4))
        self._rows = np.zeros(ny)
        self.history = np.zeros(maxiter + 1)
        self.col_lower, self.col_diag, self.col_upper = (np.zeros(ncol) for _ in range(3))
        self._col_work = np.zeros(ncol)
        self._g = np.zeros(ncol)
        self._e0 = np.zeros(ncol)
        if ncol:
            self._e0[0] = 1.0
        self.n_iterations = 0
        self.n_builds = 0
        self.visits, self.scale = kmg.VISITS, kmg.SCALE
        self._count = np.zeros(len(self.dims), dtype=np.int64)

    @property
    def kx(self) -> np.ndarray:
        """Level-0 x-face conductances (``ny nz nx``; views into the hierarchy's storage)."""
        return self._kx[:self.n]

    @property
    def ky(self) -> np.ndarray:
        return self._ky[:self.n]

    @property
    def kz(self) -> np.ndarray:
        return self._kz[:self.n]

    @property
    def d(self) -> np.ndarray:
        return self._d[:self.n]

    def assemble(self, psi: np.ndarray, psi_min: float, coef: float, mass: float, dx: float,
                 top: int, coef_col: float = 1.0, h_col: float = 1.0,
                 mass_col: float = 0.0) -> None:
        """Write the operator of :func:`fastnai._kernels.electrolyte.fill` (same arguments;
        ``top`` one of ``TOP_CLOSED, TOP_DIRICHLET, TOP_COLUMN``; the column needs
        ``ncol > 0``)."""
        if (top == TOP_COLUMN) != (self.ncol > 0):
            raise ValueError("top = TOP_COLUMN exactly when the solver has a column")
        kel.faces(psi, self.shape[1], psi_min, coef, mass, dx, top, coef_col, h_col, self.kx,
                  self.ky, self.kz, self.d, self.w)
        if self.ncol:
            area = psi.shape[1] * dx
            k_col = coef_col * area / h_col
            self.col_diag[:] = mass_col * h_col * area + 2.0 * k_col
            self.col_diag[0] += float(np.sum(self.w)) - k_col
            self.col_diag[-1] -= k_col
            self.col_lower[:] = -k_col
            self.col_upper[:] = -k_col

    def matrix(self) -> sp.csr_matrix:
        """The whole operator (grid and column) as a sparse matrix, for direct solves."""
        ny, nz, nx = self.shape
        n, m = self.n, self.ncol
        c = np.arange(n).reshape(ny, nz, nx)
        rows, cols, vals = [], [], []
        for k, nb in ((self.kx, np.roll(c, -1, axis=2)), (self.kz, np.roll(c, -1, axis=1)),
                      (self.ky[:-nz * nx], c[1:])):
            a = c.ravel()[:k.size]
            b = nb.ravel()
            keep = (k != 0.0) & (a != b)
            rows += [a[keep], b[keep], a[keep], b[keep]]
            cols += [b[keep], a[keep], a[keep], b[keep]]
            vals += [-k[keep], -k[keep], k[keep], k[keep]]
        rows.append(np.arange(n))
        cols.append(np.arange(n))
        vals.append(self.d.copy())
        if m:
            top = np.flatnonzero(self.w)
            rows += [top, np.full(top.size, n), np.arange(n, n + m), np.arange(n, n + m - 1),
                     np.arange(n + 1, n + m)]
            cols += [np.full(top.size, n), top, np.arange(n, n + m), np.arange(n + 1, n + m),
                     np.arange(n, n + m - 1)]
            vals += [-self.w[top], -self.w[top], self.col_diag, self.col_upper[:-1],
                     self.col_lower[1:]]
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n + m, n + m))

    def _column_solve(self, rhs: np.ndarray, out: np.ndarray) -> None:
        solve_tridiagonal(self.col_lower, self.col_diag, self.col_upper, rhs, out, self._col_work)

    def solve(self, b: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, int]:
        """Solve ``A x = b`` from ``x0`` (both ``ny nl + ncol``); returns ``(x, iterations)``."""
        n, m = self.n, self.ncol
        kmg.build(self._kx, self._ky, self._kz, self._d, self.dims, self.offs, self._chol)
        self.n_builds += 1
        x = np.array(x0[:n], dtype=float)
        gamma = 0.0
        if m:
            y = np.empty(m)
            self._column_solve(b[n:], y)
            self._column_solve(self._e0, self._g)
            gamma = float(self._g[0])
            rhs = b[:n] + self.w * y[0]
        else:
            rhs = np.ascontiguousarray(b[:n], dtype=float)
        its = kmg.pcg(self._kx, self._ky, self._kz, self._d, self.dims, self.offs, self._chol,
                      self.w, gamma, rhs, x, self.rtol, self.maxiter, self._u, self._f, self._r,
                      self._res, self._res_old, self._p, self._q, self._rows,
                      self.history, self.visits, self.scale, self._count)
        if its < 0:
            hist = [(float(r),) for r in self.history[:self.maxiter + 1]]
            raise ConvergenceError(f"{self.name}: multigrid-CG did not reach rtol {self.rtol:g} "
                                   f"in {self.maxiter} iterations", hist, columns=("|b - A x|",))
        if not np.all(np.isfinite(x)):
            raise ConvergenceError(f"{self.name}: non-finite solution", [])
        self.n_iterations += its
        if not m:
            return x, its
        out = np.empty(n + m)
        out[:n] = x
        out[n:] = y + self._g * kmg.dot(self.w, x, self._rows)
        return out, its

    def state(self) -> dict[str, np.ndarray]:
        """Nothing: the hierarchy is rebuilt from the operator at every solve."""
        return {}

    def restore(self, state: dict) -> None:
        """Nothing to restore (see :meth:`state`)."""
