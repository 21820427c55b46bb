"""Peer-tool reference solutions (numpy/scipy, DEVSIM, FiPy) of one 1D accumulation-layer case."""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import constants
from scipy.linalg import solve_banded


class Electrostatics:
    """Derived constants every peer problem needs; the dataclass supplies ``temperature`` [K]
    and ``eps_r``."""

    @property
    def q(self) -> float:
        """Elementary charge [C]."""
        return constants.e

    @property
    def thermal_voltage(self) -> float:
        """Thermal voltage ``V_t = k T / q`` [V]."""
        return constants.k * self.temperature / constants.e

    @property
    def eps(self) -> float:
        """Absolute permittivity [F/m]."""
        return self.eps_r * constants.epsilon_0


@dataclass(frozen=True)
class AccumulationProblem(Electrostatics):
    """Boltzmann electron accumulation layer in n-type anatase TiO2 (SI units).

    Solves ``eps * psi'' = -q * (N_D - n)`` with ``n = N_C * exp(psi / V_t)`` on
    ``0 <= x <= L``, ``psi(0) = psi_c`` (metal contact) and ``psi'(L) = 0``.

    Parameters
    ----------
    temperature : float
        Lattice temperature [K].
    eps_r : float
        Relative permittivity of TiO2.
    donor_density : float
        Ionised donor density ``N_D`` [m^-3].
    m_eff : float
        Density-of-states effective mass in units of ``m_e``.
    band_bending : float
        Contact potential above the neutral bulk, ``psi_c - psi_b`` [V].
    length : float
        Domain length ``L`` [m].
    newton_tol : float
        Newton stops when ``max|delta psi| / V_t <= newton_tol``.
    max_iter : int
        Newton iteration cap.
    """

    temperature: float = 298.15
    eps_r: float = 40.0
    donor_density: float = 1e24
    m_eff: float = 0.094
    band_bending: float = 0.2
    length: float = 100e-9
    newton_tol: float = 1e-10
    max_iter: int = 100

    @property
    def n_c(self) -> float:
        """Conduction-band effective density of states ``N_C`` [m^-3]."""
        kt = constants.k * self.temperature
        return 2.0 * (2.0 * math.pi * self.m_eff * constants.m_e * kt / constants.h**2) ** 1.5

    @property
    def psi_b(self) -> float:
        """Neutral-bulk potential ``V_t ln(N_D / N_C)`` [V]."""
        return self.thermal_voltage * math.log(self.donor_density / self.n_c)

    @property
    def psi_c(self) -> float:
        """Contact potential ``psi_b + band_bending`` [V]."""
        return self.psi_b + self.band_bending

    def spacing(self, n_nodes: int) -> float:
        """Uniform node spacing ``h = L / (n_nodes - 1)`` [m]."""
        if n_nodes < 3:
            raise ValueError(f"n_nodes must be >= 3, got {n_nodes}")
        return self.length / (n_nodes - 1)

    def initial_guess(self, n_nodes: int) -> np.ndarray:
        """Flat bulk potential with the contact value at node 0 [V]."""
        psi = np.full(n_nodes, self.psi_b)
        psi[0] = self.psi_c
        return psi

    def semi_infinite_sheet_charge(self) -> float:
        """Continuum ``eps * E(0)`` for ``L -> infinity`` [C/m^2] (analytic check).

        Notes
        -----
        First integral of Poisson's equation:
        ``(eps E)^2 = 2 eps q N_D V_t (exp(u) - 1 - u)`` with ``u = band_bending / V_t``.
        """
        vt = self.thermal_voltage
        u = self.band_bending / vt
        return math.sqrt(2.0 * self.eps * self.q * self.donor_density * vt * (math.expm1(u) - u))


PROBLEM = AccumulationProblem()


