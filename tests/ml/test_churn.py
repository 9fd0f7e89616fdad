"""Churn training pieces: grids, curves and metrics by hand, reproducible tuning, the champion rule."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from memberlake.ml import churn
from memberlake.ml.training import split_sizes
from memberlake.ops import registry
from memberlake.settings import ChurnSettings


def test_split_sizes_count_dates_older_than_the_history_as_empty():
    """A year of purchases with the default stacked training dates: the oldest dates precede the
    first purchase, hold no labelled person and must count as empty, not fail the job."""
    splits = {"train": [date(2010, 10, 14), date(2010, 11, 13), date(2010, 12, 13)],
              "validation": [date(2011, 6, 11)], "test": [date(2011, 9, 9)]}
    per_date = {date(2010, 12, 13): (48, 10), date(2011, 6, 11): (272, 78), date(2011, 9, 9): (293, 93)}
    assert split_sizes(splits, per_date) == {"train": (48, 10), "validation": (272, 78), "test": (293, 93)}
    assert split_sizes(splits, {})["test"] == (0, 0)


def test_grid_expands_every_combination_in_configured_order():
    points = churn.grid({"logistic_regression": {"regParam": [0.0, 0.1]}, "gbt": {"maxDepth": [3, 5], "maxIter": [10]}})
    assert points == [("logistic_regression", {"regParam": 0.0}), ("logistic_regression", {"regParam": 0.1}),
                      ("gbt", {"maxDepth": 3, "maxIter": 10}), ("gbt", {"maxDepth": 5, "maxIter": 10})]


def test_unknown_parameter_fails_with_the_key(spark):
    with pytest.raises(ValueError, match=r"models.churn.candidates.gbt: 'numTrees' is not a parameter"):
        churn.pipeline("gbt", ["x"], {"numTrees": 10}, 1, False)


@pytest.mark.parametrize("champion, candidate, margin, expected", [
    (None, 0.60, 0.0, True),        # no champion yet: the first model wins
    (0.80, 0.81, 0.0, True),
    (0.80, 0.80, 0.0, False),       # a tie keeps the champion
    (0.80, 0.79, 0.0, False),
    (0.80, 0.805, 0.01, False),     # must beat it by more than the margin
    (0.80, 0.811, 0.01, True),
])
def test_champion_rule(champion, candidate, margin, expected):
    assert registry.promote(candidate, champion, margin) is expected


def _scored(spark, rows):
    return spark.createDataFrame(rows, "p double, churned double")


def test_metrics_at_threshold_and_top_decile_lift_by_hand(spark):
    # 10 persons, 4 churned. Threshold 0.5 flags p in {0.9, 0.8, 0.7, 0.6}: 3 of them churned.
    rows = [(0.9, 1.0), (0.8, 1.0), (0.7, 0.0), (0.6, 1.0), (0.4, 0.0), (0.3, 1.0), (0.2, 0.0), (0.15, 0.0),
            (0.1, 0.0), (0.05, 0.0)]
    report = churn.test_report(_scored(spark, rows), churn.Threshold(probability=0.5))
    assert report["precision"] == pytest.approx(3 / 4)
    assert report["recall"] == pytest.approx(3 / 4)
    assert report["f1"] == pytest.approx(0.75)
    assert report["churn_rate"] == pytest.approx(0.4)
    # top decile = the single highest score (churned): rate 1.0 / 0.4
    assert report["top_decile_lift"] == pytest.approx(2.5)
    # ROC AUC by hand: of the 4 x 6 (churned, stayed) pairs, the churned one scores higher in 21
    assert report["roc_auc"] == pytest.approx(21 / 24)


def test_curves_and_calibration_from_bucket_counts(spark):
    rows = [(0.95, 1.0), (0.95, 1.0), (0.55, 0.0), (0.55, 1.0), (0.05, 0.0), (0.05, 0.0)]
    counts = churn.bucket_counts(_scored(spark, rows))
    assert counts[950].tolist() == pytest.approx([1.9, 2, 0])
    assert counts[550].tolist() == pytest.approx([1.1, 1, 1])
    c = churn.curves(counts)
    at = {round(t, 3): i for i, t in enumerate(c["threshold"])}
    i = at[0.55]                                        # flag p >= 0.55: 3 of 3 churned, 1 of 3 stayed
    assert c["tpr"][i] == 1.0 and c["fpr"][i] == pytest.approx(1 / 3) and c["precision"][i] == pytest.approx(0.75)
    assert c["tpr"][-1] == 1.0 and c["fpr"][-1] == 1.0
    bins = churn.calibration(counts)
    assert [b["persons"] for b in bins] == [2, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert bins[5]["mean_predicted"] == pytest.approx(0.55) and bins[5]["observed_rate"] == 0.5
    assert bins[9]["observed_rate"] == 1.0 and np.isnan(bins[1]["observed_rate"])


def test_threshold_rules(spark):
    rows = [(i / 100, 1.0 if i >= 60 else 0.0) for i in range(100)]
    scored = _scored(spark, rows)
    assert churn.choose_threshold(scored, "top_decile") == churn.Threshold(share=0.1)
    assert churn.choose_threshold(scored, "top_decile").cut(scored) == pytest.approx(0.89, abs=0.011)
    max_f1 = churn.choose_threshold(scored, "max_f1")      # best F1 flags p >= 0.60: 40 of 100
    assert max_f1.share == pytest.approx(0.40) and max_f1.cut(scored) == pytest.approx(0.60, abs=0.011)
    assert churn.choose_threshold(scored, "0.25") == churn.Threshold(probability=0.25)


def test_rank_rules_follow_the_scored_population_when_scores_shift(spark):
    """Validation scores sit around 0.8, test scores around 0.2 (another date): the top decile of
    the test population is still flagged. A probability carried over flagged nobody (issue 25)."""
    validation = _scored(spark, [(0.7 + i / 500, 1.0 if i >= 40 else 0.0) for i in range(100)])
    test = _scored(spark, [(0.1 + i / 500, 1.0 if i >= 50 else 0.0) for i in range(100)])
    rule = churn.choose_threshold(validation, "top_decile")
    report = churn.test_report(test, rule)
    assert report["flagged_share"] == pytest.approx(0.10, abs=0.011)
    assert report["precision"] == 1.0 and report["recall"] == pytest.approx(0.2, abs=0.03)
    fixed = churn.test_report(test, churn.Threshold(probability=0.5))   # a probability means what it says
    assert fixed["flagged_share"] == 0.0 and fixed["precision"] == 0.0


def _timeline(spark, n, seed):
    """Churn depends on recency (and noise): a learnable, reproducible toy problem."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 200, n)
    freq = rng.poisson(3, n).astype(float)
    churned = (recency / 200 + rng.normal(0, 0.25, n) > 0.5).astype(float)
    rows = [(f"p{i}", float(r), float(f), float(c)) for i, (r, f, c) in enumerate(zip(recency, freq, churned, strict=True))]
    return spark.createDataFrame(rows, "person_id string, recency_days double, orders double, churned double")


