"""Point-in-time features and churn labels on hand-built timelines."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from memberlake.ml.features import as_of_frame, churn_labels, feature_names, features, split_dates
from memberlake.settings import ModelSettings

AS_OF = date(2024, 6, 30)
CFG = ModelSettings(active_days=365, trend_days=30, trend_base_days=90, engagement_days=90,
                    sentiment_trend_days=100, channels=["online", "store"])

PURCHASE_SCHEMA = ("order_id string, person_id string, order_ts timestamp, order_date date, channel string, "
                   "net double, gross double, discount double")


def _purchase(order_id, person, day: date, channel="online", net=100.0, gross=100.0, discount=0.0):
    return (order_id, person, datetime(day.year, day.month, day.day, 12), day, channel, net, gross, discount)


# Person A: orders 2024-01-01, 2024-03-01 (60 days later), 2024-06-20 (111 days later).
A_ORDERS = [
    _purchase("a1", "A", date(2024, 1, 1), "store", net=50.0, gross=60.0, discount=10.0),
    _purchase("a2", "A", date(2024, 3, 1), "online", net=100.0, gross=100.0),
    _purchase("a3", "A", date(2024, 6, 20), "online", net=150.0, gross=200.0, discount=50.0),
]
# Person B: one order more than a year before the as-of date -> outside the population.
B_ORDERS = [_purchase("b1", "B", date(2023, 6, 1))]


def _frames(spark, extra_orders=(), extra_lines=(), extra_sessions=(), registered=datetime(2023, 12, 1)):
    purch = spark.createDataFrame(A_ORDERS + B_ORDERS + list(extra_orders), PURCHASE_SCHEMA)
    lines = spark.createDataFrame([
        ("A", datetime(2024, 1, 1, 12), "shoes"), ("A", datetime(2024, 3, 1, 12), "shoes"),
        ("A", datetime(2024, 6, 20, 12), "bags"), *extra_lines], "person_id string, order_ts timestamp, category string")
    sessions = spark.createDataFrame([
        ("A", datetime(2024, 6, 25, 9), True), ("A", datetime(2024, 5, 1, 9), False),
        ("A", datetime(2024, 1, 1, 9), True), *extra_sessions],
        "person_id string, session_start timestamp, engaged boolean")
    person = spark.createDataFrame([("A", True, registered)],
                                   "person_id string, marketing_opt_in boolean, first_registered_at timestamp")
    return purch, lines, sessions, person


def _row(spark, frames, as_of=AS_OF) -> dict:
    purch, lines, sessions, person = frames
    out = features(purch, lines, sessions, person, as_of_frame(spark, [as_of]), CFG)
    rows = {r["person_id"]: r.asDict() for r in out.collect()}
    assert set(rows) == {"A"}          # B bought more than active_days ago
    return rows["A"]


def test_features_by_hand(spark):
    a = _row(spark, _frames(spark))
    assert a["recency_days"] == 10                      # 06-20 -> 06-30
    assert a["tenure_days"] == 212                      # registered 2023-12-01 (before the first order)
    assert a["orders"] == 3 and a["orders_365d"] == 3
    assert a["order_rate"] == pytest.approx(3 * 30 / 212)
    assert a["spend_365d"] == 300.0 and a["avg_order_value"] == 100.0
    # last 30 days (06-01..06-30): a3; the 90 before (03-03..05-31): none -> 1 - 0 per 30 days
    assert a["orders_30d"] == 1 and a["order_trend"] == 1.0 and a["spend_trend"] == 150.0
    assert a["mean_gap_days"] == pytest.approx((60 + 111) / 2)
    assert a["std_gap_days"] == pytest.approx(25.5)      # population std of 60 and 111
    assert a["overdue_ratio"] == pytest.approx(10 / 85.5)
    assert a["discount_share"] == pytest.approx(60 / 360)
    assert a["share_online"] == pytest.approx(2 / 3) and a["share_store"] == pytest.approx(1 / 3)
    assert a["category_breadth"] == 2
    assert a["sessions_90d"] == 2 and a["engaged_sessions_90d"] == 1 and a["days_since_last_session"] == 5
    assert a["marketing_opt_in"] == 1.0
    assert list(a) == ["person_id", "as_of_date", *feature_names(CFG)]
    assert all(a[c] is not None for c in feature_names(CFG))


def test_nothing_after_the_as_of_date_leaks_in(spark):
    before = _row(spark, _frames(spark))
    future = _frames(
        spark,
        extra_orders=[_purchase("a4", "A", date(2024, 7, 1), "store", net=999.0, gross=999.0),
                      _purchase("b2", "B", date(2024, 8, 1))],
        extra_lines=[("A", datetime(2024, 7, 1, 12), "watches")],
        extra_sessions=[("A", datetime(2024, 7, 1, 0), True), ("A", datetime(2024, 12, 1), True)],
    )
    assert _row(spark, future) == before


def test_registration_after_the_as_of_date_is_not_used(spark):
    a = _row(spark, _frames(spark, registered=datetime(2024, 7, 15)))
    assert a["tenure_days"] == 181                      # from the first order 2024-01-01


def test_missing_inputs_give_neutral_values(spark):
    purch, *_ = _frames(spark)
    out = features(purch, None, None, None, as_of_frame(spark, [AS_OF]), CFG).collect()
    a = out[0].asDict()
    assert a["category_breadth"] == 0 and a["sessions_90d"] == 0 and a["marketing_opt_in"] == 0
    assert a["days_since_last_session"] == 365 and a["tenure_days"] == 181


def test_several_as_of_dates_in_one_pass(spark):
    purch, lines, sessions, person = _frames(spark)
    out = features(purch, lines, sessions, person, as_of_frame(spark, [AS_OF, date(2024, 2, 1)]), CFG)
    rows = {(r["person_id"], r["as_of_date"]): r for r in out.collect()}
    assert set(rows) == {("A", AS_OF), ("A", date(2024, 2, 1)), ("B", date(2024, 2, 1))}
    early = rows[("A", date(2024, 2, 1))]
    assert early["orders"] == 1 and early["recency_days"] == 31 and early["category_breadth"] == 1


def test_churn_label_boundaries(spark):
    # as-of 06-30, horizon 90 days: 06-30 itself does not count, 09-28 (day 90) does, 09-29 does not.
    rows = [_purchase("x0", "X", AS_OF), _purchase("y0", "Y", date(2024, 6, 1)), _purchase("y1", "Y", date(2024, 9, 28)),
            _purchase("z0", "Z", date(2024, 6, 1)), _purchase("z1", "Z", date(2024, 9, 29))]
    purch = spark.createDataFrame(rows, PURCHASE_SCHEMA)
    population = spark.createDataFrame([(p, AS_OF) for p in "XYZ"], "person_id string, as_of_date date")
    labels = {r["person_id"]: r["churned"] for r in churn_labels(purch, population, 90).collect()}
    assert labels == {"X": 1.0, "Y": 0.0, "Z": 1.0}


def test_split_dates_are_ordered_by_time_and_label_windows_do_not_overlap():
    splits = split_dates(date(2024, 12, 31), horizon_days=90, train_dates=3, step_days=30)
    assert splits["test"] == [date(2024, 10, 2)]
    assert splits["validation"] == [date(2024, 7, 4)]
    assert splits["train"] == [date(2024, 2, 5), date(2024, 3, 6), date(2024, 4, 5)]
    # a training label window (as-of, as-of + 90] ends on or before the validation date, etc.
    from datetime import timedelta
    assert max(splits["train"]) + timedelta(days=90) <= splits["validation"][0]
    assert splits["validation"][0] + timedelta(days=90) <= splits["test"][0]


def test_review_features_by_hand_and_point_in_time(spark):
    purch, lines, sessions, person = _frames(spark)
    reviews = spark.createDataFrame([
        ("A", datetime(2024, 6, 1, 10), 0.5),       # recent window (last 100 days: 03-23 .. 06-30)
        ("A", datetime(2024, 2, 1, 10), -0.5),      # the 100 days before (12-14 .. 03-22)
        ("A", datetime(2024, 7, 5, 10), 1.0),       # after the as-of date: not seen
        ("A", datetime(2024, 6, 2, 10), None),      # unsupported language: no score
        (None, datetime(2024, 6, 2, 10), -1.0)],    # anonymous
        "person_id string, created_at timestamp, score double")
    out = features(purch, lines, sessions, person, as_of_frame(spark, [AS_OF]), CFG, reviews)
    a = {r["person_id"]: r.asDict() for r in out.collect()}["A"]
    assert (a["reviews_365d"], a["sentiment_mean"], a["sentiment_trend"]) == (2.0, 0.0, 1.0)
    without = _row(spark, (purch, lines, sessions, person))
    assert (without["reviews_365d"], without["sentiment_mean"], without["sentiment_trend"]) == (0.0, 0.0, 0.0)
