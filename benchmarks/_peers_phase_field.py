"""FiPy peer and numpy twins of the explicit Allen-Cahn + diffusion step (BASELINES §2).

The step (:class:`PhaseFieldProblem`), on an ``N x N`` grid of cells of size ``dx``:

    d xi/dt = D (lap xi - f(xi)/lam^2),   f = xi (1 - xi)(1 - 2 xi)     (Allen-Cahn)
    d c/dt  = D_c lap c                                                  (salt diffusion)

in the form of fastnai's ``chen2015`` profile terms (:mod:`fastnai._kernels.phase_field`),
explicit Euler, 5-point Laplacian, with ``r = D dt/dx^2 = 0.1`` (inside the explicit limit
1/4) and ``lam = 2 dx``.

What is compared, and why it is fair
------------------------------------
- **FiPy** (:class:`FipyAllenCahn`): ``TransientTerm == ExplicitDiffusionTerm - D/lam^2 f(xi)``
  on a ``PeriodicGrid2D``, and the same for ``c`` without the source; ``eq.solve(dt=...)`` per
  field and step. This is how a FiPy user writes the explicit step (BASELINES §2 timed exactly
  this: about 1e6 cell updates per second at 256^2). Its answer is checked against
  :func:`numpy_explicit_step`, the plain periodic explicit update, to round-off.
- **fastnai**: one call of ``phase_field.profile_step`` (``CHEN2015``, no noise, no
  Gibbs-Thomson, mask and active wall all ones). That kernel is *not* the plain explicit
  update: it divides the explicit increment by ``1 + diag`` (point-implicit), uses a 9-point
  neighbourhood (it also forms ``xi_xy`` for the curvature terms), has a substrate wall below
  row 0 and a mirror above the top instead of periodic y, and writes two more fields (the
  growth factors ``geom`` and ``geom2``). Per cell it does at least the work of the explicit
  step, so its cell-update rate is a fair (if anything conservative) stand-in for "fastnai's
  explicit Allen-Cahn step". It is checked against :func:`numpy_profile_step`, a numpy twin
  of the *same* point-implicit update with the same ghost cells, not against FiPy.

The issue's target (fastnai >= 1000 x FiPy's explicit cell-update rate at 256^2) is judged on
the Allen-Cahn field alone: ``profile_step`` against FiPy's Allen-Cahn equation, since that is
the only part for which fastnai has a kernel (the deposition model solves its salt implicitly,
with AMG-CG). The two-field step is reported beside it: fastnai's side is then
``profile_step`` plus :func:`diffuse_explicit`, a small Numba kernel that is *benchmark code*
written here (not part of fastnai), against FiPy solving both equations. A "cell update" is
one cell advanced by one step (both fields, in the two-field step).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from fastnai._kernels import phase_field as kpf


@dataclass(frozen=True)
class PhaseFieldProblem:
    """Parameters of the benchmark step (SI): the chen2015 mobility of the deposition model's
    defaults (``L_sigma 6 gamma lam`` with 2.5e-6 m3 J-1 s-1, 0.2 J m-2, ``lam = 2 dx``)."""

    dx: float = 0.2e-6
    interface_cells: float = 2.0
    mobility: float = 2.5e-6 * 6.0 * 0.2 * 0.4e-6  # D_xi [m2 s-1]
    diffusion_number: float = 0.1  # r = D dt / dx^2
    diffusivity: float = 1.2e-12  # D_c of the second field [m2 s-1]
    cos_theta: float = 0.5  # wetting ghost (unused where every wall site is active)

    @property
    def lam(self) -> float:
        """Interface width [m]."""
        return self.interface_cells * self.dx

    @property
    def dt(self) -> float:
        """Time step [s] (``r = D dt/dx^2``)."""
        return self.diffusion_number * self.dx**2 / self.mobility


PROBLEM = PhaseFieldProblem()


def initial_state(n: int, problem: PhaseFieldProblem = PROBLEM) -> tuple[np.ndarray, np.ndarray]:
    """``(xi, c)`` of an ``n x n`` grid: a tanh front at a quarter height, perturbed by one
    sine wave across the width (metal below), and a smooth periodic salt field."""
    dx, lam = problem.dx, problem.lam
    centres = (np.arange(n) + 0.5) * dx
    height = 0.25 * n * dx + 4.0 * dx * np.sin(2.0 * np.pi * centres / (n * dx))
    xi = 0.5 * (1.0 - np.tanh((centres[:, None] - height[None, :]) / (2.0 * lam)))
    phase = 2.0 * np.pi * centres / (n * dx)
    c = 1.0 + 0.2 * np.sin(phase)[:, None] * np.cos(2.0 * phase)[None, :]
    return np.ascontiguousarray(xi), np.ascontiguousarray(c)


# --- fastnai side --------------------------------------------------------------------------


class ProfileStepArrays:
    """Inputs and outputs of ``profile_step`` on an ``n x n`` grid (mask and wall all ones)."""

    def __init__(self, n: int, problem: PhaseFieldProblem = PROBLEM):
        self.n = n
        self.problem = problem
        self.xi, self.c = initial_state(n, problem)
        self.wall_active = np.ones(n, np.uint8)
        self.mask = np.ones((n, n), np.uint8)
        self.xi_star = np.zeros((n, n))
        self.geom = np.zeros((n, n))
        self.geom2 = np.zeros((n, n))
        self.eta_shift = np.empty((n, n))  # not written (gt_coeff = 0): never touched
        self.c_new = np.zeros((n, n))

    def profile_step(self) -> None:
        """One ``profile_step`` (chen2015, no noise, no Gibbs-Thomson)."""
        p = self.problem
        kpf.profile_step(self.xi, self.wall_active, p.cos_theta, p.dx, p.lam, p.mobility, p.dt,
                         kpf.CHEN2015, self.mask, 0.0, 0.0, 0.0, 1, 0, self.xi_star, self.geom,
                         self.geom2, self.eta_shift)

    def diffuse(self) -> None:
        """The explicit diffusion update of ``c`` (benchmark kernel :func:`diffuse_explicit`)."""
        p = self.problem
        diffuse_explicit(self.c, p.diffusivity * p.dt / p.dx**2, self.c_new)

    def two_field_step(self) -> None:
        """``profile_step`` and the diffusion of ``c``: fastnai's side of the two-field step."""
        self.profile_step()
        self.diffuse()