def numpy_accumulation(n_nodes: int, problem: AccumulationProblem = PROBLEM) -> dict:
    """Solve the case with vertex-centred finite volumes and undamped Newton (numpy/scipy).

    Parameters
    ----------
    n_nodes : int
        Number of mesh nodes, both ends included.
    problem : AccumulationProblem, optional
        Case parameters.

    Returns
    -------
    dict
        ``x`` (nodes, m), ``psi`` (V), ``n_iter`` (Newton updates applied),
        ``sheet_charge`` (``eps * E(0)``, C/m^2), ``converged``, and wall times
        ``t_setup`` / ``t_solve`` (s).

    Raises
    ------
    RuntimeError
        If Newton does not converge within ``problem.max_iter`` updates.
    """
    t0 = time.perf_counter()
    p = problem
    n_nodes = int(n_nodes)
    h = p.spacing(n_nodes)
    vt, q, eps = p.thermal_voltage, p.q, p.eps
    x = np.linspace(0.0, p.length, n_nodes)
    psi = p.initial_guess(n_nodes)
    # Unknowns are psi[1:]; the Dirichlet node 0 is eliminated. Box volumes: h, last h/2.
    vol = np.full(n_nodes - 1, h)
    vol[-1] = 0.5 * h
    g = eps / h
    ab = np.empty((3, n_nodes - 1))
    t1 = time.perf_counter()

    converged = False
    n_iter = 0
    while n_iter < p.max_iter:
        dens = p.n_c * np.exp(psi[1:] / vt)
        flux = g * np.diff(psi)  # eps * psi' on each edge
        res = np.empty(n_nodes - 1)
        res[:-1] = flux[1:] - flux[:-1]
        res[-1] = -flux[-1]
        res += vol * q * (p.donor_density - dens)
        ab[0, 1:] = g
        ab[1] = -2.0 * g - vol * q * dens / vt
        ab[1, -1] += g
        ab[2, :-1] = g
        delta = solve_banded((1, 1), ab, -res, overwrite_ab=True, check_finite=False)
        psi[1:] += delta
        n_iter += 1
        if np.max(np.abs(delta)) / vt <= p.newton_tol:
            converged = True
            break
    t2 = time.perf_counter()
    if not converged:
        raise RuntimeError(f"numpy Newton did not converge in {p.max_iter} iterations")

    rho0 = q * (p.donor_density - p.n_c * math.exp(psi[0] / vt))
    e0 = -((psi[1] - psi[0]) / h + 0.5 * h * rho0 / eps)
    return {
        "x": x,
        "psi": psi,
        "n_iter": n_iter,
        "sheet_charge": eps * e0,
        "converged": converged,
        "t_setup": t1 - t0,
        "t_solve": t2 - t1,
    }


_DEVSIM_IDS = itertools.count()


