"""Readout statistics worked by hand on tiny arms, and checked against scipy's own tests."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from memberlake.campaigns.stats import Arm, cuped, cuped_theta, srm, welch


def arm(y, x=None) -> Arm:
    y = np.asarray(y, dtype=float)
    x = np.zeros_like(y) if x is None else np.asarray(x, dtype=float)
    return Arm(len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())


def test_welch_difference_interval_and_p_value_by_hand():
    # treated 1,0,1,1: mean 0.75, variance 0.25; control 0,0,1,0: mean 0.25, variance 0.25
    # se = sqrt(0.25/4 + 0.25/4) = 0.353553; df = 0.125² / (2 · 0.0625²/3) = 6; t(0.975, 6) = 2.446912
    test = welch(arm([1, 0, 1, 1]), arm([0, 0, 1, 0]))
    assert test.difference == pytest.approx(0.5)
    assert test.se == pytest.approx(0.3535534, abs=1e-7) and test.df == pytest.approx(6.0)
    assert (test.ci_low, test.ci_high) == pytest.approx((0.5 - 2.446912 * 0.3535534, 0.5 + 2.446912 * 0.3535534), abs=1e-6)
    assert test.p_value == pytest.approx(0.20703125, abs=1e-8)     # 2 · P(T6 > √2)
    # relative lift 0.5 / 0.25 = 2; delta-method se = sqrt(0.0625/0.0625 + 0.5625 · 0.0625/0.00390625) = √10
    assert test.relative_lift == pytest.approx(2.0)
    assert test.relative_ci_low == pytest.approx(2 - 1.959964 * math.sqrt(10), abs=1e-5)


def test_welch_agrees_with_scipy_on_unequal_arms():
    rng = np.random.default_rng(4)
    t, c = rng.exponential(3.0, 300), rng.exponential(2.5, 120)
    mine = welch(arm(t), arm(c))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert mine.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert mine.df == pytest.approx(ref.df, rel=1e-9)
    low, high = ref.confidence_interval(0.95)
    assert (mine.ci_low, mine.ci_high) == pytest.approx((low, high), rel=1e-9)


def test_constant_arms_and_tiny_arms():
    same = welch(arm([0, 0, 0]), arm([0, 0]))
    assert (same.difference, same.se, same.p_value) == (0.0, 0.0, 1.0)
    exact = welch(arm([1, 1]), arm([0, 0]))
    assert exact.p_value == 0.0 and exact.ci_low == exact.ci_high == 1.0
    single = welch(arm([1]), arm([0, 1]))
    assert math.isnan(single.p_value) and single.difference == pytest.approx(0.5)
    assert welch(arm([1, 0]), arm([0, 0])).relative_lift is None        # control mean 0: no relative lift


def test_srm_flags_a_skewed_split_and_uses_planned_shares():
    assert srm({"a": 500, "b": 500}, {"a": 1, "b": 1}) == (0.0, 1.0)
    chi2, p = srm({"a": 550, "b": 450}, {"a": 1, "b": 1})            # (50²/500) · 2 = 10
    assert chi2 == pytest.approx(10.0) and p == pytest.approx(0.0015654, abs=1e-6)
    assert srm({"a": 600, "b": 400}, {"a": 1, "b": 1})[1] < 1e-9
    assert srm({"control": 100, "offer": 900}, {"control": 0.1, "offer": 0.9})[1] == pytest.approx(1.0)
    assert srm({"only": 10}, {"only": 1}) == (pytest.approx(math.nan, nan_ok=True), pytest.approx(math.nan, nan_ok=True))


def test_cuped_keeps_the_effect_and_cuts_the_variance_on_a_correlated_pre_period():
    rng = np.random.default_rng(11)
    n = 4000
    x = rng.gamma(2.0, 50.0, 2 * n)                      # last period's spend
    y = 0.8 * x + rng.normal(0, 20, 2 * n)
    y[:n] += 5.0                                         # the treatment adds 5
    treated, control = arm(y[:n], x[:n]), arm(y[n:], x[n:])
    theta = cuped_theta([treated, control])
    assert theta == pytest.approx(np.cov(x, y)[0, 1] / np.var(x, ddof=1), rel=1e-9)
    adjusted, reduction = cuped(treated, control, theta)
    plain = welch(treated, control)
    assert reduction > 0.8 and adjusted.se < 0.5 * plain.se
    assert adjusted.ci_low < 5.0 < adjusted.ci_high
    # the same as a Welch test on y - theta (x - mean x)
    z = y - theta * (x - x.mean())
    ref = stats.ttest_ind(z[:n], z[n:], equal_var=False)
    assert adjusted.difference == pytest.approx(z[:n].mean() - z[n:].mean(), rel=1e-9)
    assert adjusted.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)


def test_cuped_without_a_pre_period_changes_nothing():
    t, c = arm([1, 0, 1, 1]), arm([0, 0, 1, 0])
    adjusted, reduction = cuped(t, c, cuped_theta([t, c]))
    assert adjusted.difference == pytest.approx(0.5) and adjusted.p_value == pytest.approx(0.20703125)
    assert reduction == pytest.approx(0.0)