@njit(parallel=True, cache=True, error_model="numpy", boundscheck=False, nogil=True)
def diffuse_explicit(c, r, out):
    """BENCHMARK CODE (not a fastnai kernel): ``out = c + r (5-point periodic Laplacian of c)``.

    ``r = D_c dt/dx^2``. Periodic in both directions, like FiPy's ``PeriodicGrid2D``. Row views
    and the two edge columns apart, so the interior loop has affine indices and vectorises.
    """
    ny, nx = c.shape
    for j in prange(ny):
        rc = c[j]
        rn = c[j + 1] if j + 1 < ny else c[0]
        rs = c[j - 1] if j > 0 else c[ny - 1]
        o = out[j]
        for i in (0, nx - 1):
            ie = i + 1 if i + 1 < nx else 0
            iw = i - 1 if i > 0 else nx - 1
            o[i] = rc[i] + r * (rc[ie] + rc[iw] + rn[i] + rs[i] - 4.0 * rc[i])
        for i in range(1, nx - 1):
            o[i] = rc[i] + r * (rc[i + 1] + rc[i - 1] + rn[i] + rs[i] - 4.0 * rc[i])


def numpy_profile_step(xi, wall_active, mask, problem: PhaseFieldProblem = PROBLEM):
    """numpy twin of ``profile_step`` (chen2015, no noise/Gibbs-Thomson): ``(xi_star, geom,
    geom2)``, with the kernel's ghosts (periodic x, wall ghost below row 0, mirror above)."""
    p = problem
    dx, lam = p.dx, p.lam
    x0 = xi[0]
    wet = np.clip(x0 + dx * p.cos_theta * x0 * (1.0 - x0) / lam, 0.0, 1.0)
    ghost = np.where(wall_active != 0, 1.0, wet)
    rows = np.vstack([ghost[None, :], xi, xi[-1:, :]])
    pad = np.hstack([rows[:, -1:], rows, rows[:, :1]])
    c = pad[1:-1, 1:-1]
    e, w = pad[1:-1, 2:], pad[1:-1, :-2]
    n, s = pad[2:, 1:-1], pad[:-2, 1:-1]
    gxx = (e - 2.0 * c + w) / dx**2
    gyy = (n - 2.0 * c + s) / dx**2
    cc = np.clip(c, 0.0, 1.0)
    f = cc * (1.0 - cc) * (1.0 - 2.0 * cc)
    fp = 1.0 - 6.0 * cc + 6.0 * cc * cc
    r = p.mobility * p.dt / dx**2
    diag = p.mobility * p.dt / lam**2 * np.maximum(fp, 0.0) + 4.0 * r
    incr = p.mobility * (gxx + gyy - f / lam**2)
    xi_star = c + p.dt * incr / (1.0 + diag)
    geom = np.where(mask != 0, 6.0 * cc * cc * (1.0 - cc) ** 2 / lam, 0.0)
    return xi_star, geom, np.zeros_like(xi_star)


def numpy_explicit_step(xi, c, problem: PhaseFieldProblem = PROBLEM):
    """Plain explicit Euler of both fields on the periodic grid: ``(xi_new, c_new)``."""
    p = problem

    def lap(u):
        return (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1)
                - 4.0 * u) / p.dx**2

    f = xi * (1.0 - xi) * (1.0 - 2.0 * xi)
    xi_new = xi + p.dt * p.mobility * (lap(xi) - f / p.lam**2)
    return xi_new, c + p.dt * p.diffusivity * lap(c)


