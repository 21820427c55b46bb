"""Counter-based uniforms: range, determinism, moments, correlations, avalanche and a Poisson
process built from them.

Every statistic is computed on fixed keys, so a test either always passes or always fails; the
bounds are 4 standard errors of the statistic (or a chi-square tail of 1e-6), generous enough
for any fixed key of a sound generator and tight enough to catch a broken mixing step. The
sample is 10 times smaller under ``NUMBA_DISABLE_JIT=1``, where a draw costs ~40 us.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from fastnai._kernels import counter_rng as rng

JIT_OFF = bool(numba.config.DISABLE_JIT)
N_DRAWS = 10_000 if JIT_OFF else 100_000
SEED, STREAM, STEP = 20240611, rng.STREAM_NOISE, 17
TWO_53 = 2.0**53

# A pure-Python twin of the documented construction: the SplitMix64 finaliser (Steele, Lea and
# Flood 2014; Java SplittableRandom constants) applied to the key words folded in with the
# golden-ratio multiplier.
MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15
M1, M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def finaliser(z):
    z = ((z ^ (z >> 30)) * M1) & MASK
    z = ((z ^ (z >> 27)) * M2) & MASK
    return z ^ (z >> 31)


def inverse_finaliser(z):
    """The finaliser is a bijection of 64-bit words: xor-shifts and odd multipliers invert."""
    z = z ^ (z >> 31) ^ (z >> 62)
    z = (z * pow(M2, -1, 2**64)) & MASK
    z = z ^ (z >> 27) ^ (z >> 54)
    z = (z * pow(M1, -1, 2**64)) & MASK
    return z ^ (z >> 30) ^ (z >> 60)


def folded(seed, stream, step):
    """The 64-bit state after seed, stream and step are folded in."""
    z = finaliser((seed * GOLDEN + stream) & MASK)
    return finaliser((z + step * GOLDEN) & MASK)


def twin_uniform(seed, stream, step, index):
    z = finaliser((folded(seed, stream, step) + index * GOLDEN) & MASK)
    return (z >> 11) * 2.0**-53


def key_of_the_largest_uniform(seed, stream, step):
    """An index (< 2^63) whose draw has its 53 bits all ones: u = 1 - 2^-53."""
    z2 = folded(seed, stream, step)
    for low in range(2048):
        target = (((1 << 53) - 1) << 11) | low
        index = ((inverse_finaliser(target) - z2) * pow(GOLDEN, -1, 2**64)) & MASK
        if index < 2**63:
            return index
    raise AssertionError("no index below 2^63")  # odds 2^-2048


def se_bound(variance, n):
    """4 standard errors of a sample mean of n draws of the given variance."""
    return 4.0 * math.sqrt(variance / n)


@pytest.fixture(scope="module")
def draws():
    return rng.uniform_array(SEED, STREAM, STEP, N_DRAWS)


def test_uniform_is_a_53_bit_fraction_in_the_half_open_unit_interval(draws):
    """uniform lies in [0, 1) on the grid k 2^-53; uniform_open of the same key is at most one
    grid step above it and above 0, so its log is finite, also for the all-zero key."""
    assert draws.min() >= 0.0 and draws.max() < 1.0
    k = draws * TWO_53
    np.testing.assert_array_equal(k, np.floor(k))
    keys = [(0, 0, 0, 0), (SEED, STREAM, STEP, 0), (1, 2, 3, 2**40), (2**62, 3, 2**31, 7)]
    for key in keys + [(SEED, STREAM, STEP, i) for i in range(200)]:
        u, u_open = rng.uniform(*key), rng.uniform_open(*key)
        assert 0.0 <= u < 1.0
        assert 0.0 < u_open < 1.0 and math.isfinite(math.log(u_open))
        assert 0.0 <= u_open - u <= 2.0**-53


def test_same_key_gives_the_same_bits_and_the_array_is_elementwise(draws):
    """A draw is a pure function of its key: a repeat gives the same bits, and uniform_array is
    uniform at index 0..n-1."""
    np.testing.assert_array_equal(rng.uniform_array(SEED, STREAM, STEP, N_DRAWS), draws)
    n = 500
    elementwise = np.array([rng.uniform(SEED, STREAM, STEP, i) for i in range(n)])
    np.testing.assert_array_equal(draws[:n], elementwise)
    assert rng.uniform(SEED, STREAM, STEP, 3) == rng.uniform(SEED, STREAM, STEP, 3)


def test_uniform_is_the_splitmix64_construction_of_its_docstring():
    """The twin's finaliser reproduces the published SplitMix64 outputs for seed 0 (the
    finaliser of GOLDEN and 2 GOLDEN), and the kernel equals the twin on keys spanning all
    64 bits."""
    assert finaliser(GOLDEN) == 0xE220A8397B1DCDAF
    assert finaliser(2 * GOLDEN & MASK) == 0x6E789E6AA1B965F4
    assert all(inverse_finaliser(finaliser(z)) == z for z in (0, 1, GOLDEN, MASK, 2**63 + 12345))
    keys = [(0, 0, 0, 0), (SEED, STREAM, STEP, 5), (2**63 - 1, 3, 2**40, 2**62 + 1),
            (1, 1, 1, 1), (12345, 2, 0, 999_999)]
    for key in keys:
        assert rng.uniform(*key) == twin_uniform(*key)


def test_the_largest_uniform_is_reachable():
    """u = 1 - 2^-53 is a possible draw (53 random bits all ones): the inverted twin finds its
    key, and the kernel returns it there."""
    index = key_of_the_largest_uniform(SEED, STREAM, STEP)
    assert rng.uniform(SEED, STREAM, STEP, index) == 1.0 - 2.0**-53


def test_uniform_open_stays_below_one_at_the_largest_uniform():
    """uniform_open lies in (0, 1) also where uniform takes its largest value."""
    index = key_of_the_largest_uniform(SEED, STREAM, STEP)
    assert rng.uniform_open(SEED, STREAM, STEP, index) < 1.0


@pytest.mark.parametrize("seed, stream, step", [
    (SEED, STREAM, STEP), (0, 0, 0), (1, rng.STREAM_ACTIVATION, 0),
    (7, rng.STREAM_SITE_POSITIONS, 123_456),
])
def test_moments_are_those_of_the_uniform_distribution(seed, stream, step):
    """Mean 1/2 and variance 1/12 (the variance of (u - 1/2)^2 is 1/180), each within 4 standard
    errors, on every key, including the all-zero seed, stream and step."""
    u = rng.uniform_array(seed, stream, step, N_DRAWS)
    assert u.mean() == pytest.approx(0.5, abs=se_bound(1 / 12, N_DRAWS))
    assert np.mean((u - 0.5) ** 2) == pytest.approx(1 / 12, abs=se_bound(1 / 180, N_DRAWS))


def test_sixteen_bin_histogram_passes_a_chi_square_test(draws):
    """Equal-width bins are equally filled: chi-square with 15 degrees of freedom below its
    1e-6 tail (~51)."""
    counts = np.bincount((draws * 16).astype(np.int64), minlength=16)
    expected = N_DRAWS / 16
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < stats.chi2.isf(1e-6, 15)


def test_neighbouring_indices_and_keys_are_uncorrelated(draws):
    """The correlation of consecutive indices (lag 1 and 2), and of the same index under a
    neighbouring stream, step or seed, is within 4 standard errors (4/sqrt(n)) of 0."""
    bound = 4.0 / math.sqrt(N_DRAWS)
    for lag in (1, 2):
        assert abs(np.corrcoef(draws[:-lag], draws[lag:])[0, 1]) < bound
    for key in ((SEED, STREAM + 1, STEP), (SEED, STREAM, STEP + 1), (SEED + 1, STREAM, STEP)):
        other = rng.uniform_array(*key, N_DRAWS)
        assert abs(np.corrcoef(draws, other)[0, 1]) < bound
        assert np.all(other != draws)  # 53-bit draws: a coincidence has odds of 1e-11


def test_draws_are_distinct_and_step_and_index_do_not_commute(draws):
    """No two of the n draws collide (birthday odds n^2 / 2^54 < 1e-6), and swapping step and
    index gives another number: the key words are not simply added."""
    assert np.unique(draws).size == N_DRAWS
    grid = np.array([[rng.uniform(SEED, STREAM, i, j) for j in range(30)] for i in range(30)])
    off_diagonal = ~np.eye(30, dtype=bool)
    assert np.all(grid[off_diagonal] != grid.T[off_diagonal])


def test_flipping_one_key_bit_flips_each_output_bit_with_probability_one_half():
    """Avalanche: changing one bit of the index, the step or the seed changes each of the 53
    output bits with probability 1/2; the mean Hamming distance is 26.5 (variance 53/4 per
    pair)."""
    n_keys = 150 if JIT_OFF else 1000

    def bits(seed, step, index):
        return int(rng.uniform(seed, STREAM, step, index) * TWO_53)

    flips = []
    for k in range(n_keys):
        index, step = 1000 + 7 * k, 50 + k
        base = bits(SEED, step, index)
        changed = [bits(SEED, step, index ^ (1 << b)) for b in range(32)]
        changed += [bits(SEED, step ^ (1 << b), index) for b in range(16)]
        changed.append(bits(SEED ^ 1, step, index))
        flips.append([[(base ^ c) >> b & 1 for b in range(53)] for c in changed])
    flips = np.array(flips)  # (key, flipped input bit, output bit)
    distance = flips.sum(axis=2)
    for per_input_bit in distance.mean(axis=0):
        assert per_input_bit == pytest.approx(26.5, abs=se_bound(53 / 4, n_keys))
    pairs = n_keys * flips.shape[1]
    for frequency in flips.mean(axis=(0, 1)):
        assert frequency == pytest.approx(0.5, abs=se_bound(0.25, pairs))


def test_exponential_waiting_times_make_a_poisson_process():
    """Waiting times ``-ln(uniform_open)`` keyed on (step = arrival number, index = process)
    are Exp(1): the number of arrivals in [0, T] of each process is Poisson(T): its mean and
    variance are T (the variance of the sample variance is (T + 2 T^2)/n) and its histogram
    passes a chi-square test against the Poisson law."""
    n_processes = 1000 if JIT_OFF else 8000
    horizon, max_arrivals = 4.0, 18  # P(N(4) >= 18) = 2e-6
    waits = np.array([[-math.log(rng.uniform_open(SEED, rng.STREAM_ACTIVATION, k, m))
                       for m in range(n_processes)] for k in range(max_arrivals)])
    assert waits.mean() == pytest.approx(1.0, abs=se_bound(1.0, waits.size))
    counts = np.sum(np.cumsum(waits, axis=0) <= horizon, axis=0)
    assert counts.max() < max_arrivals
    assert counts.mean() == pytest.approx(horizon, abs=se_bound(horizon, n_processes))
    assert counts.var() == pytest.approx(horizon, abs=se_bound(horizon + 2 * horizon**2, n_processes))
    # chi-square over 0..9 and a tail bin >= 10 (expected counts >= 5 in every bin)
    observed = np.bincount(np.minimum(counts, 10), minlength=11)
    pmf = stats.poisson.pmf(np.arange(10), horizon)
    expected = n_processes * np.append(pmf, 1.0 - pmf.sum())
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2 < stats.chi2.isf(1e-6, 10)
