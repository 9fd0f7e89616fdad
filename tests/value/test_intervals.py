"""CLV uncertainty: standard errors from the Hessian (Spark pass = in-memory = ``lifetimes``),
interval coverage on data simulated from known parameters, and the per-person bounds in ``clv``."""
from __future__ import annotations

import numpy as np
import pytest

from memberlake import btyd
from memberlake.value import clv

TRUE = {"r": 0.8, "alpha": 10.0, "a": 1.2, "b": 3.0}      # BG/NBD, time in days


def _simulate(n: int, rng: np.random.Generator, cap: int = 400) -> tuple[np.ndarray, ...]:
    """(x, t_x, T) of ``n`` persons from the BG/NBD process with ``TRUE`` parameters: purchases at
    rate λ ~ Gamma(r, 1/α) after a first purchase at 0, inactive after each repeat with chance
    p ~ Beta(a, b), observed for T ~ U(100, 400) days (at most ``cap`` repeats, far above any)."""
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.uniform(100, 400, n).round()
    times = np.cumsum(rng.exponential(1.0, (n, cap)) / lam[:, None], axis=1)
    seen = (times <= T[:, None]).sum(axis=1)
    drop = rng.geometric(p)                          # the repeat after which the person drops out
    x = np.minimum(seen, drop)
    tx = np.where(x > 0, np.take_along_axis(times, np.maximum(x - 1, 0)[:, None], axis=1)[:, 0], 0.0)
    return x.astype(float), tx, T


def _fit(x, tx, T):
    ones = np.ones(len(x))
    params, _, _ = btyd.fit_counts("bgnbd", x, tx, T, ones)
    values = np.array([params[k] for k in TRUE])
    cov = btyd.log_covariance(lambda pts: [btyd.bgnbd_partials(p, x, tx, T, ones) for p in pts], values)
    return params, cov


