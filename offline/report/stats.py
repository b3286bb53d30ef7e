"""The statistics of the A/B reach report, in numpy and the standard library only.

    from offline.report import stats
    stats.proportion(412, 1_000)                        # Estimate with a Wilson interval
    stats.compare_ratios(num_t, den_t, num_c, den_c)    # Comparison, delta method by user
    stats.srm_check([50_310, 49_690], [0.5, 0.5])       # (chi2, p-value)

Units are users (clusters): a ratio metric is a ratio of per-user sums, and its variance is the
delta-method variance of the ratio of two means over users, with population (1/G) moments. That
is exactly the cluster-robust sandwich variance of the pair-level mean without small-sample
correction; the (1/(G-1)) sample-moment variance is G/(G-1) times it. Intervals are at 1 - alpha,
two-sided; what cannot be estimated (empty arms, zero denominators) is nan, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its standard error and its 1 - alpha interval [lo, hi]."""

    value: float
    se: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Comparison:
    """Treatment minus control: difference with SE, CI and two-sided p-value, and the relative
    lift treatment/control - 1 with a delta-method CI on the log ratio (nan where undefined)."""

    diff: float
    se: float
    lo: float
    hi: float
    p_value: float
    rel_lift: float
    rel_lo: float
    rel_hi: float


_NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan, math.nan)


# --- distributions -------------------------------------------------------------------------------


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal, accurate in the far upper tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / _SQRT2)


def normal_ppf(p: float) -> float:
    """The standard normal quantile: Acklam's rational approximation (1e-9) polished by Halley
    steps on erfc, so it matches a reference ndtri to ~1e-13 relative."""
    if math.isnan(p) or p < 0.0 or p > 1.0:
        return math.nan
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p > 0.5:
        return -_lower_ppf(1.0 - p)  # 1 - p is exact for p in [0.5, 1] (Sterbenz)
    return _lower_ppf(p)


# Acklam's coefficients: central region and lower tail.
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)  # fmt: skip


def _lower_ppf(p: float) -> float:
    """normal_ppf for 0 < p <= 0.5, where the lower-tail probability is known exactly."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = _poly(_C, q) / (_poly(_D, q) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = _poly(_A, r) * q / (_poly(_B, r) * r + 1.0)
    for _ in range(2):  # Halley on cdf(x) - p; each step roughly triples the correct digits
        err = 0.5 * math.erfc(-x / _SQRT2) - p
        u = err * _SQRT2PI * math.exp(0.5 * x * x)
        x -= u / (1.0 + 0.5 * x * u)
    return x


def _poly(coefs: Sequence[float], x: float) -> float:
    """Horner's rule, highest power first."""
    acc = 0.0
    for c in coefs:
        acc = acc * x + c
    return acc


def chi2_sf(x: float, dof: float) -> float:
    """P(X > x) for a chi-square with dof degrees of freedom: the regularized upper incomplete
    gamma Q(dof/2, x/2), by its series below a + 1 and its continued fraction above."""
    if math.isnan(x) or math.isnan(dof) or dof <= 0:
        return math.nan
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    return _gamma_q(0.5 * dof, 0.5 * x)


_EPS = 1e-16
_TINY = 1e-300


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) for a > 0, x > 0."""
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        return 1.0 - math.exp(log_front) * _gamma_series(a, x)
    return math.exp(log_front) * _gamma_cf(a, x)


def _gamma_series(a: float, x: float) -> float:
    """sum_n x^n / (a (a+1) ... (a+n)): P(a, x) = that times x^a e^-x / Gamma(a)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(100_000):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total


