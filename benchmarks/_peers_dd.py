"""Peer-tool reference solutions (numpy/scipy, DEVSIM) of one transient 1D mixed-conductor step.

The problem (:class:`DDProblem`) is a 100 nm slab of a mixed conductor with Boltzmann electrons
``n`` and one mobile +1 ion species ``c`` between two metal contacts, x = 0 and x = L, that are
ohmic for electrons and blocking for ions. At t = 0 the slab is neutral and in equilibrium; a
0.5 V step is then applied to the contact at x = 0 and the response is integrated by implicit
(backward) Euler. Both peers solve the *same* discrete equations on the same uniform mesh, node
for node, so they must agree to round-off and Newton tolerance:

Box method (vertex-centred finite volumes), node k at x_k = k h, box volume ``vol_k = h``
(``h / 2`` at the two end nodes), per unit area, unknowns ``psi_k, n_k, c_k`` (three per node)::

    Poisson:    sum_edges eps (psi_k - psi_j) / h  -  vol_k q (c_k - n_k + N_D - N_A) = 0
    electrons:  vol_k (n_k - n_k^old) / dt  +  sum_edges F_n(k -> j) = 0
    ions:       vol_k (c_k - c_k^old) / dt  +  sum_edges F_c(k -> j) = 0

with Scharfetter-Gummel particle fluxes along the edge k -> k+1, ``u = (psi_(k+1) - psi_k) / V_t``
and ``B(u) = u / (e^u - 1)``::

    F_n = (D_n / h) [ n_k B(-u) - n_(k+1) B(u) ]        (electrons, charge -q)
    F_c = (D_c / h) [ c_k B(u)  - c_(k+1) B(-u) ]       (ions, charge +q)

    psi_k, n_k, c_k           psi_(k+1), n_(k+1), c_(k+1)
          o--------- F_n, F_c --------->o
          |<------------ h ------------>|

Contacts: ``psi(0) = V_step``, ``psi(L) = 0``, ``n = N_D`` at both (Dirichlet rows replace the
Poisson and electron rows there); the ion rows at the end nodes keep their half box and have no
boundary flux (blocking). Newton is undamped and stops by DEVSIM's own test (see
:attr:`DDProblem.newton_rtol`), so the iteration counts are comparable.

References: D. L. Scharfetter and H. K. Gummel, IEEE Trans. Electron Devices 16, 64 (1969),
doi:10.1109/T-ED.1969.16566; DEVSIM, J. E. Sanchez, https://devsim.org.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import splu

from ._peers import Electrostatics


@dataclass(frozen=True)
class DDProblem(Electrostatics):
    """Electrons plus one mobile +1 ion species in a 1D mixed conductor (SI units).

    The fixed charges are ionised donors ``N_D`` and a fixed negative background ``N_A`` equal to
    the initial ion density ``c0`` (the immobile counter-charge of the mobile ions), so the
    initial state ``n = N_D``, ``c = c0``, ``psi = 0`` is neutral and, with ``psi = 0`` at both
    contacts, in equilibrium. The potential reference is that state: Boltzmann electrons then
    read ``n = N_D exp((psi - phi_n) / V_t)`` and ions ``c = c0 exp(-(psi - phi_c) / V_t)``
    (``phi``: quasi-Fermi potentials, 0 at t = 0). The ohmic contacts fix ``n`` at its
    neutral-equilibrium value ``N_D``.

    Parameters
    ----------
    temperature : float
        Lattice temperature [K].
    eps_r : float
        Relative permittivity.
    donor_density : float
        Fixed ionised donors ``N_D`` [m^-3] (1e18 cm^-3).
    ion_density : float
        Initial uniform ion density ``c0`` and fixed negative background ``N_A`` [m^-3]
        (1e19 cm^-3).
    electron_mobility : float
        ``mu_n`` [m^2 V^-1 s^-1] (1 cm^2/Vs); ``D_n = mu_n V_t``.
    ion_diffusivity : float
        ``D_c`` [m^2 s^-1] (1e-11 cm^2/s); ``mu_c = D_c / V_t`` (Einstein).
    length : float
        Slab thickness ``L`` [m].
    step_voltage : float
        Potential applied at x = 0 for t > 0 [V]; x = L stays at 0.
    newton_rtol : float
        Newton stops when ``sum_v max_k |du_(v,k)| / (|u_(v,k)| + 1e-10) < newton_rtol`` over the
        three variables ``v`` (DEVSIM's ``relative_error`` test, its absolute test disabled).
    max_iter : int
        Newton iteration cap per time step.

    Notes
    -----
    Time scales: the electrons' dielectric relaxation time ``eps / (q mu_n N_D)`` is 22 ps and
    their transit time ``L^2 / D_n`` 3.9 ns, both far below a 20 ns step, so after the first
    step the electrons sit in their steady state (``n = N_D``, linear ``psi``, on which the SG
    fluxes are linear in ``psi``) and each step is nearly linear: 2 Newton iterations at
    ``newton_rtol = 1e-10``. The ions move ``sqrt(D_c dt)`` = 0.0045 nm per step (Debye length
    2.3 nm), so ``c`` changes only in a layer a few hundredths of a nm thick at the blocking
    contacts, resolved by the mesh only near 1e5 nodes; after 10 steps ``max|c - c0| / c0`` is
    8e-4 (1e3 nodes) to 3e-3 (1e5 nodes), and the ion inventory is conserved to round-off.
    """

    temperature: float = 300.0
    eps_r: float = 40.0
    donor_density: float = 1e24
    ion_density: float = 1e25
    electron_mobility: float = 1e-4
    ion_diffusivity: float = 1e-15
    length: float = 100e-9
    step_voltage: float = 0.5
    newton_rtol: float = 1e-10
    max_iter: int = 30

    @property
    def electron_diffusivity(self) -> float:
        """``D_n = mu_n V_t`` [m^2/s]."""
        return self.electron_mobility * self.thermal_voltage

    @property
    def ion_mobility(self) -> float:
        """``mu_c = D_c / V_t`` [m^2 V^-1 s^-1]."""
        return self.ion_diffusivity / self.thermal_voltage

    @property
    def fixed_charge_density(self) -> float:
        """Net fixed charge ``N_D - N_A = N_D - c0`` in units of q [m^-3]."""
        return self.donor_density - self.ion_density

    def spacing(self, n_nodes: int) -> float:
        """Uniform node spacing ``h = L / (n_nodes - 1)`` [m]."""
        if n_nodes < 3:
            raise ValueError(f"n_nodes must be >= 3, got {n_nodes}")
        return self.length / (n_nodes - 1)

    def initial_state(self, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Neutral equilibrium at t = 0: ``psi = 0``, ``n = N_D``, ``c = c0``."""
        return (
            np.zeros(n_nodes),
            np.full(n_nodes, self.donor_density),
            np.full(n_nodes, self.ion_density),
        )


PROBLEM = DDProblem()

#: DEVSIM's floor in its relative update ``|du| / (|u| + 1e-10)`` (Equation.cc ``defminError``).
_REL_ERROR_FLOOR = 1e-10


def _bernoulli(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``B(u) = u / (e^u - 1)`` and ``dB/du = B (1 - B) / u - B``, series for ``|u| < 1e-2``."""
    small = np.abs(u) < 1e-2
    us = np.where(small, 1.0, u)  # dummy value where the series is used
    with np.errstate(over="ignore"):  # e^u = inf for u > 709 gives B = 0, dB/du = 0
        b = us / np.expm1(us)
    db = b * (1.0 - b) / us - b
    u2 = u * u
    b_ser = 1.0 - 0.5 * u + u2 / 12.0 * (1.0 - u2 / 60.0 * (1.0 - u2 / 42.0))
    db_ser = -0.5 + u / 6.0 * (1.0 - u2 / 30.0 * (1.0 - u2 / 28.0))
    return np.where(small, b_ser, b), np.where(small, db_ser, db)


def _csc_pattern(n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparsity of the interleaved block-tridiagonal Jacobian (row/column ``3 k + v``).

    Column ``(k, v)`` holds rows ``(k-1, e)``, ``(k, e)``, ``(k+1, e)`` for ``e = 0, 1, 2`` in
    ascending order; returns the mask into the padded ``(n_nodes, 3, 9)`` value array, the row
    indices and the column pointers.
    """
    k = np.arange(n_nodes)[:, None, None]
    offs = np.repeat(np.array([-1, 0, 1]), 3)[None, None, :]
    eqs = np.tile(np.arange(3), 3)[None, None, :]
    node = k + offs + np.zeros((1, 3, 1), dtype=np.int64)
    mask = ((node >= 0) & (node < n_nodes)).ravel()
    rows = (3 * node + eqs).ravel()[mask]
    counts = mask.reshape(3 * n_nodes, 9).sum(axis=1)
    indptr = np.concatenate(([0], np.cumsum(counts)))
    return mask, rows.astype(np.int32), indptr.astype(np.int32)


def numpy_dd_step_solver(n_nodes: int, dt: float, n_steps: int, problem: DDProblem = PROBLEM) -> dict:
    """Integrate the voltage step with undamped Newton on the full 3N system (numpy/scipy).

    Each Newton iteration assembles the residual and the exact Jacobian (block tridiagonal,
    interleaved unknowns ``[psi_k, n_k, c_k]``) as a ``scipy.sparse`` CSC matrix, scales its
    columns by ``(V_t, N_D, c0)`` and its rows by their largest entry (round-off only: Newton is
    invariant under both), and solves it with SuperLU (``splu``).

    Parameters
    ----------
    n_nodes : int
        Number of mesh nodes, both ends included.
    dt : float
        Time step [s].
    n_steps : int
        Number of implicit Euler steps.
    problem : DDProblem, optional
        Case parameters.

    Returns
    -------
    dict
        ``x`` (m), ``psi`` (V), ``n``, ``c`` (m^-3) after the last step,
        ``newton_iterations`` (per step), ``t_step`` (wall time per step, s, assembly and
        solves included), ``t_setup`` (s).

    Raises
    ------
    RuntimeError
        If Newton does not converge within ``problem.max_iter`` iterations in a step.
    """
    t0 = time.perf_counter()
    p = problem
    n_nodes = int(n_nodes)
    h = p.spacing(n_nodes)
    vt, q, eps = p.thermal_voltage, p.q, p.eps
    gn, gc, gp = p.electron_diffusivity / h, p.ion_diffusivity / h, eps / h
    n_fix = p.fixed_charge_density
    x = np.linspace(0.0, p.length, n_nodes)
    vol = np.full(n_nodes, h)
    vol[[0, -1]] = 0.5 * h
    psi, n, c = p.initial_state(n_nodes)
    mask, rows, indptr = _csc_pattern(n_nodes)
    n_unk = 3 * n_nodes
    col_scale = np.tile([vt, p.donor_density, p.ion_density], n_nodes)
    ends = np.array([0, n_nodes - 1])
    bc_psi = np.array([p.step_voltage, 0.0])
    bc_n = np.full(2, p.donor_density)
    dg = np.empty((n_nodes, 3, 3))  # d res_k / d u_k       [node, equation, variable]
    lo = np.empty((n_nodes, 3, 3))  # d res_k / d u_(k-1)
    up = np.empty((n_nodes, 3, 3))  # d res_k / d u_(k+1)
    res = np.empty((n_nodes, 3))
    t1 = time.perf_counter()

    iterations, t_step = [], []
    for _ in range(int(n_steps)):
        ts = time.perf_counter()
        n_old, c_old = n.copy(), c.copy()
        converged = False
        n_iter = 0
        while n_iter < p.max_iter:
            u = np.diff(psi) / vt
            bp, dbp = _bernoulli(u)
            bm = bp + u  # B(-u) = B(u) + u, as in the DEVSIM models
            f_p = gp * (psi[:-1] - psi[1:])
            f_n = gn * (n[:-1] * bm - n[1:] * bp)
            f_c = gc * (c[:-1] * bp - c[1:] * bm)
            # d F / d u with u = (psi_(k+1) - psi_k) / V_t and d B(-u) / du = B'(u) + 1
            dfn_du = gn * (n[:-1] * (dbp + 1.0) - n[1:] * dbp)
            dfc_du = gc * (c[:-1] * dbp - c[1:] * (dbp + 1.0))

            res[:, 0] = -vol * q * (c - n + n_fix)
            res[:, 1] = vol * (n - n_old) / dt
            res[:, 2] = vol * (c - c_old) / dt
            for v, f in enumerate((f_p, f_n, f_c)):
                res[:-1, v] += f
                res[1:, v] -= f

            dg.fill(0.0)
            lo.fill(0.0)
            up.fill(0.0)
            dg[:, 0, 1] = vol * q
            dg[:, 0, 2] = -vol * q
            dg[:, 1, 1] = vol / dt
            dg[:, 2, 2] = vol / dt
            # edge k -> k+1: d F / d(psi_k, n_k or c_k) and d F / d(psi_(k+1), n_(k+1) or c_(k+1))
            d_left = np.zeros((n_nodes - 1, 3, 3))
            d_right = np.zeros((n_nodes - 1, 3, 3))
            d_left[:, 0, 0], d_right[:, 0, 0] = gp, -gp
            d_left[:, 1, 0], d_right[:, 1, 0] = -dfn_du / vt, dfn_du / vt
            d_left[:, 1, 1], d_right[:, 1, 1] = gn * bm, -gn * bp
            d_left[:, 2, 0], d_right[:, 2, 0] = -dfc_du / vt, dfc_du / vt
            d_left[:, 2, 2], d_right[:, 2, 2] = gc * bp, -gc * bm
            dg[:-1] += d_left
            up[:-1] = d_right
            dg[1:] -= d_right
            lo[1:] = -d_left
            # Dirichlet rows: psi and n at both contacts
            for e, bc, var in ((0, bc_psi, psi), (1, bc_n, n)):
                res[ends, e] = var[ends] - bc
                dg[ends, e, :] = 0.0
                lo[ends, e, :] = 0.0
                up[ends, e, :] = 0.0
                dg[ends, e, e] = 1.0

            # scale columns by the variable scales and rows by their largest entry
            vs = col_scale[:3]
            dg *= vs
            lo *= vs
            up *= vs
            row_max = np.maximum(np.abs(dg).max(axis=2), np.abs(lo).max(axis=2))
            row_scale = 1.0 / np.maximum(row_max, np.abs(up).max(axis=2))
            dg *= row_scale[:, :, None]
            lo *= row_scale[:, :, None]
            up *= row_scale[:, :, None]
            # column (k, v): rows (k-1, :) from up[k-1], (k, :) from dg[k], (k+1, :) from lo[k+1]
            vals = np.zeros((n_nodes, 3, 3, 3))  # [k, v, block, e]
            vals[1:, :, 0, :] = up[:-1].transpose(0, 2, 1)
            vals[:, :, 1, :] = dg.transpose(0, 2, 1)
            vals[:-1, :, 2, :] = lo[1:].transpose(0, 2, 1)
            jac = csc_matrix((vals.ravel()[mask], rows, indptr), shape=(n_unk, n_unk))
            rhs = -(res * row_scale).ravel()
            du = (splu(jac, permc_spec="NATURAL").solve(rhs) * col_scale).reshape(n_nodes, 3)
            psi += du[:, 0]
            n += du[:, 1]
            c += du[:, 2]
            n_iter += 1
            rel = sum(
                float(np.max(np.abs(du[:, v]) / (np.abs(var) + _REL_ERROR_FLOOR)))
                for v, var in enumerate((psi, n, c))
            )
            if rel < p.newton_rtol:
                converged = True
                break
        if not converged:
            raise RuntimeError(f"numpy Newton did not converge in {p.max_iter} iterations")
        iterations.append(n_iter)
        t_step.append(time.perf_counter() - ts)

    return {
        "x": x,
        "psi": psi,
        "n": n,
        "c": c,
        "newton_iterations": np.array(iterations),
        "t_step": np.array(t_step),
        "t_setup": t1 - t0,
    }


_DEVSIM_IDS = itertools.count()


def devsim_dd_step_solver(n_nodes: int, dt: float, n_steps: int, problem: DDProblem = PROBLEM) -> dict:
    """Integrate the voltage step with DEVSIM (``transient_bdf1``, its box method and PARDISO).

    The mesh is passed as explicit coordinates (``create_gmsh_mesh``), exactly as in
    ``_peers.devsim_accumulation``. Poisson has the node model ``-rho`` and the edge model
    ``eps E``; the continuity equations have the carrier densities as ``time_node_model`` and
    the SG particle fluxes (DEVSIM's built-in ``B(x)``) as edge models, with every derivative
    taken by DEVSIM's symbolic ``diff``. The contacts carry Dirichlet contact equations for
    ``Potential`` and ``Electrons``; ``Ions`` has none, so its bulk equation (half box, no
    boundary flux) holds there: blocking. A ``transient_dc`` solve at 0 V sets DEVSIM's stored
    charges at t = 0 before the step. Only the ``solve`` calls of the time steps are timed.

    Parameters
    ----------
    n_nodes : int
        Number of mesh nodes, both ends included.
    dt : float
        Time step [s].
    n_steps : int
        Number of BDF1 steps.
    problem : DDProblem, optional
        Case parameters.

    Returns
    -------
    dict
        Same keys as :func:`numpy_dd_step_solver`; ``newton_iterations`` counts DEVSIM's
        Newton iterations (linear solves) and ``t_step`` times each ``solve`` call only.

    Raises
    ------
    NotImplementedError
        If DEVSIM is not importable.
    RuntimeError
        If a DEVSIM solve does not converge.

    Notes
    -----
    DEVSIM's transient solve also fails unless the relative difference between the solved and
    the projected charge is below ``charge_error`` (default 0: every step fails), so the test is
    switched off with ``charge_error=1e300``, as is ``absolute_error`` (it adds up updates in V
    and m^-3). Sets the global DEVSIM parameter ``debug_level`` to ``"info"`` and discards
    DEVSIM's log (written to ``sys.stdout``) while the function runs.
    """
    try:
        import devsim
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotImplementedError(f"DEVSIM is not installed: {exc}") from exc

    p = problem
    n_nodes = int(n_nodes)
    p.spacing(n_nodes)
    uid = next(_DEVSIM_IDS)
    mesh, dev, reg = f"fastnai_peer_dd_mesh_{uid}", f"fastnai_peer_dd_dev_{uid}", "mixed"
    x = np.linspace(0.0, p.length, n_nodes)
    off = 1e300  # disables a DEVSIM convergence test
    tol = {"absolute_error": off, "relative_error": p.newton_rtol, "maximum_iterations": p.max_iter}
    sink = io.StringIO()  # DEVSIM writes its progress log to sys.stdout
    iterations, t_step = [], []
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
            points = [0, 0, 0, 0, 1, n_nodes - 1]  # point elements: "left", "right"
            devsim.create_gmsh_mesh(
                mesh=mesh,
                coordinates=coords.ravel().tolist(),
                elements=points + lines.ravel().tolist(),
                physical_names=["left", "right", "bulk"],
            )
            devsim.add_gmsh_region(mesh=mesh, gmsh_name="bulk", region=reg, material="mixed")
            for name in ("left", "right"):
                devsim.add_gmsh_contact(mesh=mesh, gmsh_name=name, region=reg, name=name, material="metal")
            devsim.finalize_mesh(mesh=mesh)
            devsim.create_device(mesh=mesh, device=dev)

            params = {
                "q": p.q,
                "V_t": p.thermal_voltage,
                "eps": p.eps,
                "D_n": p.electron_diffusivity,
                "D_c": p.ion_diffusivity,
                "N_D": p.donor_density,
                "N_fix": p.fixed_charge_density,
                "V_left": 0.0,
                "V_right": 0.0,
            }
            for name, value in params.items():
                devsim.set_parameter(device=dev, name=name, value=value)
            psi0, n0, c0 = p.initial_state(n_nodes)
            for name, values in (("Potential", psi0), ("Electrons", n0), ("Ions", c0)):
                devsim.node_solution(device=dev, region=reg, name=name)
                devsim.set_node_values(device=dev, region=reg, name=name, values=values.tolist())
                devsim.edge_from_node_model(device=dev, region=reg, node_model=name)

            def node_model(name: str, equation: str, variables: tuple[str, ...]) -> None:
                devsim.node_model(device=dev, region=reg, name=name, equation=equation)
                for var in variables:
                    devsim.node_model(
                        device=dev,
                        region=reg,
                        name=f"{name}:{var}",
                        equation=f"diff({equation}, {var})",
                    )

            def edge_model(name: str, equation: str, variables: tuple[str, ...]) -> None:
                devsim.edge_model(device=dev, region=reg, name=name, equation=equation)
                for var in variables:
                    for end in ("n0", "n1"):
                        devsim.edge_model(
                            device=dev,
                            region=reg,
                            name=f"{name}:{var}@{end}",
                            equation=f"diff({equation}, {var}@{end})",
                        )

            # DEVSIM's equation at node k: sum of edge models out of k (n0 -> n1) times the
            # edge couple + node_model * volume + d(time_node_model)/dt * volume = 0
            node_model("NegCharge", "-q*(Ions - Electrons + N_fix)", ("Electrons", "Ions"))
            node_model("ElectronDensity", "Electrons", ("Electrons",))
            node_model("IonDensity", "Ions", ("Ions",))
            edge_model("DField", "eps*(Potential@n0 - Potential@n1)*EdgeInverseLength", ("Potential",))
            # u = (psi_1 - psi_0) / V_t along n0 -> n1 and Bu = B(u) as edge models of their own
            # (as DEVSIM's simple_dd.py does), so B is evaluated once per edge; B(-u) = Bu + u.
            # diff() of an expression that names a model uses the model "<name>:<variable>".
            devsim.edge_model(device=dev, region=reg, name="u", equation="(Potential@n1 - Potential@n0)/V_t")
            devsim.edge_model(device=dev, region=reg, name="u:Potential@n0", equation="-1/V_t")
            devsim.edge_model(device=dev, region=reg, name="u:Potential@n1", equation="1/V_t")
            devsim.edge_model(device=dev, region=reg, name="Bu", equation="B(u)")
            devsim.edge_model(device=dev, region=reg, name="Bu:Potential@n0", equation="dBdx(u)*u:Potential@n0")
            devsim.edge_model(device=dev, region=reg, name="Bu:Potential@n1", equation="-Bu:Potential@n0")
            edge_model(
                "ElectronFlux",
                "D_n*EdgeInverseLength*(Electrons@n0*(Bu + u) - Electrons@n1*Bu)",
                ("Potential", "Electrons"),
            )
            edge_model(
                "IonFlux",
                "D_c*EdgeInverseLength*(Ions@n0*Bu - Ions@n1*(Bu + u))",
                ("Potential", "Ions"),
            )
            equations = {
                "PotentialEquation": ("Potential", {"node_model": "NegCharge", "edge_model": "DField"}),
                "ElectronContinuityEquation": (
                    "Electrons",
                    {"time_node_model": "ElectronDensity", "edge_model": "ElectronFlux"},
                ),
                "IonContinuityEquation": (
                    "Ions",
                    {"time_node_model": "IonDensity", "edge_model": "IonFlux"},
                ),
            }
            for name, (var, models) in equations.items():
                devsim.equation(
                    device=dev,
                    region=reg,
                    name=name,
                    variable_name=var,
                    variable_update="default",
                    **models,
                )
            for contact, bias in (("left", "V_left"), ("right", "V_right")):
                for eq, var, model in (
                    ("PotentialEquation", "Potential", f"Potential - {bias}"),
                    ("ElectronContinuityEquation", "Electrons", "Electrons - N_D"),
                ):
                    cname = f"{contact}_{var}_bc"
                    devsim.contact_node_model(device=dev, contact=contact, name=cname, equation=model)
                    devsim.contact_node_model(device=dev, contact=contact, name=f"{cname}:{var}", equation="1")
                    devsim.contact_equation(device=dev, contact=contact, name=eq, node_model=cname)

            info = devsim.solve(type="transient_dc", info=True, **tol)
            if not info["converged"]:
                raise RuntimeError("DEVSIM transient_dc did not converge at t = 0")
            devsim.set_parameter(device=dev, name="V_left", value=p.step_voltage)
            t1 = time.perf_counter()
            for step in range(int(n_steps)):
                ts = time.perf_counter()
                info = devsim.solve(type="transient_bdf1", tdelta=dt, charge_error=off, info=True, **tol)
                t_step.append(time.perf_counter() - ts)
                if not info["converged"]:
                    raise RuntimeError(
                        f"DEVSIM Newton did not converge in step {step + 1} "
                        f"({len(info['iterations'])} iterations)"
                    )
                iterations.append(len(info["iterations"]))
            psi, n, c = (
                np.array(devsim.get_node_model_values(device=dev, region=reg, name=name))
                for name in ("Potential", "Electrons", "Ions")
            )
    finally:
        with contextlib.redirect_stdout(sink), contextlib.suppress(devsim.error):
            devsim.delete_device(device=dev)
        with contextlib.redirect_stdout(sink), contextlib.suppress(devsim.error):
            devsim.delete_mesh(mesh=mesh)

    return {
        "x": x,
        "psi": psi,
        "n": n,
        "c": c,
        "newton_iterations": np.array(iterations),
        "t_step": np.array(t_step),
        "t_setup": t1 - t0,
    }


def _inventory(res: dict) -> float:
    """Ions per unit area, trapezoidal = box-method sum ``sum_k vol_k c_k`` [m^-2]."""
    c, h = res["c"], res["x"][1] - res["x"][0]
    return h * (c.sum() - 0.5 * (c[0] + c[-1]))


def _run(func, n_nodes: int, dt: float, n_steps: int, repeats: int) -> dict:
    """Best of ``repeats`` runs: per-step wall times are the element-wise minimum."""
    runs = [func(n_nodes, dt, n_steps) for _ in range(repeats)]
    res = runs[-1]
    res["t_step"] = np.min([r["t_step"] for r in runs], axis=0)
    res["t_setup"] = min(r["t_setup"] for r in runs)
    return res


def _main() -> None:
    """Run both peers at 1e3 and 1e4 nodes (1e5 if it fits in 60 s), compare and time them."""
    dt, n_steps = 20e-9, 10
    p = PROBLEM
    print(
        f"DD step: L = {p.length:.3g} m, V_step = {p.step_voltage} V, dt = {dt:.3g} s, "
        f"{n_steps} BDF1 steps, V_t = {p.thermal_voltage:.9f} V, newton_rtol = {p.newton_rtol:g}"
    )
    peers = {"numpy": numpy_dd_step_solver, "devsim": devsim_dd_step_solver}
    rows = []
    sizes = [(1_000, 3), (10_000, 3)]
    inventory0 = p.ion_density * p.length
    while sizes:
        n_nodes, repeats = sizes.pop(0)
        results = {}
        t_run = time.perf_counter()
        for name, func in peers.items():
            try:
                results[name] = _run(func, n_nodes, dt, n_steps, repeats)
            except NotImplementedError as exc:
                print(f"{name}: skipped ({exc})")
        t_once = (time.perf_counter() - t_run) / repeats
        print(f"\nn_nodes = {n_nodes} ({t_once:.1f} s wall per run of both, best of {repeats})")
        ref = results["numpy"]
        if "devsim" in results:
            dv = results["devsim"]
            dc_ref = np.max(np.abs(ref["c"] - p.ion_density))
            print(
                f"  max|psi_dv - psi_np| = {np.max(np.abs(dv['psi'] - ref['psi'])):.3e} V, "
                f"max|n_dv/n_np - 1| = {np.max(np.abs(dv['n'] / ref['n'] - 1.0)):.3e}, "
                f"max|c_dv/c_np - 1| = {np.max(np.abs(dv['c'] / ref['c'] - 1.0)):.3e}"
            )
            print(
                f"  max|c_dv - c_np| / max|c_np - c0| = "
                f"{np.max(np.abs(dv['c'] - ref['c'])) / dc_ref:.3e} "
                f"(ion change max|c - c0|/c0 = {dc_ref / p.ion_density:.3e})"
            )
        for name, res in results.items():
            print(f"  {name:6s} ion inventory drift = {_inventory(res) / inventory0 - 1.0:+.2e}")
            rows.append((n_nodes, name, res))
        if n_nodes == 10_000:
            if 12.0 * t_once < 60.0:
                sizes.append((100_000, 1))
            else:
                print(f"\n(1e5 nodes skipped: predicted {12.0 * t_once:.0f} s > 60 s)")

    print(
        "\n n_nodes  tool    setup [s]  step min / median [s]   Newton its per step           us/unknown/iter"
    )
    for n_nodes, name, res in rows:
        ts, its = res["t_step"], res["newton_iterations"]
        us = 1e6 * ts.sum() / its.sum() / (3 * n_nodes)
        print(
            f" {n_nodes:7d}  {name:6s} {res['t_setup']:9.4f}  {ts.min():9.5f} / {np.median(ts):9.5f}"
            f"   {' '.join(str(i) for i in its):28s}  {us:7.3f}"
        )


if __name__ == "__main__":
    _main()
