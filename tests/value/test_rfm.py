"""RFM figures, scores, segments and migration, worked out by hand.

As of 2024-06-30, window 365 days (from 2023-07-02):
P1 (M1): O1 2024-01-01 2x10 - 2 discount = 18; O2 2024-03-01 50; O3 cancelled; O4 returned
    recency 121, frequency 2, monetary 68, tenure 181, AOV 34, inter-purchase 60
P2 (M2): O6 2024-06-01 no lines, total 40; O5 2024-06-29 20
    recency 1, frequency 2, monetary 60, tenure 29, AOV 30, inter-purchase 28
P3 (M3): O7 2023-01-10 5 (outside the window); O8 2024-07-01 is after the as-of date
    recency 537, frequency 1 (window 0), monetary 5, tenure 537, inter-purchase null
Scores, 1 + floor(5 x persons strictly worse / 3):
    r: P3 1, P1 2, P2 4;  f: P3 1, P1 = P2 = 2 (tie);  m: P3 1, P2 2, P1 4
"""
from __future__ import annotations

from datetime import date, datetime

import pytest

from memberlake.inputs import purchases
from memberlake.settings import ValueSettings
from memberlake.value.rfm import migration, rfm_figures, rfm_scores, segment

AS_OF = date(2024, 6, 30)
ORDERS = "order_id string, member_id string, email string, phone string, order_ts timestamp, status string, channel string, total_amount double"
ITEMS = "order_id string, product_id string, quantity int, unit_price double, discount_amount double"


def _purchases(spark):
    orders = spark.createDataFrame([
        ("O1", "M1", None, None, datetime(2024, 1, 1, 10), "completed", "online", None),
        ("O2", "M1", None, None, datetime(2024, 3, 1, 9), "completed", "store", None),
        ("O3", "M1", None, None, datetime(2024, 3, 5), "cancelled", "online", None),
        ("O4", "M1", None, None, datetime(2024, 3, 6), "returned", "online", None),
        ("O5", "M2", None, None, datetime(2024, 6, 29, 23), "completed", "app", None),
        ("O6", "M2", None, None, datetime(2024, 6, 1), "completed", "app", 40.0),
        ("O7", "M3", None, None, datetime(2023, 1, 10), "completed", "store", None),
        ("O8", "M3", None, None, datetime(2024, 7, 1), "completed", "store", None),
        ("O9", "M3", None, None, datetime(2024, 2, 1), "completed", "store", None),   # no line, no total
    ], ORDERS)
    items = spark.createDataFrame([
        ("O1", "A", 2, 10.0, 2.0), ("O2", "B", 1, 50.0, 0.0), ("O3", "C", 1, 100.0, 0.0), ("O4", "D", 1, 30.0, 0.0),
        ("O5", "A", 1, 20.0, None), ("O7", "B", 1, 5.0, 0.0), ("O8", "B", 1, 500.0, 0.0),
    ], ITEMS)
    graph = spark.createDataFrame([("member_id", f"M{i}", f"P{i}") for i in (1, 2, 3)],
                                  "id_type string, value string, person_id string")
    return purchases(orders, items, graph, AS_OF)


def test_purchases_exclude_cancelled_returned_future_and_valueless_and_use_net_value(spark):
    got = {r.order_id: (r.person_id, float(r.net)) for r in _purchases(spark).collect()}
    assert got == {"O1": ("P1", 18.0), "O2": ("P1", 50.0), "O5": ("P2", 20.0), "O6": ("P2", 40.0), "O7": ("P3", 5.0)}


def test_rfm_figures_by_hand(spark):
    rows = {r.person_id: r for r in rfm_figures(_purchases(spark), AS_OF, 365).collect()}
    p1, p2, p3 = rows["P1"], rows["P2"], rows["P3"]
    assert (p1.recency_days, p1.frequency, p1.frequency_window, p1.monetary, p1.tenure_days) == (121, 2, 2, 68.0, 181)
    assert (p1.avg_order_value, p1.mean_interpurchase_days) == (34.0, 60.0)
    assert (p2.recency_days, p2.frequency, p2.monetary, p2.tenure_days, p2.avg_order_value) == (1, 2, 60.0, 29, 30.0)
    assert p2.mean_interpurchase_days == 28.0
    assert (p3.recency_days, p3.frequency, p3.frequency_window, p3.monetary, p3.monetary_window) == (537, 1, 0, 5.0, 0.0)
    assert p3.mean_interpurchase_days is None
    assert (p3.first_order_date, p3.last_order_date) == (date(2023, 1, 10), date(2023, 1, 10))


def test_scores_cells_and_segments_by_hand(spark):
    rules = ValueSettings.model_validate({"segments": _default_segments()}).segment_rules()
    scored = rfm_scores(rfm_figures(_purchases(spark), AS_OF, 365)).withColumn("segment", segment(rules))
    got = {r.person_id: (r.r_score, r.f_score, r.m_score, r.rfm_cell, r.segment) for r in scored.collect()}
    assert got == {"P1": (2, 2, 4, "224", "About to Sleep"), "P2": (4, 2, 2, "422", "Potential Loyalist"),
                   "P3": (1, 1, 1, "111", "Lost")}


def _default_segments():
    from memberlake.settings import load_settings

    return load_settings("local").value.segments


@pytest.mark.parametrize("cell, expected", [
    ((5, 5, 5), "Champions"), ((4, 4, 3), "Loyal"), ((3, 5, 1), "Loyal"), ((5, 3, 1), "Potential Loyalist"),
    ((4, 1, 5), "New"), ((3, 1, 2), "Promising"), ((3, 2, 2), "Need Attention"), ((1, 5, 5), "Can't Lose Them"),
    ((2, 3, 1), "At Risk"), ((2, 2, 5), "About to Sleep"), ((1, 2, 1), "Hibernating"), ((1, 1, 5), "Lost"),
])
def test_standard_segment_mapping(spark, cell, expected):
    rules = ValueSettings.model_validate({"segments": _default_segments()}).segment_rules()
    df = spark.createDataFrame([cell], "r_score int, f_score int, m_score int")
    assert df.select(segment(rules).alias("s")).first().s == expected


def test_every_cell_maps_to_a_named_segment(spark):
    rules = ValueSettings.model_validate({"segments": _default_segments()}).segment_rules()
    cells = spark.createDataFrame([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)],
                                  "r_score int, f_score int, m_score int")
    assert cells.select(segment(rules).alias("s")).where("s = 'Other'").count() == 0


def test_migration_counts_moves_new_and_gone(spark):
    prev = spark.createDataFrame([("P1", "Champions"), ("P2", "Loyal"), ("P4", "Lost")], "person_id string, segment string")
    cur = spark.createDataFrame([("P1", "At Risk"), ("P2", "Loyal"), ("P3", "New")], "person_id string, segment string")
    got = {(r.from_segment, r.to_segment): r.persons for r in migration(prev, cur, date(2024, 1, 1), AS_OF).collect()}
    assert got == {("Champions", "At Risk"): 1, ("Loyal", "Loyal"): 1, ("(new)", "New"): 1, ("Lost", "(gone)"): 1}
