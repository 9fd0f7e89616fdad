"""The customer base week by week from BTYD expectations, and its actuals, by hand."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from memberlake.btyd import MODELS
from memberlake.forecast.customer_base import actual_weeks, frame, weekly_expectations

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