def devsim_accumulation(n_nodes: int, problem: AccumulationProblem = PROBLEM) -> dict:
    """Solve the case with DEVSIM (native box method, node charge + edge flux).

    The mesh is passed to DEVSIM as explicit coordinates (``create_gmsh_mesh``)
    because its 1D mesh-line generator accumulates round-off and can gain or lose
    nodes on fine uniform meshes. Each call builds a uniquely named mesh and
    device and deletes both afterwards, so repeated calls in one process work.

    Parameters
    ----------
    n_nodes : int
        Number of mesh nodes, both ends included.
    problem : AccumulationProblem, optional
        Case parameters.

    Returns
    -------
    dict
        Same keys as :func:`numpy_accumulation`; ``n_iter`` counts DEVSIM
        Newton iterations (linear solves).

    Raises
    ------
    NotImplementedError
        If DEVSIM is not importable.
    RuntimeError
        If DEVSIM's Newton does not converge within ``problem.max_iter`` iterations.

    Notes
    -----
    Sets the global DEVSIM parameter ``debug_level`` to ``"info"`` and discards
    DEVSIM's log (written to ``sys.stdout``) while the function runs.
    """
    try:
        import devsim
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotImplementedError(f"DEVSIM is not installed: {exc}") from exc

    p = problem
    n_nodes = int(n_nodes)
    h = p.spacing(n_nodes)
    vt = p.thermal_voltage
    uid = next(_DEVSIM_IDS)
    mesh, dev, reg = f"fastnai_peer_mesh_{uid}", f"fastnai_peer_dev_{uid}", "tio2"
    x = np.linspace(0.0, p.length, n_nodes)
    sink = io.StringIO()  # DEVSIM writes its progress log to sys.stdout
    try:
        with contextlib.redirect_stdout(sink):
            t0 = time.perf_counter()
            devsim.set_parameter(name="debug_level", value="info")
            coords = np.zeros((n_nodes, 3))
            coords[:, 0] = x
            lines = np.empty((n_nodes - 1, 4), dtype=np.int64)
            lines[:, 0] = 1  # edge element
            lines[:, 1] = 2  # physical name index: "bulk"
            lines[:, 2] = np.arange(n_nodes - 1)
            lines[:, 3] = np.arange(1, n_nodes)
            points = [0, 0, 0, 0, 1, n_nodes - 1]  # point elements: "contact", "far"
            devsim.create_gmsh_mesh(
                mesh=mesh,
                coordinates=coords.ravel().tolist(),
                elements=points + lines.ravel().tolist(),
                physical_names=["contact", "far", "bulk"],
            )
            devsim.add_gmsh_region(mesh=mesh, gmsh_name="bulk", region=reg, material="TiO2")
            # DEVSIM needs a contact at both ends of a 1D mesh; "far" gets no contact
            # equation, so the bulk equation (half box, zero flux) applies there.
            for name in ("contact", "far"):
                devsim.add_gmsh_contact(
                    mesh=mesh, gmsh_name=name, region=reg, name=name, material="metal"
                )
            devsim.finalize_mesh(mesh=mesh)
            devsim.create_device(mesh=mesh, device=dev)

            params = {
                "q": p.q,
                "V_t": vt,
                "eps": p.eps,
                "N_D": p.donor_density,
                "N_C": p.n_c,
                "psi_c": p.psi_c,
            }
            for name, value in params.items():
                devsim.set_parameter(device=dev, name=name, value=value)
            devsim.node_solution(device=dev, region=reg, name="Potential")
            devsim.set_node_values(
                device=dev, region=reg, name="Potential", values=p.initial_guess(n_nodes).tolist()
            )
            neg_charge = "-q*(N_D - N_C*exp(Potential/V_t))"  # DEVSIM node model is -rho
            devsim.node_model(device=dev, region=reg, name="NegCharge", equation=neg_charge)
            devsim.node_model(
                device=dev,
                region=reg,
                name="NegCharge:Potential",
                equation=f"diff({neg_charge}, Potential)",
            )
            devsim.edge_from_node_model(device=dev, region=reg, node_model="Potential")
            devsim.edge_model(
                device=dev,
                region=reg,
                name="DField",
                equation="eps*(Potential@n0 - Potential@n1)*EdgeInverseLength",
            )
            devsim.edge_model(
                device=dev, region=reg, name="DField:Potential@n0", equation="eps*EdgeInverseLength"
            )
            devsim.edge_model(
                device=dev,
                region=reg,
                name="DField:Potential@n1",
                equation="-eps*EdgeInverseLength",
            )
            devsim.equation(
                device=dev,
                region=reg,
                name="PotentialEquation",
                variable_name="Potential",
                node_model="NegCharge",
                edge_model="DField",
            )
            devsim.contact_node_model(
                device=dev, contact="contact", name="contact_bc", equation="Potential - psi_c"
            )
            devsim.contact_node_model(
                device=dev, contact="contact", name="contact_bc:Potential", equation="1"
            )
            devsim.contact_equation(
                device=dev, contact="contact", name="PotentialEquation", node_model="contact_bc"
            )
            t1 = time.perf_counter()
            # DEVSIM converges when BOTH the max |update| < absolute_error AND the max
            # relative update < relative_error; disable the latter to match numpy.
            info = devsim.solve(
                type="dc",
                absolute_error=p.newton_tol * vt,
                relative_error=1e300,
                maximum_iterations=p.max_iter,
                info=True,
            )
            t2 = time.perf_counter()
            psi = np.array(devsim.get_node_model_values(device=dev, region=reg, name="Potential"))
    finally:
        with contextlib.redirect_stdout(sink), contextlib.suppress(devsim.error):
            devsim.delete_device(device=dev)
        with contextlib.redirect_stdout(sink), contextlib.suppress(devsim.error):
            devsim.delete_mesh(mesh=mesh)

    if not info["converged"]:
        raise RuntimeError(f"DEVSIM Newton did not converge in {p.max_iter} iterations")

    rho0 = p.q * (p.donor_density - p.n_c * math.exp(psi[0] / vt))
    e0 = -((psi[1] - psi[0]) / h + 0.5 * h * rho0 / p.eps)
    return {
        "x": x,
        "psi": psi,
        "n_iter": len(info["iterations"]),
        "sheet_charge": p.eps * e0,
        "converged": bool(info["converged"]),
        "t_setup": t1 - t0,
        "t_solve": t2 - t1,
    }


