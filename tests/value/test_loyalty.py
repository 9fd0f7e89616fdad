"""The loyalty index by hand on three persons (docs/value.md, "Loyalty")."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from memberlake.settings import LoyaltySettings
from memberlake.value.loyalty import loyalty

AS_OF = date(2024, 12, 31)
D0 = date(2024, 1, 1)


def test_loyalty_index_components_and_tiers_by_hand(spark):
    rfm = spark.createDataFrame([("A", 5, 5, 5, 300), ("B", 1, 1, 1, 100), ("C", 3, 3, 3, 200)],
                                "person_id string, r_score int, f_score int, m_score int, tenure_days int")
    days = {"A": [0, 10, 20, 30], "B": [0], "C": [0, 10, 30]}
    purchases = spark.createDataFrame([(p, D0 + timedelta(days=d)) for p, ds in days.items() for d in ds],
                                      "person_id string, order_date date")
    categories = spark.createDataFrame([("A", 4.0), ("B", 1.0)], "person_id string, categories double")
    engagement = spark.createDataFrame([("A", 10, 0.8), ("B", 0, None), ("C", 5, 0.4)],
                                       "person_id string, sessions_90d bigint, engaged_session_share double")
    sentiment = spark.createDataFrame([("A", 0.6, 0.2), ("B", -0.8, None)], "person_id string, mean_score double, trend double")
    got = {r.person_id: r for r in loyalty(rfm, purchases, categories, engagement, None, sentiment, AS_OF,
                                           LoyaltySettings()).collect()}
    # medians: tenure 200, sessions 5, categories 1 (the lower of two)
    # A: repeat mean(1, 300/500, regularity 1/(1+0)) ; value mean(1, 1) ; engagement mean(10/15, 0.8)
    #    breadth 4/5 ; sentiment 0.7 x (0.6+1)/2 + 0.3 x (0.2+1)/2
    a = got["A"]
    assert a.repeat_component == pytest.approx(2.6 / 3) and a.value_component == pytest.approx(1.0)
    assert a.engagement_component == pytest.approx((2 / 3 + 0.8) / 2) and a.breadth_component == pytest.approx(0.8)
    assert a.sentiment_component == pytest.approx(0.74)
    assert a.loyalty_index == pytest.approx(84.8) and a.loyalty_tier == "devoted"
    # B: one purchase (no regularity), lowest scores, no sessions: repeat mean(0, 100/300); sentiment level only
    b = got["B"]
    assert b.repeat_component == pytest.approx(1 / 6) and b.engagement_component == 0.0
    assert b.breadth_component == pytest.approx(0.5) and b.sentiment_component == pytest.approx(0.1)
    assert b.loyalty_index == pytest.approx(12.0) and b.loyalty_tier == "detached"
    # C: gaps 10 and 20 (CV 1/3 -> regularity 0.75); no categories, no reviews: those weights left out
    c = got["C"]
    assert c.repeat_component == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert c.breadth_component is None and c.sentiment_component is None
    assert c.loyalty_index == pytest.approx(100 * (0.3 * 1.75 / 3 + 0.25 * 0.5 + 0.15 * 0.45) / 0.7, abs=0.01)
    assert c.loyalty_tier == "loyal" and {r.as_of_date for r in got.values()} == {AS_OF}


def test_loyalty_settings_reject_incomplete_weights_and_tiers():
    with pytest.raises(ValueError, match="weights"):
        LoyaltySettings(weights={"repeat": 1.0})
    with pytest.raises(ValueError, match="starting at 0"):
        LoyaltySettings(tiers={"a": 50.0, "b": 10.0})