def check_fastnai(n: int, problem: PhaseFieldProblem = PROBLEM, rtol: float = 1e-12) -> float:
    """Run ``profile_step`` and the diffusion kernel once and compare with the numpy twins;
    returns the largest deviation relative to the fields' scale (RuntimeError above rtol)."""
    arrays = ProfileStepArrays(n, problem)
    arrays.two_field_step()
    xi_star, geom, geom2 = numpy_profile_step(arrays.xi, arrays.wall_active, arrays.mask, problem)
    _, c_new = numpy_explicit_step(arrays.xi, arrays.c, problem)
    dev = max(np.max(np.abs(arrays.xi_star - xi_star)),
              np.max(np.abs(arrays.geom - geom)) * problem.lam,
              np.max(np.abs(arrays.geom2 - geom2)) * problem.lam**2,
              np.max(np.abs(arrays.c_new - c_new)))
    if not dev <= rtol:
        raise RuntimeError(f"fastnai's profile_step / diffusion disagree with numpy at {n}^2: "
                           f"{dev:.3e} > {rtol:g}; the comparison would be invalid")
    return float(dev)


# --- FiPy ----------------------------------------------------------------------------------


def fipy_available() -> bool:
    """True when FiPy is installed."""
    return importlib.util.find_spec("fipy") is not None


def require_fipy() -> None:
    """Raise NotImplementedError (asv: skip) when FiPy is not installed."""
    if not fipy_available():
        raise NotImplementedError("FiPy is not installed")


def _import_fipy():
    try:
        # FiPy 4.0 imports numpy.core, a DeprecationWarning under numpy 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import fipy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotImplementedError(f"FiPy is not importable: {exc}") from exc
    return fipy


class FipyAllenCahn:
    """The explicit step in FiPy on an ``n x n`` ``PeriodicGrid2D``: one equation per field,
    each solved with ``eq.solve(var, dt)`` (FiPy's default solver; the matrix is diagonal)."""

    def __init__(self, n: int, problem: PhaseFieldProblem = PROBLEM):
        fipy = _import_fipy()
        p = problem
        self.n = n
        self.problem = problem
        self.dt = p.dt
        xi0, c0 = initial_state(n, p)
        self.mesh = fipy.PeriodicGrid2D(nx=n, ny=n, dx=p.dx, dy=p.dx)
        # FiPy numbers cells i + j nx: the C-order ravel of an (ny, nx) array
        self.xi = fipy.CellVariable(mesh=self.mesh, value=xi0.ravel())
        self.c = fipy.CellVariable(mesh=self.mesh, value=c0.ravel())
        xi = self.xi
        well = xi * (1.0 - xi) * (1.0 - 2.0 * xi)
        self.eq_xi = (fipy.TransientTerm(var=xi)
                      == fipy.ExplicitDiffusionTerm(coeff=p.mobility, var=xi)
                      - (p.mobility / p.lam**2) * well)
        self.eq_c = (fipy.TransientTerm(var=self.c)
                     == fipy.ExplicitDiffusionTerm(coeff=p.diffusivity, var=self.c))

    def set_state(self, xi: np.ndarray, c: np.ndarray) -> None:
        self.xi.setValue(np.ravel(xi))
        self.c.setValue(np.ravel(c))

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        return (np.array(self.xi.value).reshape(n, n), np.array(self.c.value).reshape(n, n))

    def step_allen_cahn(self) -> None:
        """One explicit step of the Allen-Cahn field."""
        self.eq_xi.solve(var=self.xi, dt=self.dt)

    def step_diffusion(self) -> None:
        """One explicit step of the salt field."""
        self.eq_c.solve(var=self.c, dt=self.dt)

    def step(self) -> None:
        """One step of both fields."""
        self.step_allen_cahn()
        self.step_diffusion()


def check_fipy(model: FipyAllenCahn, atol: float = 1e-10) -> float:
    """One FiPy step of both fields from the initial state against :func:`numpy_explicit_step`
    (the state is reset afterwards); returns max|difference| (RuntimeError above atol)."""
    xi0, c0 = initial_state(model.n, model.problem)
    model.set_state(xi0, c0)
    model.step()
    xi1, c1 = model.state()
    ref_xi, ref_c = numpy_explicit_step(xi0, c0, model.problem)
    dev = float(max(np.max(np.abs(xi1 - ref_xi)), np.max(np.abs(c1 - ref_c))))
    model.set_state(xi0, c0)
    if not (dev <= atol and math.isfinite(dev)):
        raise RuntimeError(f"FiPy's explicit step disagrees with numpy at {model.n}^2: "
                           f"{dev:.3e} > {atol:g}; the comparison would be invalid")
    return dev