def _gamma_cf(a: float, x: float) -> float:
    """The continued fraction of Q(a, x) / (x^a e^-x / Gamma(a)), by modified Lentz."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def _z(alpha: float) -> float:
    """The two-sided critical value z_{1 - alpha/2}."""
    return -normal_ppf(0.5 * alpha)


def _two_sided_p(z: float) -> float:
    """2 P(Z > |z|); nan stays nan (a 0/0 statistic)."""
    return math.nan if math.isnan(z) else 2.0 * normal_sf(abs(z))


# --- proportions ---------------------------------------------------------------------------------


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for successes/n, elementwise; n == 0 gives (nan, nan). Unlike the
    Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1."""
    x = np.asarray(successes, dtype=float)
    nn = np.asarray(n, dtype=float)
    z2 = _z(alpha) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / nn
        denom = 1.0 + z2 / nn
        center = (p + z2 / (2.0 * nn)) / denom
        half = math.sqrt(z2) * np.sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn**2)) / denom
    lo = np.where(nn > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    hi = np.where(nn > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return lo, hi


def proportion(successes: int, n: int, alpha: float = 0.05) -> Estimate:
    """successes/n with its binomial SE sqrt(p(1-p)/n) and a Wilson interval; nan when n == 0."""
    if n <= 0:
        return _NAN_ESTIMATE
    p = successes / n
    lo, hi = wilson_interval(np.array(successes), np.array(n), alpha)
    return Estimate(p, math.sqrt(p * (1.0 - p) / n), float(lo), float(hi))


def compare_proportions(x_t: int, n_t: int, x_c: int, n_c: int, alpha: float = 0.05) -> Comparison:
    """p_t - p_c: unpooled Wald CI, p-value of the pooled two-proportion z-test (nan when both
    arms are all 0 or all 1), relative lift p_t/p_c - 1 with a CI on log(p_t/p_c) (nan if x_t or
    x_c is 0)."""
    if n_t <= 0 or n_c <= 0:
        return Comparison(*[math.nan] * 8)
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    se = math.sqrt(p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c)
    z = _z(alpha)
    pooled = (x_t + x_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c))
    p_value = _two_sided_p(_safe_div(diff, se0))
    if x_t > 0 and x_c > 0:
        log_se = math.sqrt(1.0 / x_t - 1.0 / n_t + 1.0 / x_c - 1.0 / n_c)
        rel = _log_ratio_ci(p_t / p_c, log_se, z)
    else:
        rel = (math.nan, math.nan, math.nan)
    return Comparison(diff, se, diff - z * se, diff + z * se, p_value, *rel)


def _safe_div(a: float, b: float) -> float:
    """a / b with IEEE semantics: x/0 is +-inf, 0/0 is nan."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(np.float64(a), np.float64(b)))


def _log_ratio_ci(rr: float, log_se: float, z: float) -> tuple[float, float, float]:
    """(rr - 1, lo - 1, hi - 1) for a ratio rr whose log has standard error log_se."""
    log_rr = math.log(rr)
    return rr - 1.0, math.exp(log_rr - z * log_se) - 1.0, math.exp(log_rr + z * log_se) - 1.0


# --- ratios of sums over users -------------------------------------------------------------------


def ratio(num: np.ndarray, den: np.ndarray, alpha: float = 0.05) -> Estimate:
    """R = sum(num)/sum(den) over users with the delta-method SE clustered by user:
    var = (var_n - 2 R cov_nd + R^2 var_d) / (G mean_d^2), population (1/G) moments.
    nan when there are no users or sum(den) == 0; se is nan with a single user."""
    r, var = _ratio_var(num, den)
    if math.isnan(r):
        return _NAN_ESTIMATE
    se = math.sqrt(var)
    z = _z(alpha)
    return Estimate(r, se, r - z * se, r + z * se)


def _ratio_var(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """(R, var(R)) as in ratio(); the variance equals sum_g (n_g - R d_g)^2 / (sum_g d_g)^2."""
    n = np.asarray(num, dtype=float)
    d = np.asarray(den, dtype=float)
    g = len(n)
    total_d = float(d.sum()) if g else 0.0
    if total_d == 0.0:
        return math.nan, math.nan
    r = float(n.sum()) / total_d
    if g < 2:
        return r, math.nan
    mean_d = total_d / g
    resid = (n - n.mean()) - r * (d - mean_d)  # var_n - 2 R cov + R^2 var_d = mean(resid^2)
    return r, float(np.mean(resid**2)) / (g * mean_d**2)


def compare_ratios(
    num_t: np.ndarray,
    den_t: np.ndarray,
    num_c: np.ndarray,
    den_c: np.ndarray,
    alpha: float = 0.05,
) -> Comparison:
    """R_t - R_c for independent arms: se = sqrt(se_t^2 + se_c^2), two-sided z-test, relative lift
    R_t/R_c - 1 with the delta method on log(R_t/R_c) (nan unless both ratios are positive)."""
    r_t, v_t = _ratio_var(num_t, den_t)
    r_c, v_c = _ratio_var(num_c, den_c)
    diff = r_t - r_c
    se = math.sqrt(v_t + v_c)
    z = _z(alpha)
    p_value = _two_sided_p(_safe_div(diff, se)) if not math.isnan(se) else math.nan
    if r_t > 0 and r_c > 0:
        rel = _log_ratio_ci(r_t / r_c, math.sqrt(v_t / r_t**2 + v_c / r_c**2), z)
    else:
        rel = (math.nan, math.nan, math.nan)
    return Comparison(diff, se, diff - z * se, diff + z * se, p_value, *rel)


# --- sample-ratio mismatch -----------------------------------------------------------------------


def srm_check(counts: Sequence[int], shares: Sequence[float]) -> tuple[float, float]:
    """Pearson chi-square of observed arm counts against the configured traffic shares
    (normalised to sum to 1), and its p-value with k - 1 degrees of freedom. A count in an arm
    with share 0 is an infinite mismatch (p = 0); empty zero-share arms are left out."""
    obs = np.asarray(counts, dtype=float)
    share = np.asarray(shares, dtype=float)
    if obs.shape != share.shape or obs.sum() <= 0 or share.sum() <= 0:
        return math.nan, math.nan
    expected = share / share.sum() * obs.sum()
    if np.any((expected == 0) & (obs > 0)):
        return math.inf, 0.0
    keep = expected > 0
    stat = float(np.sum((obs[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(keep.sum()) - 1
    return stat, (chi2_sf(stat, dof) if dof > 0 else math.nan)


# --- quantiles by clustered bootstrap ------------------------------------------------------------


def clustered_bootstrap_quantiles(
    values: np.ndarray,
    clusters: np.ndarray,
    qs: Sequence[float],
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    max_clusters: int = 200_000,
) -> dict[float, Estimate]:
    """Sample quantiles (numpy's linear definition) with percentile bootstrap CIs that resample
    clusters (users) with replacement; se is the bootstrap sd. Deterministic from seed. Above
    max_clusters the bootstrap runs on a seeded subsample of m clusters and its spread is scaled
    by sqrt(m/G) around the full-sample quantile (m-out-of-n bootstrap). NaN values are dropped."""
    v = np.asarray(values, dtype=float)
    keep = ~np.isnan(v)
    v, cl = v[keep], np.asarray(clusters)[keep]
    if len(v) == 0:
        return {q: _NAN_ESTIMATE for q in qs}
    point = np.quantile(v, list(qs))
    if n_boot <= 0:
        nan = math.nan
        return {q: Estimate(float(p), nan, nan, nan) for q, p in zip(qs, point, strict=True)}
    rng = np.random.default_rng(seed)
    _, idx = np.unique(cl, return_inverse=True)
    n_clusters = int(idx.max()) + 1
    v, idx, scale = _subsample_clusters(v, idx, n_clusters, max_clusters, rng)
    boot = _bootstrap(v, idx, qs, n_boot, rng)  # (n_boot, len(qs))
    center = np.quantile(v, list(qs)) if scale != 1.0 else point
    boot = point + scale * (boot - center)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    sd = boot.std(axis=0, ddof=1) if n_boot > 1 else np.full(len(point), np.nan)
    return {
        q: Estimate(float(point[j]), float(sd[j]), float(lo[j]), float(hi[j]))
        for j, q in enumerate(qs)
    }


def _subsample_clusters(
    v: np.ndarray, idx: np.ndarray, g: int, m: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """At most m of the g clusters (seeded, without replacement), re-indexed 0..m-1, and the
    sqrt(m/g) factor that rescales a subsample's bootstrap spread to the full sample's."""
    if g <= m:
        return v, idx, 1.0
    chosen = np.zeros(g, dtype=bool)
    chosen[rng.choice(g, size=m, replace=False)] = True
    keep = chosen[idx]
    new_index = np.cumsum(chosen) - 1
    return v[keep], new_index[idx[keep]], math.sqrt(m / g)


def _bootstrap(
    v: np.ndarray, idx: np.ndarray, qs: Sequence[float], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """The qs-quantiles of n_boot cluster resamples: values are sorted once, and each resample is
    a vector of cluster multiplicities (bincount of G draws) turned into cumulative weights."""
    order = np.argsort(v, kind="stable")
    v_sorted, idx_sorted = v[order], idx[order]
    g = int(idx.max()) + 1
    out = np.empty((n_boot, len(qs)))
    cum = np.empty(len(v), dtype=np.int64)  # reused: the loop is memory-bound
    for b in range(n_boot):
        mult = np.bincount(rng.integers(0, g, size=g), minlength=g)
        np.take(mult, idx_sorted, out=cum)
        np.cumsum(cum, out=cum)
        out[b] = _weighted_quantiles(v_sorted, cum, qs)
    return out


def _weighted_quantiles(v_sorted: np.ndarray, cum: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """np.quantile (linear) of the sample where v_sorted[i] appears cum[i] - cum[i-1] times; nan
    when the weights are all 0. Exact: it indexes the virtual repeated array by binary search."""
    total = int(cum[-1])
    if total == 0:
        return np.full(len(qs), np.nan)
    h = np.asarray(qs, dtype=float) * (total - 1)
    k0 = np.floor(h).astype(np.int64)
    k1 = np.minimum(k0 + 1, total - 1)
    lo = v_sorted[np.searchsorted(cum, k0, side="right")]
    hi = v_sorted[np.searchsorted(cum, k1, side="right")]
    t = h - k0
    return np.where(t >= 0.5, hi - (hi - lo) * (1.0 - t), lo + (hi - lo) * t)  # numpy's lerp