@pytest.mark.extended
def test_standard_errors_match_lifetimes_on_cdnow(spark):
    import lifetimes
    from lifetimes.datasets import load_cdnow_summary

    summary = load_cdnow_summary(index_col=[0])
    reference = lifetimes.BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"], tol=1e-9)
    df = spark.createDataFrame([(float(a), float(b), float(c)) for a, b, c in
                                zip(summary["frequency"], summary["recency"], summary["T"], strict=True)],
                               "frequency double, recency double, T double")
    fit = clv.fit_transactions(df, "bgnbd")
    got = [fit.std_errors[k] for k in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(got, [reference.standard_errors_[k] for k in ("r", "alpha", "a", "b")], rtol=0.01)
    # the Spark pass and the in-memory evaluation give the same covariance
    x, tx, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    values = np.array([fit.params[k] for k in ("r", "alpha", "a", "b")])
    local = btyd.log_covariance(lambda pts: [btyd.bgnbd_partials(p, x, tx, T, np.ones(len(x))) for p in pts], values)
    np.testing.assert_allclose(fit.log_covariance, local, rtol=1e-6)


@pytest.mark.extended
def test_parameter_and_person_intervals_cover_the_truth_at_their_level():
    """90% intervals over 150 simulated data sets of 3,000 persons: each parameter's Wald interval
    and the sampled interval of one person's P(alive) and 90-day expected purchases contain the
    value under the true parameters 90% ± 5 points of the time (binomial sd 2.4 points; seeded,
    measured 0.87-0.93)."""
    rng = np.random.default_rng(2024)
    person = (np.array([2.0]), np.array([60.0]), np.array([200.0]))
    truth_alive = btyd.bgnbd_p_alive(*person, *TRUE.values())[0]
    truth_expected = btyd.bgnbd_expected(90.0, *person, *TRUE.values())[0]
    hits = {k: 0 for k in [*TRUE, "p_alive", "expected"]}
    runs = 150
    for _ in range(runs):
        params, cov = _fit(*_simulate(3000, rng))
        assert cov is not None
        se_log = np.sqrt(np.diag(cov))
        for i, k in enumerate(TRUE):
            hits[k] += abs(np.log(params[k]) - np.log(TRUE[k])) <= 1.6449 * se_log[i]
        fit = clv.Fit("bgnbd", params, 0.0, 0, True, 3000, log_covariance=cov)
        draws = clv.draw_parameters(fit, 400, rng)
        alive = np.stack([btyd.bgnbd_p_alive(*person, *d) for d in draws])
        expected = np.stack([btyd.bgnbd_expected(90.0, *person, *d) for d in draws])
        (lo_a,), (hi_a,) = clv.central(alive, 0.9)
        (lo_e,), (hi_e,) = clv.central(expected, 0.9)
        hits["p_alive"] += lo_a <= truth_alive <= hi_a
        hits["expected"] += lo_e <= truth_expected <= hi_e
    coverage = {k: v / runs for k, v in hits.items()}
    assert all(0.85 <= c <= 0.95 for c in coverage.values()), coverage


def test_log_covariance_is_none_without_a_maximum():
    # a likelihood that is flat in one direction has no inverse: no covariance, NaN errors
    flat = btyd.log_covariance(lambda pts: [np.array([0.0, 1.0 / p[0], 0.0]) for p in pts], np.array([2.0, 3.0]))
    assert flat is None
    assert np.isnan(btyd.standard_errors({"r": 1.0, "alpha": 2.0}, None)["r"])


@pytest.mark.extended
def test_score_bounds_the_point_values_and_can_be_switched_off(spark):
    rng = np.random.default_rng(7)
    x, tx, T = _simulate(800, rng)
    m = np.where(x > 0, rng.gamma(4.0, 10.0, len(x)), 0.0)
    summary = spark.createDataFrame([(f"P{i}", *map(float, v)) for i, v in enumerate(zip(x, tx, T, m, strict=True))],
                                    "person_id string, frequency double, recency double, T double, monetary_value double")
    fit = clv.fit_transactions(summary, "bgnbd")
    gg = clv.fit_gamma_gamma(summary)
    assert fit.log_covariance is not None and gg.log_covariance is not None
    scored = clv.score(summary, fit, gg.params, 365, 0.1, clv.Intervals(gg, 0.9, 200, 1)).toPandas()
    assert set(clv.INTERVAL_COLUMNS) <= set(scored.columns)
    for c in ("p_alive", "expected_purchases", "clv"):
        lower, upper, point = scored[f"{c}_lower"], scored[f"{c}_upper"], scored[c]
        assert lower.notna().all() and (lower <= upper).all()
        # the fitted value is inside its own parameter interval for (nearly) everyone
        slack = 0.01 if c == "clv" else 1e-9       # CLV bounds are rounded to cents
        assert ((point >= lower - slack) & (point <= upper + slack)).mean() >= 0.97, c
    # the same seed gives the same bounds; no samples gives null bounds and the same point values
    again = clv.score(summary, fit, gg.params, 365, 0.1, clv.Intervals(gg, 0.9, 200, 1)).toPandas()
    np.testing.assert_allclose(again["clv_upper"], scored["clv_upper"])
    off = clv.score(summary, fit, gg.params, 365, 0.1, clv.Intervals(gg, 0.9, 0, 1)).toPandas()
    assert off["clv_lower"].isna().all()
    np.testing.assert_allclose(off["clv"], scored["clv"])


def test_clv_parameters_rows_carry_the_covariance_the_customer_base_rebuilds(spark):
    """Each parameter row holds its row of the log-parameter covariance; the forecast job's reader
    gets the matrix back in the model's order, and None for a fit without one."""
    from datetime import date

    from memberlake.forecast.build import _log_covariance
    from memberlake.value.snapshot import parameters_frame

    cov = np.array([[0.04, 0.01, 0.0, 0.0], [0.01, 0.09, 0.0, 0.002], [0.0, 0.0, 0.16, 0.05], [0.0, 0.002, 0.05, 0.25]])
    fits = [clv.Fit("bgnbd", dict(TRUE), -100.0, 10, True, 50, log_covariance=cov),
            clv.Fit("gamma_gamma", {"p": 6.0, "q": 4.0, "gamma": 15.0}, -50.0, 5, True, 20)]
    rows = parameters_frame(spark, fits, date(2024, 6, 30)).collect()
    by = {(r.model, r.parameter): r for r in rows}
    assert by[("bgnbd", "alpha")].std_error == pytest.approx(10.0 * 0.3)
    assert by[("gamma_gamma", "p")].log_covariance is None
    shuffled = {r.parameter: r.log_covariance for r in reversed(rows) if r.model == "bgnbd"}
    np.testing.assert_array_equal(_log_covariance("bgnbd", shuffled), cov)
    assert _log_covariance("bgnbd", {**shuffled, "b": None}) is None
