"""1D elastoplastic laminate through the thickness of a swelling film on a substrate (SPEC §3.3 (a)).

A stack of ``n_layers`` layers (substrate and film, any grading) is bonded in-plane and free as a
plate: no external force or moment. Every layer ``i`` has, in the reference configuration, the
faces ``z_faces[i]`` < ``z_faces[i+1]`` [m]; it swells through the thickness by the stretch
``lambda_i = 1 + beta_i theta_i`` (the volume change of a film bonded in-plane goes into its
thickness; SPEC §3.3), so its current thickness is ``lambda_i h_i``. The bottom face keeps its
reference position and the layers stack upward, so with the substrate below ``z = 0`` (stretch 1)
the film/substrate interface stays at ``z = 0``.

Kinematics (Kirchhoff plate, equi-biaxial, so one strain and one curvature): the in-plane strain
at current height ``z`` is

    eps(z) = eps0 + kappa z,                       eps0: strain at z = 0, kappa: curvature [m-1]

(kappa > 0 when the top fibres are longer). Each material point carries the equi-biaxial stress
``sigma_xx = sigma_yy = sigma`` with ``sigma_zz = 0``,

    sigma = M (eps - eps* - eps_p),   M = E / (1 - nu)  (biaxial modulus)

with the isotropic eigenstrain eps* of swelling (``eigenstrain``) and the in-plane plastic strain
eps_p of J2 plasticity (``biaxial_return_map``). The unknowns (eps0, kappa) solve force and moment
balance over the *current* thickness,

    F = int sigma dz = 0,        M = int sigma z dz = 0,

by Newton's method with the consistent tangent (``laminate_state``).

Quadrature: two Gauss-Legendre points per layer, placed in the current layer::

      z_faces[i+1] ----------------------  current top of layer i
                        x  q = 2i + 1        z = c_i + lambda_i h_i (1/2 + 1/(2 sqrt 3))
                        x  q = 2i            z = c_i + lambda_i h_i (1/2 - 1/(2 sqrt 3))
      z_faces[i]   ----------------------  current bottom c_i,  weights lambda_i h_i / 2

Material data (and plastic history) live on these ``n_points = 2 n_layers`` points. With
piecewise-constant elastic properties the stress is linear in z inside a layer, so F and M
(integrands of degree <= 2) are integrated exactly: a bimetal strip with its layer boundaries on
faces is exact to round-off. A smoothly graded film whose properties are sampled once per layer
(the layer midpoint) converges at second order in the layer thickness; properties sampled at the
two Gauss points converge at fourth order. The residual is continuous in (eps0, kappa) (no
per-layer elastic correction terms that jump when a point yields), so Newton converges to
round-off. History lives on points, so a plastic front may cross a layer.

Coupling to diffusion (the tridiagonal-plus-rank-2 Jacobian of SPEC §3.3 (a)). When theta at the
layers is an unknown too, the Newton system ``J d = -r`` of the coupled problem is bordered::

    [ T    U ] [d theta]     [r_theta]    T = d r_theta/d theta: tridiagonal (diffusion, n x n)
    [ V^T  K ] [d u    ] = - [R      ]    u = (eps0, kappa), R = (F, M), K = dR/du (2 x 2)

where ``V^T = dR/dtheta`` (``equilibrium_sensitivity``, 2 x n), K is ``R_STIFF_*`` and
``U = dr_theta/du`` (n x 2) is the stress-coupled flux's dependence on (eps0, kappa) through
``d sigma_q/du = T_q (1, z_q)`` (the ``tangent`` output). Eliminating
``du = -K^-1 (R + V^T d theta)`` leaves

    (T - U K^-1 V^T) d theta = -r_theta + U K^-1 R,

a tridiagonal matrix plus a rank-2 product: ``solve_tridiagonal_rank2`` with ``u = U^T`` and
``v = -(K^-1 V^T)`` solves it in O(n) (Sherman-Morrison-Woodbury). One term does not fit the
pattern: swelling of layer i lifts every point above it by ``h_i d lambda_i``, which changes
their strain by ``kappa h_i d lambda_i`` and so the stress-gradient of the flux wherever the
tangent varies between neighbours (a lower-triangular, semiseparable block). Its size relative
to the local terms is ``kappa h`` (about 1e-6 for the film on 100 um Cu), so a Newton iteration
may lag it (``equilibrium_sensitivity`` keeps it exactly for the 2 x n border).

References: graded Bi(x)Sb(1-x) film, Z. Wang et al., Adv. Sci. 9, 2201209 (2022),
doi:10.1002/advs.202201209; radial return, J. C. Simo and T. J. R. Hughes, Computational
Inelasticity (Springer 1998), doi:10.1007/b98904; Stoney, Proc. R. Soc. Lond. A 82, 172 (1909),
doi:10.1098/rspa.1909.0021; bimetal strip, S. Timoshenko, J. Opt. Soc. Am. 11, 233 (1925),
doi:10.1364/JOSA.11.000233.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._jit import JIT, JIT_INLINE
from .tridiagonal import solve_tridiagonal

# eigenstrain forms of the swelling s = beta theta (SPEC §3.3)
EIGEN_LOG = 0  # (1/3) ln(1 + s), Hencky (default)
EIGEN_ENGINEERING = 1  # (1 + s)^(1/3) - 1
EIGEN_LINEAR = 2  # s / 3 (small strain)

# plate constraint
MODE_FREE = 0  # free plate: solve eps0 and kappa from F = 0 and M = 0
MODE_FIXED_CURVATURE = 1  # kappa imposed (result[R_KAPPA]; 0: no bending): solve eps0 from F = 0
MODE_FIXED = 2  # eps0 and kappa imposed (result[R_EPS0], result[R_KAPPA]; 0, 0: rigid substrate)
# names for the two constrained modes as ``laminate_sweep`` uses them (it starts from eps0 = kappa = 0)
MODE_NO_BENDING = MODE_FIXED_CURVATURE  # kappa = 0
MODE_RIGID = MODE_FIXED  # eps0 = kappa = 0: film on a rigid substrate

# rows of ``points`` (current quadrature, from ``current_points``)
P_Z = 0  # current height of the point [m]
P_WEIGHT = 1  # current quadrature weight [m]
N_POINT_ROWS = 2

# rows of ``material`` (one column per point)
M_EIGENSTRAIN = 0  # in-plane eigenstrain eps* [1]
M_MODULUS = 1  # biaxial modulus E/(1 - nu) [Pa]
M_YIELD = 2  # initial yield stress (von Mises) [Pa]; inf: elastic
M_HARDENING = 3  # linear isotropic hardening modulus H, d sigma_Y / d alpha [Pa]
N_MATERIAL_ROWS = 4

# rows of ``history`` and ``trial`` (one column per point)
H_PLASTIC = 0  # in-plane plastic strain eps_p [1] (through thickness: -2 eps_p)
H_EQUIVALENT = 1  # equivalent plastic strain alpha = int |d eps_p^eq| [1]
N_HISTORY_ROWS = 2

# entries of ``result``
R_EPS0 = 0  # in-plane strain at current z = 0 [1] (input: initial guess)
R_KAPPA = 1  # curvature [m-1] (input: initial guess)
R_FORCE = 2  # force resultant int sigma dz [N m-1]
R_MOMENT = 3  # moment resultant about z = 0, int sigma z dz [N]
R_STIFF_A = 4  # dF/d eps0 [N m-1]
R_STIFF_B = 5  # dF/d kappa = dM/d eps0 [N]
R_STIFF_D = 6  # dM/d kappa [N m]
R_RESIDUAL = 7  # |F|/S + |M_c|/(S t/2), S = sum M w, M_c about the mid-thickness, t thickness [1]
#                 (|F|/S with a fixed curvature; 0 with both fixed)
R_ITERATIONS = 8  # Newton iterations of the solve (sum over substeps in a sweep)
R_THICKNESS = 9  # current thickness of the stack, sum of the weights [m]
N_RESULT = 10

_SINGULAR = 1e-12  # consistent tangent treated as singular below this fraction of the elastic one
_REGULARISE = 1e-6  # ... and then regularised by this fraction of the elastic stiffness
GAUSS_LO = 0.5 - 0.5 / math.sqrt(3.0)  # Gauss-Legendre points on [0, 1]
GAUSS_HI = 0.5 + 0.5 / math.sqrt(3.0)


@njit(**JIT)
def eigenstrain(swelling, form):
    """In-plane isotropic eigenstrain of a volume ratio ``1 + swelling`` (SPEC §3.3).

    ``form``: ``EIGEN_LOG`` (1/3) ln(1 + s) (Hencky, the default), ``EIGEN_ENGINEERING``
    (1 + s)^(1/3) - 1, ``EIGEN_LINEAR`` s/3. All agree to first order in s = beta theta.

    >>> round(eigenstrain(3.0, EIGEN_LOG), 12), round(eigenstrain(3.0, EIGEN_LINEAR), 12)
    (0.462098120373, 1.0)
    """
    if form == EIGEN_LOG:
        return math.log1p(swelling) / 3.0
    if form == EIGEN_ENGINEERING:
        return math.expm1(math.log1p(swelling) / 3.0)  # (1 + s)^(1/3) - 1 without cancellation
    return swelling / 3.0


@njit(**JIT_INLINE)
def biaxial_return_map(strain, eigenstrain_in_plane, plastic_strain, alpha, modulus, yield_stress, hardening):
    """Equi-biaxial J2 radial return with linear isotropic hardening: exact, closed form.

    With ``sigma_xx = sigma_yy = sigma`` and ``sigma_zz = 0`` the deviator is
    sigma (1/3, 1/3, -2/3), ``J2 = sigma^2 / 3`` and the von Mises stress is ``|sigma|``. The flow
    direction ``n = d|sigma|/d sigma_ij = sign(sigma) (1/2, 1/2, -1)`` is fixed, so the plastic
    strain rate is ``d gamma n``: ``d eps_p = sign(sigma) d gamma / 2`` in-plane,
    ``-2 d eps_p`` through the thickness (incompressible), and the equivalent plastic strain grows
    by ``d alpha = sqrt(2/3 d eps^p : d eps^p) = d gamma``. With the biaxial modulus
    ``M = E/(1 - nu)``, the backward-Euler update from the committed state (eps_p, alpha)::

        sigma_tr = M (eps - eps* - eps_p),     f_tr = |sigma_tr| - (sigma_y + H alpha)
        f_tr <= 0:  sigma = sigma_tr,  tangent = M                             (elastic)
        f_tr >  0:  d gamma = f_tr / (M/2 + H)
                    sigma = sign(sigma_tr) (sigma_y + H (alpha + d gamma))      (on the yield surface)
                    eps_p += sign(sigma_tr) d gamma / 2,   alpha += d gamma
                    tangent = d sigma / d eps = M H / (M/2 + H) = 2 M H / (M + 2 H)

    Because the flow direction cannot rotate, the return is exact for any strain increment that
    does not reverse inside the step (no time-discretisation error), and the algorithmic tangent
    equals the continuum one. Perfect plasticity is ``H = 0`` (tangent 0); ``yield_stress = inf``
    is elastic. Reverse yielding happens at ``-(sigma_y + H alpha)`` (isotropic hardening).

    Parameters
    ----------
    strain
        Total in-plane strain eps [1].
    eigenstrain_in_plane
        In-plane eigenstrain eps* [1].
    plastic_strain, alpha
        Committed in-plane plastic strain and equivalent plastic strain [1].
    modulus
        Biaxial modulus M = E/(1 - nu) [Pa].
    yield_stress, hardening
        Initial yield stress sigma_y and hardening modulus H = d sigma_Y / d alpha [Pa].

    Returns
    -------
    (stress [Pa], tangent d sigma/d eps [Pa], new plastic strain [1], new alpha [1])

    >>> s, t, ep, a = biaxial_return_map(-0.01, 0.0, 0.0, 0.0, 100e9, 0.5e9, 0.0)
    >>> float(s), float(t), round(float(ep), 12), round(float(a), 12)
    (-500000000.0, 0.0, -0.005, 0.01)
    """
    sigma_tr = modulus * (strain - eigenstrain_in_plane - plastic_strain)
    radius = yield_stress + hardening * alpha
    f_tr = abs(sigma_tr) - radius
    if not f_tr > 0.0:
        return sigma_tr, modulus, plastic_strain, alpha
    inv = 1.0 / (0.5 * modulus + hardening)  # one division per plastic point
    dgamma = f_tr * inv
    sign = 1.0 if sigma_tr > 0.0 else -1.0
    stress = sign * (radius + hardening * dgamma)
    tangent = modulus * hardening * inv
    return stress, tangent, plastic_strain + 0.5 * sign * dgamma, alpha + dgamma


@njit(**JIT)
def current_points(z_faces, stretch, points):
    """Current two-point Gauss quadrature of the stack; returns its current thickness [m].

    Layer ``i`` has current thickness ``stretch[i] (z_faces[i+1] - z_faces[i])``; the bottom face
    stays at ``z_faces[0]`` and the layers stack upward (sketch in the module docstring).

    Parameters
    ----------
    z_faces
        Reference layer faces, increasing, length n_layers + 1 [m].
    stretch
        Through-thickness stretch lambda_z = 1 + beta theta per layer (1: small strain) [1].
    points
        Output, shape (N_POINT_ROWS, 2 n_layers): rows ``P_Z`` (current height) [m] and
        ``P_WEIGHT`` (current weight) [m].

    >>> pts = np.empty((N_POINT_ROWS, 2))
    >>> round(float(current_points(np.array([0.0, 1e-6]), np.array([4.0]), pts)), 15)
    4e-06
    """
    n_layers = stretch.size
    c = z_faces[0]
    for i in range(n_layers):
        h = stretch[i] * (z_faces[i + 1] - z_faces[i])
        points[P_Z, 2 * i] = c + GAUSS_LO * h
        points[P_Z, 2 * i + 1] = c + GAUSS_HI * h
        points[P_WEIGHT, 2 * i] = 0.5 * h
        points[P_WEIGHT, 2 * i + 1] = 0.5 * h
        c += h
    return c - z_faces[0]


@njit(**JIT)
def reference_points(z_faces, out):
    """Reference heights of the 2 n_layers Gauss points (the ``z`` of per-point outputs) [m].

    >>> out = np.empty(2)
    >>> reference_points(np.array([0.0, 1.0]), out)
    >>> [round(float(z), 6) for z in out]
    [0.211325, 0.788675]
    """
    for i in range(z_faces.size - 1):
        h = z_faces[i + 1] - z_faces[i]
        out[2 * i] = z_faces[i] + GAUSS_LO * h
        out[2 * i + 1] = z_faces[i] + GAUSS_HI * h


@njit(**JIT)
def layer_properties(theta, beta, modulus0, modulus1, yield0, yield1, hardening, eigenstrain_form,
                     current_frame, stretch, material):
    """Per-layer state of charge -> stretch and per-point material rows (linear in theta).

    ``M = M0 + (M1 - M0) theta`` and ``sigma_y = y0 + (y1 - y0) theta`` interpolate between the
    host (theta = 0) and the sodiated phase (theta = 1); the caller has already interpolated the
    end points in composition. ``eps* = eigenstrain(beta theta, form)``; both points of a layer get
    the layer's values. ``stretch = 1 + beta theta`` when ``current_frame`` else 1 (small strain:
    integrate over the reference thickness).

    Parameters
    ----------
    theta, beta
        Site fraction and swelling coefficient per layer (0 in the substrate) [1].
    modulus0, modulus1
        Biaxial moduli at theta = 0 and 1 per layer [Pa].
    yield0, yield1
        Yield stresses at theta = 0 and 1 per layer, both finite or equal (inf, inf: elastic) [Pa].
    hardening
        Hardening modulus per layer [Pa].
    eigenstrain_form, current_frame
        ``EIGEN_*`` flag; integrate over the current (True) or reference thickness.
    stretch, material
        Outputs: length n_layers [1], and shape (N_MATERIAL_ROWS, 2 n_layers).
    """
    for i in range(theta.size):
        th = theta[i]
        s = beta[i] * th
        stretch[i] = 1.0 + s if current_frame else 1.0
        e_star = eigenstrain(s, eigenstrain_form)
        m = modulus0[i] + (modulus1[i] - modulus0[i]) * th
        y0 = yield0[i]
        y1 = yield1[i]
        y = y0 if y0 == y1 else y0 + (y1 - y0) * th  # keeps inf (elastic) free of inf - inf
        for q in range(2 * i, 2 * i + 2):
            material[M_EIGENSTRAIN, q] = e_star
            material[M_MODULUS, q] = m
            material[M_YIELD, q] = y
            material[M_HARDENING, q] = hardening[i]


@njit(**JIT)
def _evaluate(a, kappa, z_mid, points, material, history, trial, stress, tangent):
    """Stresses at eps = a + kappa (z - z_mid); returns F, M about z_mid, and the tangent A, B, D."""
    force = 0.0
    moment = 0.0
    stiff_a = 0.0
    stiff_b = 0.0
    stiff_d = 0.0
    for q in range(stress.size):
        zeta = points[P_Z, q] - z_mid
        w = points[P_WEIGHT, q]
        s, t, ep, al = biaxial_return_map(a + kappa * zeta, material[M_EIGENSTRAIN, q],
                                          history[H_PLASTIC, q], history[H_EQUIVALENT, q],
                                          material[M_MODULUS, q], material[M_YIELD, q],
                                          material[M_HARDENING, q])
        stress[q] = s
        tangent[q] = t
        trial[H_PLASTIC, q] = ep
        trial[H_EQUIVALENT, q] = al
        sw = s * w
        force += sw
        moment += sw * zeta
        tw = t * w
        stiff_a += tw
        stiff_b += tw * zeta
        stiff_d += tw * zeta * zeta
    return force, moment, stiff_a, stiff_b, stiff_d


@njit(**JIT_INLINE)
def _scaled_residual(force, moment, scale, half, mode):
    """Residual in strain units: |F|/S + |M_c|/(S t/2) (free), |F|/S (fixed curvature), 0 (fixed)."""
    if mode == MODE_FREE:
        return abs(force) / scale + abs(moment) / (scale * half)
    if mode == MODE_FIXED_CURVATURE:
        return abs(force) / scale
    return 0.0


@njit(**JIT)
def laminate_state(points, material, history, mode, tol, max_iter, trial, stress, tangent, result):
    """Solve force and moment balance of the laminate for (eps0, kappa): one load state.

    The residual ``R(a, kappa) = (F, M_c)`` with moments about the current mid-thickness z_c
    (``a`` = strain there) is the gradient of a convex incremental energy; its Jacobian is the
    consistent laminate tangent::

        [A  B] [da    ]     [F  ]     A = sum T_q w_q,  B = sum T_q w_q zeta_q,
        [B  D] [dkappa] = - [M_c],    D = sum T_q w_q zeta_q^2,   zeta_q = z_q - z_c,

    with T_q from ``biaxial_return_map``. The stress is piecewise linear in (a, kappa), so Newton
    ends in round-off once the set of yielding points is right. Where a step crosses yield
    switches and overshoots, a line search finds the minimum of the energy along the Newton
    direction (a root of the piecewise-linear directional derivative), which makes the
    iteration globally convergent. Where K is singular (perfect plasticity leaving fewer than two
    points elastic: the stresses are unique, the strains are not), ``1e-6`` of the elastic
    stiffness is added to K for the direction. Converged when ``R_RESIDUAL <= tol``. The committed
    ``history`` is read only; the return-mapped state of the last evaluation is written to
    ``trial`` (copy it into ``history`` to accept the load increment).

    Parameters
    ----------
    points
        Current quadrature (``current_points``), shape (N_POINT_ROWS, n_points) [m].
    material
        Per-point rows ``M_*``, shape (N_MATERIAL_ROWS, n_points) [1, Pa].
    history
        Committed rows ``H_*``, shape (N_HISTORY_ROWS, n_points) [1].
    mode
        ``MODE_FREE``, ``MODE_FIXED_CURVATURE`` or ``MODE_FIXED``.
    tol, max_iter
        Tolerance on the scaled residual (strain units, e.g. 1e-13) and iteration limit.
    trial
        Output: trial history, shape (N_HISTORY_ROWS, n_points) [1].
    stress, tangent
        Outputs per point: in-plane stress sigma and consistent tangent d sigma/d eps [Pa].
    result
        In/out, length N_RESULT: ``R_EPS0``, ``R_KAPPA`` are the initial guess on entry (the
        imposed values where the mode fixes them); on exit all entries (layout above): strains,
        resultants about z = 0 (F, M should be ~0 in free mode; where the mode fixes a strain
        they are the reactions), the 2 x 2 tangent about z = 0, the scaled residual, the
        iteration count and the current thickness.

    Returns
    -------
    int
        Newton iterations (0 when the guess already satisfies ``tol`` or in ``MODE_FIXED``);
        -1 when ``max_iter`` was reached, -2 for a singular tangent or a non-finite value.

    >>> pts = np.empty((N_POINT_ROWS, 2)); t = current_points(np.array([0.0, 1e-6]), np.ones(1), pts)
    >>> mat = np.array([[0.01, 0.01], [100e9, 100e9], [np.inf, np.inf], [0.0, 0.0]])
    >>> hist = np.zeros((N_HISTORY_ROWS, 2)); res = np.zeros(N_RESULT); sig = np.empty(2)  # rigid
    >>> laminate_state(pts, mat, hist, MODE_FIXED, 1e-13, 20, hist.copy(), sig, np.empty(2), res)
    0
    >>> float(sig[0])
    -1000000000.0
    """
    n = stress.size
    thickness = 0.0
    z_mom = 0.0
    scale = 0.0
    for q in range(n):
        w = points[P_WEIGHT, q]
        thickness += w
        z_mom += w * points[P_Z, q]
        scale += w * material[M_MODULUS, q]
    z_mid = z_mom / thickness  # centroid of the current stack: conditions the 2 x 2 system
    half = 0.5 * thickness
    ea = 0.0  # elastic stiffness about z_mid: regularises a singular consistent tangent
    eb = 0.0
    ed = 0.0
    for q in range(n):
        zeta = points[P_Z, q] - z_mid
        mw = material[M_MODULUS, q] * points[P_WEIGHT, q]
        ea += mw
        eb += mw * zeta
        ed += mw * zeta * zeta
    e_det = ea * ed - eb * eb
    eps0 = result[R_EPS0]
    kappa = result[R_KAPPA]
    a = eps0 + kappa * z_mid
    force, moment, sa, sb, sd = _evaluate(a, kappa, z_mid, points, material, history, trial, stress,
                                          tangent)
    res = _scaled_residual(force, moment, scale, half, mode)
    iters = 0
    status = 0
    if mode != MODE_FIXED:
        while not res <= tol:
            if iters >= max_iter:
                status = -1 if math.isfinite(res) else -2
                break
            iters += 1
            # With perfect plasticity the consistent tangent is singular when fewer than two
            # points stay elastic (the strains are then not unique, the stresses are): add a
            # small multiple of the elastic stiffness; the line search below sizes the step.
            if mode == MODE_FREE:
                ka, kb, kd = sa, sb, sd
                det = ka * kd - kb * kb
                if not det > _SINGULAR * e_det:
                    ka += _REGULARISE * ea
                    kb += _REGULARISE * eb
                    kd += _REGULARISE * ed
                    det = ka * kd - kb * kb
                da = -(kd * force - kb * moment) / det
                dk = -(ka * moment - kb * force) / det
            else:
                ka = sa if sa > _SINGULAR * ea else sa + _REGULARISE * ea
                da = -force / ka
                dk = 0.0
            # Line search on phi(t) = Psi(u + t d), Psi the convex incremental energy whose gradient
            # is (F, M_c): phi' = F da + M_c dk is continuous, piecewise linear and increasing, and
            # phi'(0) < 0 for the Newton direction. Take t = 1 unless it overshoots the minimum
            # along d (phi'(1) > 0), then bracket phi' = 0 by regula falsi (Illinois).
            g0 = force * da + moment * dk
            if not g0 < 0.0:
                status = -2
                break
            step = 1.0
            force, moment, sa, sb, sd = _evaluate(a + da, kappa + dk, z_mid, points, material, history,
                                                  trial, stress, tangent)
            res = _scaled_residual(force, moment, scale, half, mode)
            g = force * da + moment * dk
            if g > 0.0 and not res <= tol:
                lo, g_lo, hi, g_hi = 0.0, g0, 1.0, g
                side = 0
                for _ in range(60):
                    step = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
                    force, moment, sa, sb, sd = _evaluate(a + step * da, kappa + step * dk, z_mid, points,
                                                          material, history, trial, stress, tangent)
                    res = _scaled_residual(force, moment, scale, half, mode)
                    g = force * da + moment * dk
                    if abs(g) <= 0.1 * abs(g0) or res <= tol or not hi - lo > 1e-15:
                        break
                    if g > 0.0:
                        hi, g_hi = step, g
                        if side == 1:
                            g_lo *= 0.5
                        side = 1
                    else:
                        lo, g_lo = step, g
                        if side == -1:
                            g_hi *= 0.5
                        side = -1
            a_new = a + step * da
            kappa_new = kappa + step * dk
            if a_new == a and kappa_new == kappa:  # stagnation at round-off above tol
                status = -1
                break
            a = a_new
            kappa = kappa_new
    # outputs about z = 0
    eps0 = a - kappa * z_mid
    result[R_EPS0] = eps0
    result[R_KAPPA] = kappa
    result[R_FORCE] = force
    result[R_MOMENT] = moment + force * z_mid
    result[R_STIFF_A] = sa
    result[R_STIFF_B] = sb + sa * z_mid
    result[R_STIFF_D] = sd + 2.0 * sb * z_mid + sa * z_mid * z_mid
    result[R_RESIDUAL] = res
    result[R_ITERATIONS] = iters
    result[R_THICKNESS] = thickness
    if status < 0:
        return status
    return iters


@njit(**JIT)
def layer_property_derivatives(theta, beta, modulus0, modulus1, yield0, yield1, eigenstrain_form,
                               current_frame, dstretch, dmaterial):
    """Derivatives of ``layer_properties`` with respect to each layer's own theta.

    ``dstretch[i] = d lambda_i / d theta_i`` [1] and ``dmaterial[:, q]`` the theta-derivatives of
    the material rows of point q (its layer's theta) [1, Pa]; the hardening row is 0. The inputs
    to ``equilibrium_sensitivity`` for the property model of ``layer_properties``.
    """
    for i in range(theta.size):
        b = beta[i]
        s = b * theta[i]
        dstretch[i] = b if current_frame else 0.0
        if eigenstrain_form == EIGEN_LOG:
            de = b / (3.0 * (1.0 + s))
        elif eigenstrain_form == EIGEN_ENGINEERING:
            de = b * math.exp(-2.0 * math.log1p(s) / 3.0) / 3.0
        else:
            de = b / 3.0
        y0 = yield0[i]
        y1 = yield1[i]
        dy = 0.0 if y0 == y1 else y1 - y0
        for q in range(2 * i, 2 * i + 2):
            dmaterial[M_EIGENSTRAIN, q] = de
            dmaterial[M_MODULUS, q] = modulus1[i] - modulus0[i]
            dmaterial[M_YIELD, q] = dy
            dmaterial[M_HARDENING, q] = 0.0


@njit(**JIT_INLINE)
def point_theta_derivative(strain, kappa, dz, q, material, history, dmaterial):
    """Stress, tangent and d sigma / d theta of point q at fixed (eps0, kappa) and committed
    history, theta acting through the point's material rows and its height (``dz``) [Pa].

    The partials of the closed-form return (``biaxial_return_map``; e_tr = eps - eps* - eps_p,
    Y = sigma_y + H alpha, s = sign(e_tr), c = M/2 + H) are, elastic: ``(-M, e_tr, 0, 0)``;
    plastic: ``(-T, s H (Y/2 + H |e_tr|)/c^2, s M/(2c), s M (alpha/2 + |e_tr| - (Y/2 + H |e_tr|)/c)/c)``
    with respect to (eps*, M, sigma_y, H).
    """
    m = material[M_MODULUS, q]
    hard = material[M_HARDENING, q]
    alpha = history[H_EQUIVALENT, q]
    e_tr = strain - material[M_EIGENSTRAIN, q] - history[H_PLASTIC, q]
    radius = material[M_YIELD, q] + hard * alpha
    sigma_tr = m * e_tr
    if abs(sigma_tr) - radius > 0.0:
        sg = 1.0 if sigma_tr > 0.0 else -1.0
        c = 0.5 * m + hard
        t = m * hard / c
        sigma = sg * (0.5 * m * radius + hard * m * abs(e_tr)) / c
        inner = 0.5 * radius + hard * abs(e_tr)
        d_m = sg * hard * inner / (c * c)
        d_y = sg * 0.5 * m / c
        d_h = sg * m * (0.5 * alpha + abs(e_tr) - inner / c) / c
    else:
        t = m
        sigma = sigma_tr
        d_m = e_tr
        d_y = 0.0
        d_h = 0.0
    ds = (t * kappa * dz - t * dmaterial[M_EIGENSTRAIN, q] + d_m * dmaterial[M_MODULUS, q]
          + d_y * dmaterial[M_YIELD, q] + d_h * dmaterial[M_HARDENING, q])
    return sigma, t, ds


@njit(**JIT)
def equilibrium_sensitivity(z_faces, points, material, history, dstretch, dmaterial, eps0, kappa, out):
    """Partial derivatives of the resultants (F, M about z = 0) with respect to each layer's theta.

    At fixed (eps0, kappa) and committed ``history`` (the backward-Euler step of
    ``laminate_state``), theta_i acts through the layer's material rows (``dmaterial``) and its
    stretch (``dstretch``). The stretch moves the layer's own points and weights *and shifts
    every point above it* by ``delta_i = h_i d lambda_i``, so with suffix sums over the points
    above layer i (kappa T_q w_q and (kappa T_q z_q + sigma_q) w_q) all n columns cost O(n)::

        dF/dtheta_i = sum_(q in i) [ds_q w_q + sigma_q dw_q] + delta_i sum_(q above) kappa T_q w_q
        dM/dtheta_i = sum_(q in i) [(ds_q z_q + sigma_q dz_q) w_q + sigma_q z_q dw_q]
                      + delta_i sum_(q above) (kappa T_q z_q + sigma_q) w_q
        ds_q = T_q kappa dz_q + ds/d eps* d eps* + ds/dM dM + ds/d sigma_y d sigma_y + ds/dH dH

    with dz_q = h_i g_q d lambda_i (g_q the Gauss abscissa on [0, 1]) and dw_q = h_i d lambda_i / 2.
    with the partials of the closed-form return in ``point_theta_derivative``. The solution's
    sensitivity is ``d(eps0, kappa)/d theta = -K^-1 out`` (K from ``R_STIFF_*``).

    Parameters
    ----------
    z_faces, points, material, history
        As in ``current_points`` / ``laminate_state`` at the state of interest.
    dstretch, dmaterial
        Derivatives from ``layer_property_derivatives`` (or the caller's own property model).
    eps0, kappa
        The strain state (``result[R_EPS0]``, ``result[R_KAPPA]``) [1, m-1].
    out
        Output, shape (2, n_layers): dF/d theta_i [N m-1] and dM/d theta_i [N].
    """
    n_layers = z_faces.size - 1
    above_f = 0.0
    above_m = 0.0
    for i in range(n_layers - 1, -1, -1):
        h = z_faces[i + 1] - z_faces[i]
        dlam = dstretch[i]
        delta = h * dlam
        df = delta * kappa * above_f
        dm = delta * above_m
        for k in range(2):
            q = 2 * i + k
            g = GAUSS_LO if k == 0 else GAUSS_HI
            z = points[P_Z, q]
            w = points[P_WEIGHT, q]
            dz = h * g * dlam
            dw = 0.5 * h * dlam
            sigma, t, ds = point_theta_derivative(eps0 + kappa * z, kappa, dz, q, material, history,
                                                  dmaterial)
            df += ds * w + sigma * dw
            dm += (ds * z + sigma * dz) * w + sigma * z * dw
            above_f += t * w
            above_m += (kappa * t * z + sigma) * w
        out[0, i] = df
        out[1, i] = dm


@njit(**JIT)
def laminate_sweep(z_faces, theta, beta, modulus0, modulus1, yield0, yield1, hardening,
                   eigenstrain_form, current_frame, mode, n_substeps, tol, max_iter, history,
                   stress_out, plastic_out, result_out):
    """Quasi-static march over load states theta(z), committing plastic history (SPEC §3.3).

    State ``s`` is reached from state ``s - 1`` in ``n_substeps`` equal increments of theta
    (linear in theta), each solved by ``laminate_state`` from the previous solution and
    committed (``history <- trial``) once converged; state 0 is reached in one step from the
    given ``history``. This is the uniform-theta sweep of the paper's FEA (Wang et al. 2022,
    doi:10.1002/advs.202201209) when every row of ``theta`` is uniform in the film; a cycle
    0 -> 1 -> 0 shows compressive flow on sodiation and tension on desodiation.

    Parameters
    ----------
    z_faces
        Reference layer faces, length n_layers + 1 [m].
    theta
        Load states, shape (n_states, n_layers) [1].
    beta, modulus0, modulus1, yield0, yield1, hardening, eigenstrain_form, current_frame
        Layer data as in ``layer_properties`` [1, Pa].
    mode, tol, max_iter
        As in ``laminate_state``; the sweep starts from eps0 = kappa = 0, so ``MODE_FIXED``
        (``MODE_RIGID``) is a rigid substrate and ``MODE_FIXED_CURVATURE`` (``MODE_NO_BENDING``)
        a plate held flat.
    n_substeps
        Increments between consecutive states (>= 1).
    history
        In/out, shape (N_HISTORY_ROWS, 2 n_layers): committed plastic state; zeros for a virgin
        film [1].
    stress_out, plastic_out
        Outputs, shape (n_states, 2 n_layers): stress [Pa] and in-plane plastic strain [1] at the
        Gauss points (reference heights from ``reference_points``).
    result_out
        Output, shape (n_states, N_RESULT): per-state ``laminate_state`` results; R_ITERATIONS
        sums the substeps.

    Returns
    -------
    int
        Number of states completed (n_states on success). At a failed state ``s`` the row
        ``result_out[s]`` holds the failed solve with ``R_ITERATIONS = -1``.
    """
    n_states, n_layers = theta.shape
    n_points = 2 * n_layers
    stretch = np.empty(n_layers)
    th = np.empty(n_layers)
    points = np.empty((N_POINT_ROWS, n_points))
    material = np.empty((N_MATERIAL_ROWS, n_points))
    trial = np.empty((N_HISTORY_ROWS, n_points))
    stress = np.empty(n_points)
    tangent = np.empty(n_points)
    result = np.zeros(N_RESULT)
    for s in range(n_states):
        n_sub = 1 if s == 0 else n_substeps
        total = 0
        for k in range(1, n_sub + 1):
            if s == 0:
                for i in range(n_layers):
                    th[i] = theta[0, i]
            else:
                f = k / n_sub
                for i in range(n_layers):
                    th[i] = theta[s - 1, i] + f * (theta[s, i] - theta[s - 1, i])
            layer_properties(th, beta, modulus0, modulus1, yield0, yield1, hardening, eigenstrain_form,
                             current_frame, stretch, material)
            current_points(z_faces, stretch, points)
            it = laminate_state(points, material, history, mode, tol, max_iter, trial, stress, tangent,
                                result)
            if it < 0:
                for j in range(N_RESULT):
                    result_out[s, j] = result[j]
                result_out[s, R_ITERATIONS] = -1.0
                return s
            total += it
            for r in range(N_HISTORY_ROWS):
                for q in range(n_points):
                    history[r, q] = trial[r, q]
        for q in range(n_points):
            stress_out[s, q] = stress[q]
            plastic_out[s, q] = history[H_PLASTIC, q]
        for j in range(N_RESULT):
            result_out[s, j] = result[j]
        result_out[s, R_ITERATIONS] = total
    return n_states


@njit(**JIT)
def solve_tridiagonal_rank2(lower, diag, upper, u, v, rhs, out, work):
    """Solve ``(T + u[0] v[0]^T + u[1] v[1]^T) out = rhs``, T tridiagonal: Sherman-Morrison-Woodbury.

    ``(T + U V^T)^-1 b = y - Z (I + V^T Z)^-1 V^T y`` with ``y = T^-1 b`` and ``Z = T^-1 U``:
    three tridiagonal solves (``solve_tridiagonal``) and one 2 x 2 solve, O(n). This is the
    condensed Jacobian of the coupled diffusion-mechanics Newton (module docstring), where
    ``U V^T = -U_mech K^-1 (dR/dtheta)``. T must be safe for the unpivoted Thomas algorithm and
    ``I + V^T Z`` non-singular (the full matrix non-singular).

    Parameters
    ----------
    lower, diag, upper
        Bands of T, length n (``lower[0]``, ``upper[-1]`` ignored).
    u, v
        The rank-2 factors, shape (2, n).
    rhs
        Right-hand side, length n.
    out
        Solution, length n (may alias ``rhs``).
    work
        Scratch, shape (3, n).

    Returns
    -------
    float
        Determinant of the 2 x 2 capacitance matrix ``I + V^T T^-1 U`` (0: singular, out is nan).
    """
    n = diag.size
    z0 = work[0]
    z1 = work[1]
    scratch = work[2]
    solve_tridiagonal(lower, diag, upper, rhs, out, scratch)
    solve_tridiagonal(lower, diag, upper, u[0], z0, scratch)
    solve_tridiagonal(lower, diag, upper, u[1], z1, scratch)
    c00 = 1.0
    c01 = 0.0
    c10 = 0.0
    c11 = 1.0
    g0 = 0.0
    g1 = 0.0
    for i in range(n):
        v0 = v[0, i]
        v1 = v[1, i]
        c00 += v0 * z0[i]
        c01 += v0 * z1[i]
        c10 += v1 * z0[i]
        c11 += v1 * z1[i]
        g0 += v0 * out[i]
        g1 += v1 * out[i]
    det = c00 * c11 - c01 * c10
    inv = 1.0 / det if det != 0.0 else np.nan
    p0 = (c11 * g0 - c01 * g1) * inv
    p1 = (c00 * g1 - c10 * g0) * inv
    for i in range(n):
        out[i] -= z0[i] * p0 + z1[i] * p1
    return det
