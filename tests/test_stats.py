"""offline.report.stats against scipy / statsmodels on the same inputs, plus calibration by
simulation.

The module itself must not use scipy or statsmodels; these tests are where they serve as the
reference implementations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from offline.report import stats

RTOL = 1e-9


# --- distributions -------------------------------------------------------------------------------


def test_normal_sf_matches_scipy_into_the_far_tails() -> None:
    zs = [-40.0, -8.0, -3.0, -1.959963984540054, -0.5, 0.0, 1e-12, 0.7, 1.96, 5.0, 12.0, 37.0]
    got = [stats.normal_sf(z) for z in zs]
    np.testing.assert_allclose(got, sps.norm.sf(zs), rtol=RTOL, atol=0)


def test_normal_ppf_matches_scipy_on_a_grid_and_random_probabilities() -> None:
    rng = np.random.default_rng(0)
    ps = np.concatenate(
        [
            [1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 0.001, 0.02425, 0.025, 0.3, 0.4999999, 0.5],
            [0.5000001, 0.7, 0.975, 0.97575, 0.999, 1 - 1e-10, 1 - 2**-52],
            rng.uniform(size=200),
            10.0 ** rng.uniform(-30, -1, size=100),
        ]
    )
    got = np.array([stats.normal_ppf(float(p)) for p in ps])
    np.testing.assert_allclose(got, sps.norm.ppf(ps), rtol=RTOL, atol=1e-14)


def test_normal_ppf_edges() -> None:
    assert stats.normal_ppf(0.0) == -math.inf
    assert stats.normal_ppf(1.0) == math.inf
    assert math.isnan(stats.normal_ppf(-0.1))
    assert math.isnan(stats.normal_ppf(1.1))
    assert math.isnan(stats.normal_ppf(math.nan))
    assert stats.normal_ppf(0.5) == 0.0


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 7, 10, 30, 99, 1000])
def test_chi2_sf_matches_scipy(dof: int) -> None:
    xs = [1e-8, 0.01, 0.1, 0.5, 1, 2, 3.84, 5, 9, 10, 20, 50, 120, 500, 1000, 1100, 1500]
    got = [stats.chi2_sf(x, dof) for x in xs]
    np.testing.assert_allclose(got, sps.chi2.sf(xs, dof), rtol=RTOL, atol=1e-300)


def test_chi2_sf_edges() -> None:
    assert stats.chi2_sf(0.0, 3) == 1.0
    assert stats.chi2_sf(-1.0, 3) == 1.0
    assert stats.chi2_sf(math.inf, 3) == 0.0
    assert math.isnan(stats.chi2_sf(1.0, 0))
    assert math.isnan(stats.chi2_sf(math.nan, 2))


# --- proportions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.001])
def test_wilson_interval_matches_statsmodels_incl_0_all_and_n_1(alpha: float) -> None:
    rng = np.random.default_rng(1)
    n = np.concatenate([[1, 1, 2, 10, 10, 1000, 7], rng.integers(1, 5000, size=300)])
    x = np.concatenate([[0, 1, 1, 0, 10, 1, 3], rng.binomial(n[7:], rng.uniform(size=300))])
    lo, hi = stats.wilson_interval(x, n, alpha)
    ref_lo, ref_hi = proportion_confint(x, n, alpha=alpha, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(hi, ref_hi, rtol=RTOL, atol=1e-15)
    assert np.all((lo <= x / n) & (x / n <= hi))


def test_wilson_interval_is_nan_where_n_is_0() -> None:
    lo, hi = stats.wilson_interval(np.array([0, 3, 0]), np.array([0, 5, 0]))
    assert np.isnan(lo[[0, 2]]).all() and np.isnan(hi[[0, 2]]).all()
    assert np.isfinite([lo[1], hi[1]]).all()


@pytest.mark.parametrize(("x", "n"), [(0, 10), (10, 10), (0, 1), (1, 1), (412, 1000), (3, 70)])
def test_proportion_matches_statsmodels(x: int, n: int) -> None:
    e = stats.proportion(x, n)
    ref_lo, ref_hi = proportion_confint(x, n, method="wilson")
    p = x / n
    assert e.value == pytest.approx(p, rel=RTOL)
    assert e.se == pytest.approx(math.sqrt(p * (1 - p) / n), rel=RTOL, abs=1e-15)
    assert e.lo == pytest.approx(ref_lo, rel=RTOL, abs=1e-15)
    assert e.hi == pytest.approx(ref_hi, rel=RTOL, abs=1e-15)


def test_proportion_of_nobody_is_nan() -> None:
    e = stats.proportion(0, 0)
    assert all(math.isnan(v) for v in (e.value, e.se, e.lo, e.hi))


_PROPORTION_CASES = [(412, 1000, 380, 1000), (5, 20, 1, 30), (1, 1, 0, 1), (0, 50, 3, 40),
                     (50, 50, 45, 50), (7, 9, 7, 9), (30_123, 100_000, 29_870, 99_500)]  # fmt: skip


@pytest.mark.parametrize(("x_t", "n_t", "x_c", "n_c"), _PROPORTION_CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_compare_proportions_matches_statsmodels(
    x_t: int, n_t: int, x_c: int, n_c: int, alpha: float
) -> None:
    c = stats.compare_proportions(x_t, n_t, x_c, n_c, alpha)
    _, p_ref = proportions_ztest([x_t, x_c], [n_t, n_c])
    lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", alpha=alpha)
    assert c.diff == pytest.approx(x_t / n_t - x_c / n_c, rel=RTOL, abs=1e-15)
    assert c.p_value == pytest.approx(p_ref, rel=RTOL)
    assert c.lo == pytest.approx(lo, rel=RTOL, abs=1e-15)
    assert c.hi == pytest.approx(hi, rel=RTOL, abs=1e-15)
    assert c.se == pytest.approx((c.hi - c.lo) / 2 / sps.norm.ppf(1 - alpha / 2), rel=1e-9)
    if x_t and x_c:  # the log-ratio delta method is statsmodels' method="log" for a risk ratio
        rlo, rhi = confint_proportions_2indep(
            x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=alpha
        )
        assert c.rel_lift == pytest.approx((x_t / n_t) / (x_c / n_c) - 1, rel=RTOL, abs=1e-15)
        assert c.rel_lo == pytest.approx(rlo - 1, rel=RTOL, abs=1e-15)
        assert c.rel_hi == pytest.approx(rhi - 1, rel=RTOL, abs=1e-15)
    else:
        assert math.isnan(c.rel_lift) and math.isnan(c.rel_lo) and math.isnan(c.rel_hi)


def test_compare_proportions_without_variance_or_units_is_nan() -> None:
    both_zero = stats.compare_proportions(0, 10, 0, 20)
    assert both_zero.diff == 0 and both_zero.se == 0 and math.isnan(both_zero.p_value)
    assert math.isnan(both_zero.rel_lift)
    both_all = stats.compare_proportions(10, 10, 20, 20)
    assert both_all.diff == 0 and math.isnan(both_all.p_value) and both_all.rel_lift == 0
    empty = stats.compare_proportions(3, 10, 0, 0)
    assert all(math.isnan(v) for v in vars(empty).values())


# --- ratios --------------------------------------------------------------------------------------


def _clustered(rng: np.random.Generator, g: int, mean_p: float = 0.3) -> tuple[np.ndarray, ...]:
    """Per-user exposed pairs d >= 1 and reached pairs n <= d with a user-level reach propensity
    (so pairs of a user are correlated and clustering matters)."""
    d = 1 + rng.poisson(4, size=g)
    p = rng.beta(2 * mean_p, 2 * (1 - mean_p), size=g)
    return rng.binomial(d, p), d


def _expand(num: np.ndarray, den: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair-level 0/1 indicators and their user ids: user g has den[g] rows, num[g] of them 1."""
    groups = np.repeat(np.arange(len(den)), den)
    start = np.repeat(np.cumsum(den) - den, den)
    y = (np.arange(len(groups)) - start < np.repeat(num, den)).astype(float)
    return y, groups


