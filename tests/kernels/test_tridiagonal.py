"""Two-ended Thomas algorithm against scipy's banded LU."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_banded

from fastnai._kernels.tridiagonal import solve_tridiagonal


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 11, 1000, 1001])
def test_two_ended_thomas_matches_solve_banded_on_diagonally_dominant_system(n):
    rng = np.random.default_rng(n)
    lower = rng.uniform(0.1, 1.0, n)
    upper = rng.uniform(0.1, 1.0, n)
    diag = -(lower + upper) - rng.uniform(0.0, 1.0, n)
    rhs = rng.normal(size=n)
    out = np.empty(n)
    solve_tridiagonal(lower, diag, upper, rhs, out, np.empty(n))
    ab = np.zeros((3, n))
    ab[0, 1:] = upper[:-1]
    ab[1] = diag
    ab[2, :-1] = lower[1:]
    np.testing.assert_allclose(out, solve_banded((1, 1), ab, rhs), rtol=1e-12, atol=1e-14)


def test_thomas_leaves_inputs_unchanged_and_solves_identity():
    n = 7
    lower = np.zeros(n)
    upper = np.zeros(n)
    diag = np.full(n, 2.0)
    rhs = np.arange(n, dtype=float)
    out = np.empty(n)
    solve_tridiagonal(lower, diag, upper, rhs, out, np.empty(n))
    np.testing.assert_array_equal(out, rhs / 2.0)
    np.testing.assert_array_equal(rhs, np.arange(n, dtype=float))
