"""Tests of a treatment against its control from sufficient statistics (counts, sums, cross sums).

Spark reduces every arm of every campaign to a few sums (:class:`Arm`); the intervals and tests
below need only those, so they run on the driver over rows that grow with campaigns x variants
x metrics, never with contacts.

- Difference of means: Welch's t (unequal variances, Welch–Satterthwaite degrees of freedom).
- Relative lift (difference / control mean): delta-method standard error, normal interval.
- CUPED (Deng et al. 2013): the same metric in an equally long pre-period ``x`` as a covariate,
  ``y - theta (x - mean x)`` with ``theta = cov(x, y) / var(x)`` pooled over the campaign's arms.
- Sample-ratio mismatch: Pearson's chi-square of the arm sizes against the planned shares.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _stats() -> Any:
    """scipy.stats, imported on first use (later calls find it in ``sys.modules``): importing it
    costs about 0.7 s, and the command line loads this module for every job to build its parser."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Arm:
    """Sufficient statistics of one arm: ``y`` the outcome, ``x`` its pre-period value."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0

    @property
    def mean(self) -> float:
        return self.sum_y / self.n if self.n else math.nan

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n if self.n else math.nan

    @property
    def var(self) -> float:
        return _variance(self.n, self.sum_y, self.sum_y2)

    @property
    def var_x(self) -> float:
        return _variance(self.n, self.sum_x, self.sum_x2)

    @property
    def cov_xy(self) -> float:
        if self.n < 2:
            return math.nan
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)

    def __add__(self, other: "Arm") -> "Arm":
        return Arm(self.n + other.n, self.sum_y + other.sum_y, self.sum_y2 + other.sum_y2, self.sum_x + other.sum_x,
                   self.sum_x2 + other.sum_x2, self.sum_xy + other.sum_xy)


def _variance(n: int, s: float, s2: float) -> float:
    if n < 2:
        return math.nan
    return max(0.0, (s2 - s * s / n) / (n - 1))   # rounding can dip a zero variance below zero


@dataclass(frozen=True)
class Test:
    """One treatment-vs-control comparison of a metric."""

    difference: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float | None
    relative_ci_low: float | None
    relative_ci_high: float | None


def _t_test(difference: float, var_t: float, n_t: int, var_c: float, n_c: int, confidence: float
            ) -> tuple[float, float, float, float, float]:
    """(se, df, ci_low, ci_high, p) of ``difference`` with Welch's t."""
    if min(n_t, n_c) < 2 or math.isnan(var_t) or math.isnan(var_c):
        return math.nan, math.nan, math.nan, math.nan, math.nan
    a, b = var_t / n_t, var_c / n_c
    se = math.sqrt(a + b)
    if se == 0.0:      # both arms constant: the difference is exact
        return 0.0, math.inf, difference, difference, 1.0 if difference == 0 else 0.0
    df = (a + b) ** 2 / ((a * a / (n_t - 1) if a else 0.0) + (b * b / (n_c - 1) if b else 0.0))
    t = _stats().t
    q = t.ppf(0.5 + confidence / 2, df)
    p = 2 * t.sf(abs(difference) / se, df)
    return se, df, difference - q * se, difference + q * se, float(p)


def welch(treated: Arm, control: Arm, confidence: float = 0.95) -> Test:
    """Difference of means with Welch's interval and p-value; relative lift by the delta method."""
    difference = treated.mean - control.mean
    se, df, low, high, p = _t_test(difference, treated.var, treated.n, control.var, control.n, confidence)
    lift = rel_low = rel_high = None
    if control.n and control.mean != 0 and not math.isnan(se):
        mc, mt = control.mean, treated.mean
        lift = difference / mc
        rel_se = math.sqrt(treated.var / treated.n / mc ** 2 + mt ** 2 * control.var / control.n / mc ** 4)
        z = _stats().norm.ppf(0.5 + confidence / 2)
        rel_low, rel_high = lift - z * rel_se, lift + z * rel_se
    return Test(difference, se, df, low, high, p, lift, rel_low, rel_high)


def cuped_theta(arms: list[Arm]) -> float:
    """``cov(x, y) / var(x)`` over every arm of a campaign pooled (0 when x does not vary)."""
    pooled = arms[0]
    for arm in arms[1:]:
        pooled = pooled + arm
    var_x = pooled.var_x
    if math.isnan(var_x) or var_x == 0:
        return 0.0
    return pooled.cov_xy / var_x


def cuped(treated: Arm, control: Arm, theta: float, confidence: float = 0.95) -> tuple[Test, float]:
    """The CUPED-adjusted difference and its test, and the share of the difference's variance
    it removed (1 - adjusted / plain)."""
    difference = (treated.mean - control.mean) - theta * (treated.mean_x - control.mean_x)

    def adjusted(arm: Arm) -> float:
        return max(0.0, arm.var + theta ** 2 * arm.var_x - 2 * theta * arm.cov_xy)

    se, df, low, high, p = _t_test(difference, adjusted(treated), treated.n, adjusted(control), control.n, confidence)
    plain = treated.var / treated.n + control.var / control.n if min(treated.n, control.n) else math.nan
    reduction = 1 - se ** 2 / plain if plain and not math.isnan(plain) and not math.isnan(se) else math.nan
    return Test(difference, se, df, low, high, p, None, None, None), reduction


def srm(counts: dict[str, int], shares: dict[str, float]) -> tuple[float, float]:
    """(chi-square, p-value) of the arm sizes against the planned shares (normalised to 1)."""
    arms = sorted(counts)
    total = sum(counts.values())
    weight = sum(shares.get(a, 0.0) for a in arms)
    if len(arms) < 2 or total == 0 or weight <= 0:
        return math.nan, math.nan
    expected = [total * shares.get(a, 0.0) / weight for a in arms]
    if any(e == 0 for e in expected):
        return math.inf, 0.0
    chi2 = sum((counts[a] - e) ** 2 / e for a, e in zip(arms, expected, strict=True))
    return chi2, float(_stats().chi2.sf(chi2, len(arms) - 1))


def minimum_detectable_effect(sd: float, n_treated: int, n_control: int, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """The smallest true difference of means a two-sided test at ``alpha`` detects with
    probability ``power`` for arms of these sizes and a metric of standard deviation ``sd``:
    ``(z(1 - alpha/2) + z(power)) * sd * sqrt(1/n_t + 1/n_c)`` (normal approximation)."""
    if min(n_treated, n_control) < 1 or math.isnan(sd):
        return math.nan
    norm = _stats().norm
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return float(z * sd * math.sqrt(1 / n_treated + 1 / n_control))