def _cluster_ols(y: np.ndarray, x: np.ndarray, groups: np.ndarray, correction: bool):
    return sm.OLS(y, x).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": correction}
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("g", [2, 15, 400])
def test_ratio_se_is_the_cluster_robust_se_of_the_pair_mean(seed: int, g: int) -> None:
    """Population (1/G) moments make the delta-method SE equal to statsmodels' cluster-robust SE
    without small-sample correction (factor 1); with its correction (sample moments) the SE is
    sqrt(G/(G-1)) times ours, since (N-1)/(N-K) = 1 for a constant-only model."""
    rng = np.random.default_rng(seed)
    num, den = _clustered(rng, g)
    y, groups = _expand(num, den)
    e = stats.ratio(num, den)
    plain = _cluster_ols(y, np.ones((len(y), 1)), groups, correction=False)
    corrected = _cluster_ols(y, np.ones((len(y), 1)), groups, correction=True)
    assert e.value == pytest.approx(plain.params[0], rel=RTOL)
    assert e.se == pytest.approx(plain.bse[0], rel=RTOL)
    assert e.se * math.sqrt(g / (g - 1)) == pytest.approx(corrected.bse[0], rel=RTOL)
    z = sps.norm.ppf(0.975)
    assert (e.lo, e.hi) == pytest.approx((e.value - z * e.se, e.value + z * e.se), rel=RTOL)


