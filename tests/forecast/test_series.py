"""Demand series and their profile (pattern, status), on tiny hand-built frames."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from memberlake.forecast.pattern import pattern, profile
from memberlake.forecast.series import GRAINS, demand_history, demand_lines, ds_of, last_complete_period

WEEK = GRAINS["category_week"]


@pytest.mark.parametrize("as_of,last", [
    (date(2024, 3, 10), date(2024, 3, 4)),    # a Sunday: its week is complete
    (date(2024, 3, 9), date(2024, 2, 26)),    # a Saturday: the week of 4 March is not
    (date(2024, 3, 11), date(2024, 3, 4)),    # a Monday
])
def test_last_complete_week(as_of, last):
    assert last_complete_period(as_of, WEEK) == last
    assert last_complete_period(as_of, GRAINS["channel_day"]) == as_of


def orders_frames(spark):
    orders = spark.createDataFrame([
        ("o1", datetime(2024, 1, 2, 10), "web", "s1", "completed", 30.0),
        ("o2", datetime(2024, 1, 3, 10), "app", "s1", "cancelled", 99.0),   # not demand
        ("o3", datetime(2024, 1, 17, 10), "web", None, None, 12.0),         # status missing = completed
        ("o4", datetime(2024, 1, 30, 10), "web", "s2", "completed", 5.0),   # after the as-of date
    ], "order_id string, order_ts timestamp, channel string, store_id string, status string, total_amount double")
    items = spark.createDataFrame([
        ("o1", 1, "p1", 2, 10.0, 5.0), ("o1", 2, "p2", 1, 10.0, 0.0), ("o2", 1, "p1", 9, 11.0, 0.0),
        ("o3", 1, "p1", 3, 4.0, None), ("o4", 1, "p2", 1, 5.0, 0.0),
    ], "order_id string, line_no int, product_id string, quantity int, unit_price double, discount_amount double")
    products = spark.createDataFrame([("p1", "Books"), ("p2", None)], "product_id string, category string")
    return orders, items, products


def test_history_fills_gaps_with_zero_and_keeps_only_complete_weeks(spark):
    orders, items, products = orders_frames(spark)
    as_of = date(2024, 1, 27)   # Saturday: the last complete week starts 15 January
    lines = demand_lines(orders, items, products, as_of)
    got = {(r.measure, r.series_id, r.ds): r.y for r in demand_history(lines, WEEK, ["units", "revenue"], as_of).collect()}
    w1, w3 = ds_of(date(2024, 1, 1), WEEK), ds_of(date(2024, 1, 15), WEEK)
    assert got == {
        ("units", "Books", w1): 2.0, ("units", "Books", w1 + 1): 0.0, ("units", "Books", w3): 3.0,
        ("revenue", "Books", w1): 15.0, ("revenue", "Books", w1 + 1): 0.0, ("revenue", "Books", w3): 12.0,
        # a product without a category is its own "(unknown)" series, from its first sale
        ("units", "(unknown)", w1): 1.0, ("units", "(unknown)", w1 + 1): 0.0, ("units", "(unknown)", w3): 0.0,
        ("revenue", "(unknown)", w1): 10.0, ("revenue", "(unknown)", w1 + 1): 0.0, ("revenue", "(unknown)", w3): 0.0,
    }


def test_rows_after_the_as_of_date_never_enter_the_history(spark):
    orders, items, products = orders_frames(spark)
    as_of = date(2024, 1, 21)
    base = sorted(demand_history(demand_lines(orders, items, products, as_of), WEEK, ["units"], as_of).collect())
    later = orders.unionByName(spark.createDataFrame(
        [("o9", datetime(2024, 1, 22, 1), "web", "s1", "completed", 1.0)], orders.schema))
    items9 = items.unionByName(spark.createDataFrame([("o9", 1, "p1", 50, 1.0, 0.0)], items.schema))
    assert sorted(demand_history(demand_lines(later, items9, products, as_of), WEEK, ["units"], as_of).collect()) == base


@pytest.mark.parametrize("adi,cv2,want", [
    (1.0, 0.1, "smooth"), (1.31, 0.48, "smooth"), (1.0, 0.49, "erratic"), (1.32, 0.1, "intermittent"),
    (3.0, 2.0, "lumpy"), (None, None, None)])
def test_pattern_boundaries(spark, adi, cv2, want):
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(adi, cv2)], "adi double, cv2 double")
    assert df.select(pattern(F.col("adi"), F.col("cv2"))).first()[0] == want


def test_profile_by_hand(spark):
    rows = []
    # smooth: demand every week, sizes 4 and 6 -> ADI 1, CV² = var_pop/mean² = 1/25
    rows += [("units", "smooth", i, 4.0 if i % 2 else 6.0) for i in range(40)]
    # intermittent: demand in 10 of 40 weeks, always 5 -> ADI 4, CV² 0
    rows += [("units", "inter", i, 5.0 if i % 4 == 0 else 0.0) for i in range(40)]
    # a negative week (returns only) counts as no demand: 20 of 40 demand weeks -> ADI 2
    rows += [("units", "returns", i, -3.0 if i % 2 else 2.0) for i in range(40)]
    rows += [("units", "short", i, 1.0) for i in range(30, 40)]            # 10 periods: fallback
    rows += [("units", "dormant", i, 1.0 if i < 5 else 0.0) for i in range(40)]
    rows += [("units", "empty", i, 0.0) for i in range(38, 40)]
    rows += [("units", "one", 39, 2.0)]
    history = spark.createDataFrame([(m, s, None, d, y) for m, s, d, y in rows],
                                    "measure string, series_id string, parent string, ds int, y double")
    got = {r.series_id: r for r in profile(history, last_ds=39, span=13, season=12, min_train=8,
                                           dormant_periods=26).collect()}
    assert (got["smooth"].adi, got["smooth"].cv2, got["smooth"].pattern) == (1.0, pytest.approx(1 / 25), "smooth")
    assert (got["inter"].adi, got["inter"].cv2, got["inter"].pattern, got["inter"].family) == (
        4.0, 0.0, "intermittent", "intermittent")
    assert got["returns"].adi == 2.0 and got["returns"].min_y == -3.0
    assert got["smooth"].status == "backtest" and got["smooth"].seasonal   # 27 periods before the cutoff >= 12 + 2
    assert got["short"].status == "fallback" and "10 periods of history" in got["short"].reason
    assert got["dormant"].status == "skipped" and got["dormant"].reason.startswith("dormant")
    assert (got["empty"].status, got["empty"].reason) == ("skipped", "no demand in the history")
    assert (got["one"].status, got["one"].reason) == ("skipped", "fewer than 2 periods of history")