def fipy_accumulation(n_nodes: int, problem: AccumulationProblem = PROBLEM) -> dict:
    """Solve the case with FiPy (cell-centred finite volumes, Newton by linearised sweeps).

    ``n_nodes - 1`` cells of width ``h`` fill ``[0, L]``, so cell faces sit on the
    numpy/DEVSIM nodes and the Dirichlet value is imposed on the left face. The
    source ``rho(psi)`` is linearised about the previous sweep (explicit part plus
    ``ImplicitSourceTerm`` of ``drho/dpsi``), which makes each sweep a Newton step.
    Sweeps stop when ``max|delta psi| / V_t <= newton_tol`` or when the update
    has not decreased for 3 sweeps (round-off floor), in which case ``converged``
    is False. FiPy solves for the new ``psi`` rather than for the correction, so
    its round-off floor is much higher than numpy's: updates of 3e-11 to 7e-11
    V_t at 1e5 nodes, just below the default ``newton_tol``. FiPy assembles
    lazily, so ``t_solve`` includes every matrix build and ``t_setup`` is small.

    Parameters
    ----------
    n_nodes : int
        Number of mesh nodes of the vertex-centred peers; FiPy uses ``n_nodes - 1`` cells.
    problem : AccumulationProblem, optional
        Case parameters.

    Returns
    -------
    dict
        Same keys as :func:`numpy_accumulation`; ``x`` and ``psi`` are at cell
        centres, ``n_iter`` counts sweeps and ``sheet_charge`` is ``eps`` times
        the field from FiPy's discrete flux through the contact face.

    Raises
    ------
    NotImplementedError
        If FiPy is not importable.
    """
    try:
        # FiPy 4.0 imports numpy.core, a DeprecationWarning under numpy 2 (an error
        # under pytest's filterwarnings = ["error"]).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import fipy
            from fipy.solvers.scipy import LinearLUSolver
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotImplementedError(f"FiPy is not installed: {exc}") from exc

    t0 = time.perf_counter()
    p = problem
    n_nodes = int(n_nodes)
    h = p.spacing(n_nodes)
    vt, q, eps = p.thermal_voltage, p.q, p.eps
    mesh = fipy.Grid1D(nx=n_nodes - 1, dx=h)
    psi = fipy.CellVariable(mesh=mesh, value=p.psi_b)
    psi.constrain(p.psi_c, mesh.facesLeft)  # right face: FiPy's default zero flux
    dens = p.n_c * fipy.numerix.exp(psi / vt)
    rho = q * (p.donor_density - dens)
    drho = -q * dens / vt
    eq = fipy.DiffusionTerm(coeff=eps) + rho - drho * psi + fipy.ImplicitSourceTerm(coeff=drho) == 0
    # FiPy's default solver (LU, RHS criterion, tol 1e-5) skips the solve once
    # ||L psi - b|| <= 1e-5 ||b||, returning a zero update long before Newton has
    # converged (silent false convergence); demand an LU solve every sweep.
    solver = LinearLUSolver(tolerance=1e-15, iterations=1)
    t1 = time.perf_counter()

    converged = False
    n_iter = 0
    best = math.inf
    stalls = 0
    while n_iter < p.max_iter:
        old = psi.value.copy()
        eq.sweep(var=psi, solver=solver)
        n_iter += 1
        update = float(np.max(np.abs(psi.value - old))) / vt
        if update <= p.newton_tol:
            converged = True
            break
        if update < best:
            best, stalls = update, 0
        else:
            stalls += 1
            if stalls >= 3:
                break
    t2 = time.perf_counter()

    psi_cells = np.array(psi.value)
    e0 = 2.0 * (p.psi_c - psi_cells[0]) / h
    return {
        "x": np.array(mesh.cellCenters[0]),
        "psi": psi_cells,
        "n_iter": n_iter,
        "sheet_charge": eps * e0,
        "converged": converged,
        "t_setup": t1 - t0,
        "t_solve": t2 - t1,
    }