def test_ratio_se_formula_in_moments() -> None:
    """The documented formula, spelled out with numpy's population (ddof=0) moments."""
    num, den = _clustered(np.random.default_rng(5), 50)
    r = num.sum() / den.sum()
    cov = np.cov(num, den, ddof=0)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r**2 * cov[1, 1]) / (50 * den.mean() ** 2)
    assert stats.ratio(num, den).se == pytest.approx(math.sqrt(var), rel=RTOL)


def test_ratio_agrees_with_a_large_clustered_bootstrap() -> None:
    rng = np.random.default_rng(7)
    num, den = _clustered(rng, 2000)
    draws = rng.integers(0, 2000, size=(4000, 2000))
    boot = num[draws].sum(axis=1) / den[draws].sum(axis=1)
    assert stats.ratio(num, den).se == pytest.approx(boot.std(ddof=1), rel=0.05)


def test_ratio_edge_cases() -> None:
    empty = stats.ratio(np.array([]), np.array([]))
    assert all(math.isnan(v) for v in vars(empty).values())
    zero_den = stats.ratio(np.array([0, 0]), np.array([0, 0]))
    assert math.isnan(zero_den.value)
    single = stats.ratio(np.array([2]), np.array([5]))
    assert single.value == 0.4 and math.isnan(single.se) and math.isnan(single.lo)
    flat = stats.ratio(np.array([1, 2, 3]), np.array([2, 4, 6]))  # every user at exactly 1/2
    assert (flat.value, flat.se, flat.lo, flat.hi) == (0.5, 0.0, 0.5, 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compare_ratios_is_the_arm_coefficient_of_a_clustered_regression(seed: int) -> None:
    """y ~ 1 + treated on pairs, clustered by user: the coefficient is R_t - R_c and its robust
    variance (no correction) is var_t + var_c exactly, because the model is saturated per arm."""
    rng = np.random.default_rng(seed)
    num_t, den_t = _clustered(rng, 300, mean_p=0.33)
    num_c, den_c = _clustered(rng, 250, mean_p=0.3)
    c = stats.compare_ratios(num_t, den_t, num_c, den_c, alpha=0.1)
    y_t, g_t = _expand(num_t, den_t)
    y_c, g_c = _expand(num_c, den_c)
    y = np.concatenate([y_t, y_c])
    treated = np.concatenate([np.ones(len(y_t)), np.zeros(len(y_c))])
    fit = _cluster_ols(y, sm.add_constant(treated), np.concatenate([g_t, g_c + 300]), False)
    assert c.diff == pytest.approx(fit.params[1], rel=RTOL)
    assert c.se == pytest.approx(fit.bse[1], rel=RTOL)
    assert c.p_value == pytest.approx(fit.pvalues[1], rel=1e-7)  # normal, since cov_type is set
    lo, hi = fit.conf_int(alpha=0.1)[1]
    assert (c.lo, c.hi) == pytest.approx((lo, hi), rel=RTOL)
    # Relative lift: the delta method on log(b0 + b1) - log(b0) with the regression's covariance.
    b0, b1 = fit.params
    grad = np.array([1 / (b0 + b1) - 1 / b0, 1 / (b0 + b1)])
    log_se = math.sqrt(grad @ fit.cov_params() @ grad)
    z = sps.norm.ppf(0.95)
    rr = (b0 + b1) / b0
    assert c.rel_lift == pytest.approx(rr - 1, rel=RTOL)
    assert c.rel_lo == pytest.approx(rr * math.exp(-z * log_se) - 1, rel=1e-8)
    assert c.rel_hi == pytest.approx(rr * math.exp(z * log_se) - 1, rel=1e-8)


def test_compare_ratios_edge_cases() -> None:
    ones = np.array([1, 1, 1])
    no_rate = stats.compare_ratios(0 * ones, ones, ones, 2 * ones)  # R_t = 0: no relative lift
    assert no_rate.diff == -0.5 and no_rate.se == 0 and no_rate.p_value == 0
    assert math.isnan(no_rate.rel_lift)
    same = stats.compare_ratios(ones, 2 * ones, ones, 2 * ones)  # zero variance, zero diff
    assert same.diff == 0 and math.isnan(same.p_value) and same.rel_lift == 0
    empty = stats.compare_ratios(np.array([]), np.array([]), ones, ones)
    assert math.isnan(empty.diff) and math.isnan(empty.p_value) and math.isnan(empty.rel_lift)


def test_aa_tests_hold_their_size_and_ratio_intervals_their_coverage() -> None:
    """2,000 seeded A/A experiments of 200 users per arm with strongly user-correlated pairs:
    p < 0.05 in 3.5%-6.5% of them, 95% ratio CIs cover the true rate ~95% of the time, while a
    test that treats pairs as independent would reject far too often."""
    rng = np.random.default_rng(2026)
    sims, g, truth = 2000, 200, 0.25
    den = 1 + rng.poisson(4, size=(sims, 2, g))
    num = rng.binomial(den, rng.beta(0.5, 1.5, size=(sims, 2, g)))  # E[reach] = 0.25 for all
    rejected = covered = naive_rejected = 0
    for s in range(sims):
        (n_t, n_c), (d_t, d_c) = num[s], den[s]
        rejected += stats.compare_ratios(n_t, d_t, n_c, d_c).p_value < 0.05
        for n, d in ((n_t, d_t), (n_c, d_c)):
            e = stats.ratio(n, d)
            covered += e.lo <= truth <= e.hi
        naive = stats.compare_proportions(int(n_t.sum()), int(d_t.sum()), int(n_c.sum()),
                                          int(d_c.sum()))  # fmt: skip
        naive_rejected += naive.p_value < 0.05
    assert 0.035 <= rejected / sims <= 0.065
    assert 0.935 <= covered / (2 * sims) <= 0.965
    assert naive_rejected / sims > 0.1


# --- sample-ratio mismatch -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "shares"),
    [
        ([50_310, 49_690], [0.5, 0.5]),
        ([5000, 5000], [0.5, 0.5]),
        ([900, 1100], [0.5, 0.5]),
        ([1, 0], [0.5, 0.5]),
        ([120, 260, 620], [0.1, 0.3, 0.6]),
        ([333, 333, 334, 290], [1, 1, 1, 1]),  # shares need not sum to 1
        ([10_000_000, 9_990_000, 30_050_000], [0.2, 0.2, 0.6]),
    ],
)
def test_srm_check_matches_scipy_chisquare(counts: list[int], shares: list[float]) -> None:
    expected = np.asarray(shares) / np.sum(shares) * np.sum(counts)
    ref = sps.chisquare(counts, expected)
    stat, p = stats.srm_check(counts, shares)
    assert stat == pytest.approx(ref.statistic, rel=RTOL, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=RTOL, abs=1e-300)


