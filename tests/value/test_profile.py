"""Member profile features, lifecycle from the person's own rhythm, config tags and coverage."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from memberlake.settings import ValueSettings
from memberlake.value.profile import age_band, lifecycle, profiles, tag_coverage, top_values, with_tags

AS_OF = date(2024, 6, 30)
CFG = ValueSettings(new_days=90, default_gap_days=90, active_factor=1.5, at_risk_factor=3.0, churn_days=365)


@pytest.mark.parametrize("recency, tenure, gap, stage", [
    (10, 60, None, "new"),          # first purchase 60 days ago
    (40, 400, 30.0, "active"),      # 40 <= 1.5 x 30
    (46, 400, 30.0, "at_risk"),     # 45 < 46 <= 90
    (91, 400, 30.0, "lapsed"),      # beyond 3 x 30, not yet a year
    (200, 400, None, "at_risk"),    # one order: default gap 90 -> at risk up to 270
    (366, 800, 30.0, "churned"),
])
def test_lifecycle_uses_own_rhythm(spark, recency, tenure, gap, stage):
    df = spark.createDataFrame([(recency, tenure, gap)], "recency_days int, tenure_days int, mean_interpurchase_days double")
    assert df.select(lifecycle(CFG).alias("s")).first().s == stage


def test_age_bands(spark):
    df = spark.createDataFrame([(date(2010, 1, 1),), (date(1990, 7, 1),), (date(1990, 6, 30),), (date(1950, 1, 1),), (None,)],
                               "birth_date date")
    got = [r.b for r in df.select(age_band(F.col("birth_date"), AS_OF, [18, 25, 35, 45, 55, 65]).alias("b")).collect()]
    # 14, 34 (birthday on Jul 1: not yet 34 -> 33), 34, 74, unknown
    assert got == ["<18", "25-34", "25-34", "65+", None]


def test_top_values_ties_go_to_the_most_recent(spark):
    df = spark.createDataFrame([
        ("P1", datetime(2024, 1, 1), "books", 10.0), ("P1", datetime(2024, 5, 1), "toys", 10.0),
        ("P1", datetime(2024, 2, 1), "food", 30.0), ("P1", datetime(2024, 3, 1), "garden", 1.0),
    ], "person_id string, order_ts timestamp, category string, gross double")
    got = top_values(df, "person_id", "category", "gross", 3, "top").first().top
    assert got == ["food", "toys", "books"]


def test_profile_tags_and_coverage(spark):
    rfm = spark.createDataFrame([
        ("P1", 5, 3, 100.0, 400, 20.0, 5), ("P2", 200, 1, 10.0, 200, None, 1),
    ], "person_id string, recency_days int, frequency int, monetary double, tenure_days int, "
       "mean_interpurchase_days double, m_score int")
    purch = spark.createDataFrame([
        ("P1", datetime(2024, 6, 25, 10), "app"), ("P1", datetime(2024, 6, 1, 10), "app"),
        ("P1", datetime(2024, 5, 1, 18), "store"), ("P2", datetime(2023, 12, 13, 9), "online"),
    ], "person_id string, order_ts timestamp, channel string")
    lines = spark.createDataFrame([
        ("P1", datetime(2024, 6, 25, 10), "toys", "Acme", 80.0, 20.0), ("P1", datetime(2024, 6, 1, 10), "books", "Zeta", 20.0, 0.0),
        ("P2", datetime(2023, 12, 13, 9), "food", "Acme", 10.0, 0.0),
    ], "person_id string, order_ts timestamp, category string, brand string, gross double, discount double")
    person = spark.createDataFrame([("P1", date(1990, 1, 1), "female", "CA", "US", True)],
                                   "person_id string, birth_date date, gender string, state string, country string, marketing_opt_in boolean")
    tags = {"vip": "value_tier = 'platinum' AND lifecycle_stage IN ('active', 'new')",
            "bargain_hunter": "discounted_spend_share >= 0.5", "app_first": "preferred_channel = 'app'",
            "contactable": "marketing_opt_in"}
    out = with_tags(profiles(rfm, purch, lines, person, AS_OF, CFG), tags)
    got = {r.person_id: r for r in out.collect()}
    p1, p2 = got["P1"], got["P2"]
    assert (p1.value_tier, p1.lifecycle_stage, p1.preferred_channel, p1.preferred_hour) == ("platinum", "active", "app", 10)
    assert p1.discounted_spend_share == pytest.approx(0.8)     # 80 of 100 gross spent on discounted lines
    assert p1.preferred_categories == ["toys", "books"] and p1.age_band == "25-34" and p1.region == "CA"
    assert sorted(p1.tags) == ["app_first", "bargain_hunter", "contactable", "vip"]
    assert p2.value_tier == "bronze" and p2.tags == [] and p2.gender is None   # no golden record: no demographics
    coverage = {r.tag: (r.persons, r.share) for r in tag_coverage(out, tags, AS_OF).collect()}
    assert coverage == {"vip": (1, 0.5), "bargain_hunter": (1, 0.5), "app_first": (1, 0.5), "contactable": (1, 0.5)}


def test_engagement_from_sessions(spark):
    from memberlake.value.profile import with_engagement

    sessions = spark.createDataFrame([
        ("P1", datetime(2024, 6, 29, 10), True), ("P1", datetime(2024, 6, 1, 10), False),
        ("P1", datetime(2024, 1, 1, 10), True),        # older than 90 days: counts only for "last session"
        ("P1", datetime(2024, 7, 2, 10), True),        # after the as-of date: ignored
        ("P2", datetime(2023, 12, 1, 10), False),
    ], "person_id string, session_start timestamp, engaged boolean")
    profile = spark.createDataFrame([("P1",), ("P2",), ("P3",)], "person_id string")
    got = {r.person_id: (r.sessions_90d, r.engaged_session_share, r.days_since_last_session)
           for r in with_engagement(profile, sessions, AS_OF).collect()}
    assert got == {"P1": (2, 0.5, 1), "P2": (0, None, 212), "P3": (0, None, None)}