def _main() -> None:
    """Run all peers at 1e3, 1e4, 1e5 nodes, check agreement and print timings."""
    peers = {
        "numpy": numpy_accumulation,
        "devsim": devsim_accumulation,
        "fipy": fipy_accumulation,
    }
    q_inf = PROBLEM.semi_infinite_sheet_charge()
    print(
        f"psi_b = {PROBLEM.psi_b:.12f} V, psi_c = {PROBLEM.psi_c:.12f} V, V_t = "
        f"{PROBLEM.thermal_voltage:.12f} V, N_C = {PROBLEM.n_c:.6e} m^-3"
    )
    print(f"semi-infinite analytic eps*E(0) = {q_inf:.10e} C/m^2")
    rows = []
    for n_nodes in (1_000, 10_000, 100_000):
        results = {}
        for name, func in peers.items():
            runs = []
            for _ in range(3):
                try:
                    runs.append(func(n_nodes))
                except NotImplementedError as exc:
                    print(f"{name}: skipped ({exc})")
                    break
            if runs:
                res = runs[-1]
                res["t_solve"] = min(r["t_solve"] for r in runs)
                res["t_setup"] = min(r["t_setup"] for r in runs)
                results[name] = res
                rows.append((n_nodes, name, res))
        ref = results["numpy"]
        print(f"\nn_nodes = {n_nodes}")
        for name, res in results.items():
            print(
                f"  {name:6s} sheet_charge = {res['sheet_charge']:.12e} C/m^2 "
                f"(rel. to numpy {res['sheet_charge'] / ref['sheet_charge'] - 1:+.3e}, "
                f"to analytic {res['sheet_charge'] / q_inf - 1:+.3e})"
            )
        if "devsim" in results:
            diff = np.max(np.abs(results["devsim"]["psi"] - ref["psi"]))
            print(f"  max|psi_devsim - psi_numpy| = {diff:.3e} V")
        if "fipy" in results:
            fp = results["fipy"]
            interp = np.interp(fp["x"], ref["x"], ref["psi"])
            print(
                f"  max|psi_fipy - interp(psi_numpy)| = {np.max(np.abs(fp['psi'] - interp)):.3e} V"
            )

    print("\n n_nodes  tool     setup [s]   solve min-of-3 [s]  n_iter  converged")
    for n_nodes, name, res in rows:
        print(
            f" {n_nodes:7d}  {name:6s}  {res['t_setup']:10.4f}  {res['t_solve']:18.4f}  "
            f"{res['n_iter']:6d}  {res['converged']}"
        )


if __name__ == "__main__":
    _main()