@pytest.mark.extended   # ~16 s (tunes twice); the default keeps the choice, weights and scoring tests
def test_tuning_picks_by_validation_and_is_reproducible(spark):
    train, validation = _timeline(spark, 400, 1), _timeline(spark, 200, 2)
    cfg = ChurnSettings(candidates={"logistic_regression": {"regParam": [0.0, 10.0]},
                                    "random_forest": {"numTrees": [10], "maxDepth": [3]}}, parallelism=2, seed=7)
    first = churn.tune(train, validation, ["recency_days", "orders"], cfg)
    assert len(first) == 3
    assert first[0].validation >= first[1].validation >= first[2].validation
    assert first[0].validation > 0.8                       # recency carries the signal
    second = churn.tune(train, validation, ["recency_days", "orders"], cfg)
    # same seed, same data: same ranking and (up to summation order in the optimiser) same figures
    assert [(c.kind, c.params) for c in first] == [(c.kind, c.params) for c in second]
    assert [c.validation for c in first] == pytest.approx([c.validation for c in second], abs=1e-9)
    p1 = [r["p"] for r in churn.score(first[0].model, validation).orderBy("person_id").collect()]
    p2 = [r["p"] for r in churn.score(second[0].model, validation).orderBy("person_id").collect()]
    assert p1 == pytest.approx(p2, abs=1e-9)
    top = churn.importances(first[0].model, ["recency_days", "orders"])
    assert top[0][0] == "recency_days" and sum(v for _, v in top) == pytest.approx(1.0)


def test_class_weights_balance_the_classes(spark):
    train = _timeline(spark, 300, 3)
    weighted = churn.with_weights(train)
    totals = {r["churned"]: r["w"] for r in weighted.groupBy("churned").agg({"weight": "sum"}).withColumnRenamed(
        "sum(weight)", "w").collect()}
    assert totals[0.0] == pytest.approx(totals[1.0]) == pytest.approx(150.0)