def test_srm_check_flags_a_real_mismatch_and_handles_zero_shares() -> None:
    assert stats.srm_check([52_000, 48_000], [0.5, 0.5])[1] < 1e-10
    assert stats.srm_check([5, 3, 0], [0.5, 0.5, 0.0]) == pytest.approx(
        stats.srm_check([5, 3], [0.5, 0.5])
    )
    assert stats.srm_check([5, 3, 1], [0.5, 0.5, 0.0]) == (math.inf, 0.0)
    assert all(math.isnan(v) for v in stats.srm_check([0, 0], [0.5, 0.5]))


# --- quantiles by clustered bootstrap ------------------------------------------------------------


def _times(rng: np.random.Generator, users: int) -> tuple[np.ndarray, np.ndarray]:
    """Hours to debunk for users' pairs, with a per-user speed (so pairs cluster)."""
    clusters = rng.integers(0, users, size=users * 3)
    speed = rng.lognormal(0, 1, size=users)
    return rng.exponential(speed[clusters]), clusters * 7 + 11  # labels need not be 0..G-1


def test_weighted_quantiles_equal_numpy_on_the_repeated_sample() -> None:
    rng = np.random.default_rng(3)
    qs = [0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0]
    for _ in range(50):
        v = np.sort(rng.integers(0, 20, size=rng.integers(1, 30)).astype(float))
        w = rng.integers(0, 4, size=len(v))
        w[rng.integers(len(w))] += 1
        got = stats._weighted_quantiles(v, np.cumsum(w), qs)
        np.testing.assert_allclose(got, np.quantile(np.repeat(v, w), qs), rtol=0, atol=1e-12)


