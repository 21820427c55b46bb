"""1D meshes: geometric grading from a fine spacing at the contact, and uniform subdivision."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq


def geometric_ratio(thickness: float, n_nodes: int, min_spacing: float) -> float:
    """Growth ratio r of a geometric mesh: min_spacing * sum_(i<n-1) r^i = thickness.

    Requires ``min_spacing * (n_nodes - 1) <= thickness`` (r >= 1).
    """
    n_cells = n_nodes - 1
    target = thickness / min_spacing
    if target <= n_cells * (1.0 + 1e-12):
        return 1.0

    def excess(log_r: float) -> float:
        # (r^m - 1)/(r - 1) computed stably through expm1
        return math.expm1(n_cells * log_r) / math.expm1(log_r) - target

    hi = math.log(target) / max(n_cells - 1, 1) + 1e-12
    while excess(hi) < 0.0:
        hi *= 2.0
    return math.exp(brentq(excess, 1e-300, hi, xtol=1e-300, rtol=1e-15, maxiter=500))


def graded_mesh(thickness: float, n_nodes: int, min_spacing: float, refinement: int = 1) -> np.ndarray:
    """Node depths from the contact, 0 ... thickness, geometric from ``min_spacing``.

    Parameters
    ----------
    thickness
        Domain length [m].
    n_nodes
        Nodes of the base mesh (both ends included).
    min_spacing
        First cell width at the contact [m].
    refinement
        Each base cell is split into this many equal cells: the fixed grading that
        mesh-convergence studies subdivide.

    Examples
    --------
    >>> d = graded_mesh(1.0, 5, 0.1)
    >>> bool(np.isclose(d[-1], 1.0)), len(d)
    (True, 5)
    """
    ratio = geometric_ratio(thickness, n_nodes, min_spacing)
    if ratio == 1.0:
        nodes = np.linspace(0.0, thickness, n_nodes)
    else:
        steps = np.full(n_nodes - 1, ratio)
        steps[0] = min_spacing
        nodes = np.empty(n_nodes)
        nodes[0] = 0.0
        np.cumsum(np.cumprod(steps), out=nodes[1:])
    nodes *= thickness / nodes[-1]
    nodes[-1] = thickness
    if refinement > 1:
        frac = np.arange(refinement) / refinement
        fine = (nodes[:-1, None] + np.diff(nodes)[:, None] * frac[None, :]).ravel()
        nodes = np.concatenate((fine, [thickness]))
    return nodes
