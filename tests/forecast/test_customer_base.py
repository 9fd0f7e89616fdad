"""The customer base week by week from BTYD expectations, and its actuals, by hand."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from memberlake.btyd import MODELS, TransactionModel, bgnbd_expected
from memberlake.forecast.customer_base import actual_weeks, bounds, frame, parameter_points, week_sums, weekly_expectations

PARAMS = {"r": 0.25, "alpha": 30.0, "a": 0.8, "b": 2.5}


def test_weekly_expectations_sum_the_per_person_differences(spark):
    people = [(0.0, 0.0, 40.0, 0.0), (3.0, 50.0, 80.0, 20.0), (8.0, 200.0, 210.0, 35.0), (1.0, 5.0, 300.0, 10.0)]
    summary = spark.createDataFrame(people, "frequency double, recency double, T double, expected_value double"
                                    ).repartition(3)
    got = {r.week: r for r in weekly_expectations(summary, "bgnbd", PARAMS, 4).collect()}
    x, tx, T, spend = (np.array(c) for c in zip(*people, strict=True))
    spec = MODELS["bgnbd"]
    cumulative = [np.zeros(4)] + [spec.expected(7.0 * k, x, tx, T, *PARAMS.values()) for k in range(1, 5)]
    for k in range(1, 5):
        week = cumulative[k] - cumulative[k - 1]
        assert got[k].persons == 4
        assert got[k].expected_purchases == pytest.approx(week.sum())
        assert got[k].expected_active == pytest.approx((1 - np.exp(-week)).sum())
        assert got[k].expected_revenue == pytest.approx((week * spend).sum())
    assert got[1].expected_purchases > got[4].expected_purchases > 0   # the base decays


def test_actual_weeks_count_purchase_days_of_the_cohort(spark):
    purch = spark.createDataFrame([
        ("p1", date(2024, 1, 1), 10.0), ("p1", date(2024, 1, 11), 5.0), ("p1", date(2024, 1, 11), 1.0),
        ("p1", date(2024, 1, 15), 2.0), ("p2", date(2024, 1, 9), 7.0),   # p2 joins after the start: not counted
        ("p3", date(2023, 12, 1), 3.0), ("p3", date(2024, 1, 17), 4.0), ("p3", date(2024, 2, 1), 9.0),
    ], "person_id string, order_date date, net double")
    start = date(2024, 1, 3)   # week 1 = 4..10 January, week 2 = 11..17
    got = {r.week: (r.actual_purchases, r.actual_active, r.actual_revenue)
           for r in actual_weeks(purch, start, 2).collect()}
    assert got == {2: (3.0, 2.0, 12.0)}   # p1 on the 11th (two orders, one day) and 15th, p3 on the 17th
    rows = frame(weekly_expectations(spark.createDataFrame([(1.0, 5.0, 10.0, 1.0)], "frequency double, "
                 "recency double, T double, expected_value double"), "bgnbd", PARAMS, 2), start, "backtest",
                 "bgnbd", actual_weeks(purch, start, 2)).orderBy("week").collect()
    assert [(r.week, r.week_start, r.actual_purchases) for r in rows] == [
        (1, date(2024, 1, 4), 0.0), (2, date(2024, 1, 11), 3.0)]


def _simulate_bgnbd(rng: np.random.Generator, persons: int, params: dict[str, float], weeks: int):
    """BG/NBD persons: (x, t_x, T) over a calibration age T, and their purchases per week after T."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    lam, drop = rng.gamma(r, 1.0 / alpha, persons), rng.beta(a, b, persons)
    T = rng.uniform(60.0, 300.0, persons)
    x, tx, ahead = np.zeros(persons), np.zeros(persons), np.zeros((persons, weeks))
    for i in range(persons):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T[i] + 7 * weeks:
                break
            if t <= T[i]:
                x[i], tx[i] = x[i] + 1, t
            else:
                ahead[i, int((t - T[i]) // 7)] += 1
            if rng.random() < drop[i]:   # BG/NBD: a person may drop out right after each purchase
                break
    return x, tx, T, ahead.sum(axis=0)


def test_intervals_of_the_persons_randomness_cover_simulated_weeks_near_nominal():
    """With the true parameters (no parameter uncertainty), the 90% bounds of weekly repeat
    purchases contain the simulated weeks about 90% of the time (10 populations x 8 weeks)."""
    rng, spec, weeks, inside = np.random.default_rng(11), MODELS["bgnbd"], 8, []
    values = list(PARAMS.values())
    for _ in range(10):
        x, tx, T, actual = _simulate_bgnbd(rng, 1500, PARAMS, weeks)
        ones = np.ones(len(x))
        sums = np.stack([week_sums(spec, values, x, tx, T, ones, ones, ones, weeks)[0]])
        limits = bounds(sums, None, 0.9)
        inside += list((limits[:, 0] <= actual) & (actual <= limits[:, 1]))
        assert np.abs(sums[0, :, 0] - actual).sum() < 0.25 * actual.sum()   # the expectation tracks the weeks
    assert 0.82 <= np.mean(inside) <= 0.98


def test_the_parameters_variance_by_the_delta_method_matches_parameter_draws():
    """The bounds' parameter part equals the spread of the weekly sums over draws of the
    log-parameters from their covariance (Monte Carlo, 3,000 draws), within 10%."""
    rng, spec, weeks = np.random.default_rng(5), MODELS["bgnbd"], 4
    x, tx, T, _ = _simulate_bgnbd(rng, 400, PARAMS, weeks)
    n, spend = np.ones(len(x)), rng.uniform(10.0, 50.0, len(x))
    sd = np.array([0.08, 0.10, 0.15, 0.15])
    cov = np.outer(sd, sd) * np.array([[1, .8, 0, 0], [.8, 1, 0, 0], [0, 0, 1, .6], [0, 0, .6, 1]])
    values = list(PARAMS.values())
    sums = np.stack([week_sums(spec, theta, x, tx, T, n, spend, spend ** 2, weeks)[0]
                     for theta in parameter_points(values, True)])
    sums[:, :, 3:] = 0.0                                   # the parameters' part alone
    z = 1.6448536269514722
    delta = (bounds(sums, cov, 0.9)[:, 1::2] - sums[0, :, :3]) / z
    draws = np.exp(np.log(values) + rng.multivariate_normal(np.zeros(4), cov, 3000))
    spread = np.stack([week_sums(spec, list(theta), x, tx, T, n, spend, spend ** 2, weeks)[0][:, :3]
                       for theta in draws]).std(axis=0)
    assert delta == pytest.approx(spread, rel=0.10)


def test_weekly_expectations_count_persons_with_the_same_history_and_bound_each_week(spark):
    people = [(0.0, 0.0, 40.0, 0.0), (3.0, 50.0, 80.0, 20.0), (3.0, 50.0, 80.0, 20.0), (8.0, 200.0, 210.0, 35.0)]
    summary = spark.createDataFrame(people, "frequency double, recency double, T double, expected_value double")
    cov = np.diag([0.01, 0.01, 0.04, 0.04])
    plain = {r.week: r for r in weekly_expectations(summary, "bgnbd", PARAMS, 3).collect()}
    wide = {r.week: r for r in weekly_expectations(summary, "bgnbd", PARAMS, 3, cov, 0.9).collect()}
    x, tx, T, spend = (np.array(c) for c in zip(*people, strict=True))
    ones = np.ones(4)
    by_hand = week_sums(MODELS["bgnbd"], list(PARAMS.values()), x, tx, T, ones, spend, spend ** 2, 3)[0]
    for k in (1, 2, 3):
        assert plain[k].persons == wide[k].persons == 4
        assert plain[k].expected_purchases == pytest.approx(by_hand[k - 1, 0])
        assert plain[k].expected_revenue == pytest.approx(by_hand[k - 1, 2])
        z_sd = 1.6448536269514722 * np.sqrt(by_hand[k - 1, 3])
        assert plain[k].expected_purchases_upper == pytest.approx(by_hand[k - 1, 0] + z_sd)
        assert plain[k].expected_purchases_lower == pytest.approx(max(0.0, by_hand[k - 1, 0] - z_sd))
        for m in ("expected_purchases", "expected_active", "expected_revenue"):
            assert wide[k][m] == pytest.approx(plain[k][m])
            assert wide[k][f"{m}_lower"] <= wide[k][m] <= wide[k][f"{m}_upper"]
            assert wide[k][f"{m}_upper"] - wide[k][f"{m}_lower"] > plain[k][f"{m}_upper"] - plain[k][f"{m}_lower"]


def test_persons_whose_predictions_are_not_finite_are_counted_and_reported(spark, monkeypatch, caplog):
    """A prediction that fails counts as no purchases (not a NaN in every week's sum), and the job
    says how many persons that was; the persons of every other row are summed as usual."""
    def expected(t, x, tx, T, *values):
        return np.where(np.asarray(x) == 3.0, np.nan, bgnbd_expected(t, x, tx, T, *values))

    bgnbd = MODELS["bgnbd"]
    monkeypatch.setitem(MODELS, "flaky", TransactionModel("flaky", bgnbd.parameters, bgnbd.partials, expected,
                                                          bgnbd.p_alive))
    people = [(0.0, 0.0, 40.0, 0.0), (3.0, 50.0, 80.0, 20.0), (3.0, 50.0, 80.0, 20.0), (1.0, 5.0, 300.0, 10.0)]
    summary = spark.createDataFrame(people, "frequency double, recency double, T double, expected_value double"
                                    ).repartition(2)
    with caplog.at_level("WARNING", logger="memberlake.forecast.customer_base"):
        got = {r.week: r for r in weekly_expectations(summary, "flaky", PARAMS, 2).collect()}
    assert [r.getMessage() for r in caplog.records if "not finite" in r.getMessage()] == [
        "customer base (flaky): 2 persons' P(alive) or expected purchases were not finite at the fitted parameters; "
        "they count as alive with no purchases in every week"]
    x, tx, T = np.array([0.0, 1.0]), np.array([0.0, 5.0]), np.array([40.0, 300.0])
    first_week = bgnbd_expected(7.0, x, tx, T, *PARAMS.values())
    assert got[1].persons == 4 and got[1].expected_purchases == pytest.approx(first_week.sum())