def test_bootstrap_quantiles_are_deterministic_and_cover_the_sample_quantile() -> None:
    v, cl = _times(np.random.default_rng(4), 3000)
    first = stats.clustered_bootstrap_quantiles(v, cl, (0.5, 0.9), n_boot=200, seed=9)
    again = stats.clustered_bootstrap_quantiles(v, cl, (0.5, 0.9), n_boot=200, seed=9)
    other = stats.clustered_bootstrap_quantiles(v, cl, (0.5, 0.9), n_boot=200, seed=10)
    assert first == again
    assert first[0.5].lo != other[0.5].lo
    for q, e in first.items():
        assert e.value == np.quantile(v, q)
        assert e.lo < e.value < e.hi and e.se > 0


def test_bootstrap_spread_matches_an_explicit_cluster_resampling() -> None:
    """The weighted shortcut against resampling users and concatenating their pairs."""
    rng = np.random.default_rng(6)
    v, cl = _times(rng, 400)
    users = np.unique(cl)
    by_user = {u: v[cl == u] for u in users}
    explicit = [np.quantile(np.concatenate([by_user[u] for u in rng.choice(users, len(users))]),
                            [0.5, 0.9]) for _ in range(600)]  # fmt: skip
    ref_sd = np.std(explicit, axis=0, ddof=1)
    got = stats.clustered_bootstrap_quantiles(v, cl, (0.5, 0.9), n_boot=600, seed=1)
    assert got[0.5].se == pytest.approx(ref_sd[0], rel=0.15)
    assert got[0.9].se == pytest.approx(ref_sd[1], rel=0.15)


def test_bootstrap_subsampling_keeps_the_interval_width_of_the_full_sample() -> None:
    v, cl = _times(np.random.default_rng(8), 20_000)
    full = stats.clustered_bootstrap_quantiles(v, cl, (0.5,), n_boot=300, seed=2)[0.5]
    sub = stats.clustered_bootstrap_quantiles(v, cl, (0.5,), n_boot=300, seed=2,
                                              max_clusters=4000)[0.5]  # fmt: skip
    assert sub.value == full.value
    assert sub.se == pytest.approx(full.se, rel=0.2)  # without sqrt(m/G) it would be ~2.2x


def test_bootstrap_edge_cases() -> None:
    empty = stats.clustered_bootstrap_quantiles(np.array([]), np.array([]), (0.5,))
    assert math.isnan(empty[0.5].value)
    one = stats.clustered_bootstrap_quantiles(np.array([3.0, np.nan]), np.array([1, 2]), (0.5,))
    assert one[0.5] == stats.Estimate(3.0, 0.0, 3.0, 3.0)
    point_only = stats.clustered_bootstrap_quantiles(np.arange(5.0), np.arange(5), (0.5,), 0)
    assert point_only[0.5].value == 2.0 and math.isnan(point_only[0.5].se)
