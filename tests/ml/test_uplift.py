"""Uplift learners on hand-built rows: which contacts train, neutral features, the split, and a
planted heterogeneous effect that both learners find."""
from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from pyspark.sql import functions as F

from memberlake.ml import uplift
from memberlake.ml.uplift_metrics import qini_coefficient
from memberlake.settings import UpliftSettings

OUTCOMES = "campaign_id string, person_id string, is_control boolean, contacted_at timestamp, converted int, visited int"


def test_training_rows_keep_campaigns_with_both_arms(spark):
    rows = [("A", "P1", False, datetime(2024, 3, 2, 10), 1, 0), ("A", "P2", True, datetime(2024, 3, 1, 9), 0, 1),
            ("B", "P3", False, datetime(2024, 4, 1), 1, 1)]                 # B has no control group
    got = uplift.training_rows(spark.createDataFrame(rows, OUTCOMES), "converted", []).collect()
    assert sorted((r.campaign_id, r.person_id, r.feature_date, r.w, r.y) for r in got) == [
        ("A", "P1", date(2024, 2, 29), 1, 1), ("A", "P2", date(2024, 2, 29), 0, 0)]   # the day before the first send
    visited = uplift.training_rows(spark.createDataFrame(rows, OUTCOMES), "visited", ["A"]).collect()
    assert sorted((r.person_id, r.y) for r in visited) == [("P1", 0), ("P2", 1)]


def test_contacts_without_history_get_neutral_features(spark):
    rows = spark.createDataFrame([("P1", date(2024, 1, 1), 1, 0), ("P2", date(2024, 1, 1), 0, 1)],
                                 "person_id string, feature_date date, w int, y int")
    feats = spark.createDataFrame([("P1", date(2024, 1, 1), 12.0, 3.0)],
                                  "person_id string, as_of_date date, recency_days double, orders double")
    got = {r.person_id: r for r in uplift.with_features(rows, feats, ["recency_days", "orders"], 365).collect()}
    assert (got["P1"].recency_days, got["P1"].orders, got["P1"].has_history) == (12.0, 3.0, 1.0)
    assert (got["P2"].recency_days, got["P2"].orders, got["P2"].has_history) == (365.0, 0.0, 0.0)


def test_split_is_deterministic_and_disjoint(spark):
    rows = spark.range(5000).select(F.lit("A").alias("campaign_id"), F.col("id").cast("string").alias("person_id"))
    cfg = UpliftSettings(test_fraction=0.3, validation_fraction=0.25)
    parts = uplift.split(rows, cfg)
    ids = {k: {r.person_id for r in v.collect()} for k, v in parts.items()}
    assert sum(map(len, ids.values())) == 5000 and not (ids["test"] & ids["train"]) and not (ids["validation"] & ids["train"])
    assert abs(len(ids["test"]) / 5000 - 0.3) < 0.03 and abs(len(ids["validation"]) / 5000 - 0.175) < 0.03
    assert {r.person_id for r in uplift.split(rows, cfg)["test"].collect()} == ids["test"]


def _planted(spark, n: int, seed: int):
    """y responds to treatment only where x > 0.5 (uplift 0.4 there, 0 elsewhere)."""
    r = np.random.default_rng(seed)
    x, noise, w = r.random(n), r.random(n), r.integers(0, 2, n)
    y = (r.random(n) < 0.1 + 0.4 * w * (x > 0.5)).astype(int)
    rows = [(f"P{i}", float(a), float(b), int(c), int(d)) for i, (a, b, c, d) in enumerate(zip(x, noise, w, y, strict=True))]
    return spark.createDataFrame(rows, "person_id string, x double, noise double, w int, y int")


@pytest.mark.parametrize("learner,kind", [("t_learner", "logistic_regression"), ("class_transformation", "logistic_regression"),
                                          pytest.param("t_learner", "gbt", marks=pytest.mark.extended)])
def test_both_learners_find_the_planted_effect(spark, learner, kind):
    train, test = _planted(spark, 4000, 1), _planted(spark, 2000, 2)
    params = {"regParam": 0.0} if kind == "logistic_regression" else {"maxIter": 10, "maxDepth": 2}
    model = uplift.fit(learner, kind, params, train, ["x", "noise"], seed=7)
    scored = uplift.score(model, test).cache()
    means = {r.hi: r.u for r in scored.groupBy((F.col("x") > 0.5).alias("hi")).agg(F.avg("uplift").alias("u")).collect()}
    assert means[True] - means[False] > 0.15, means
    assert qini_coefficient(scored, "uplift") > 0.2
    ranked = uplift.population_deciles(scored.select("person_id", "x", "uplift"))
    top = ranked.where("decile = 1").agg(F.avg("x")).first()[0]
    bottom = ranked.where("decile = 10").agg(F.avg("x")).first()[0]
    assert top > 0.5 > bottom
    assert ranked.groupBy("decile").count().count() == 10
