"""Champion/challenger in a temporary MLflow registry, and batch scoring with the registered model."""
from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import functions as F

from memberlake.ml import churn
from memberlake.ml.scoring import churn_scores, deciles, risk_band
from memberlake.ops import registry
from memberlake.ops.tracking import configure, tracked_run

FEATURES = ["recency_days", "orders"]


@pytest.fixture(scope="module")
def toy(spark):
    rows = [(f"p{i}", date(2024, 6, 30), float(i % 50), float(i % 7), 1.0 if (i % 50) >= 25 else 0.0) for i in range(200)]
    return spark.createDataFrame(rows, "person_id string, as_of_date date, recency_days double, orders double, churned double")


def _fit(frame, reg: float):
    return churn.pipeline("logistic_regression", FEATURES, {"regParam": reg}, 1, False).fit(frame)


def _register(settings, model, name, metric, frame, **dates):
    with tracked_run(settings, "churn-test", "test"):
        return registry.register(model, name, "validation_auc", metric,
                                 lambda champ: churn.evaluate(churn.score(champ, frame), "areaUnderROC"), 0.0,
                                 **dates)


@pytest.fixture(scope="module")
def good_and_flat(toy):
    """A model that ranks the toy rows well, its AUC there, and one that cannot rank (every
    coefficient shrunk to nothing, and ``orders`` is noise)."""
    good = _fit(toy, 0.0)
    flat = churn.pipeline("logistic_regression", ["orders"], {"regParam": 1e6}, 1, False).fit(toy)
    return good, churn.evaluate(churn.score(good, toy), "areaUnderROC"), flat


def test_a_deferred_winner_takes_the_alias_only_when_its_run_commits(spark, settings, toy, good_and_flat):
    configure(settings)
    name = "test-churn-deferred"
    good, good_auc, flat = good_and_flat
    first = _register(settings, flat, name, 0.5, toy)
    pending: list = []
    second = _register(settings, good, name, good_auc, toy, on_commit=pending.append)
    assert second.promoted and len(pending) == 1
    assert registry.champion_version(name) == first.version      # a run that fails here leaves v1 serving
    pending[0]()                                                 # the run committed
    assert registry.champion_version(name) == second.version


def test_champion_moves_only_to_a_better_model(spark, settings, toy, good_and_flat):
    from mlflow import MlflowClient

    configure(settings)
    name = "test-churn-promotion"
    good, good_auc, flat = good_and_flat

    first = _register(settings, flat, name, 0.5, toy)
    assert first.promoted and first.champion_metric is None
    assert registry.champion_version(name) == first.version

    second = _register(settings, good, name, good_auc, toy)      # better: takes the alias
    assert second.promoted and second.champion_metric == pytest.approx(0.5, abs=0.05)
    assert registry.champion_version(name) == second.version

    third = _register(settings, flat, name, 0.5, toy)            # worse: a challenger
    assert not third.promoted and third.champion_metric == pytest.approx(good_auc)
    assert registry.champion_version(name) == second.version
    client = MlflowClient()
    assert client.get_model_version(name, third.version).tags["role"] == "challenger"
    assert client.get_model_version(name, second.version).tags["role"] == "champion"


def test_a_champion_trained_on_the_comparison_period_is_not_compared(spark, settings, toy, good_and_flat):
    from mlflow import MlflowClient

    configure(settings)
    name = "test-churn-labels-through"
    good, good_auc, flat = good_and_flat
    june, march, september = date(2024, 6, 30), date(2024, 3, 31), date(2024, 9, 28)

    first = _register(settings, flat, name, 0.5, toy, labels_through=june)
    assert first.promoted
    assert MlflowClient().get_model_version(name, first.version).tags["labels_through"] == "2024-06-30"
    # a backfill compares on rows as of March; the champion knows outcomes up to June, so the
    # better new model is registered as a challenger without scoring the champion
    backfill = _register(settings, good, name, good_auc, toy, labels_through=march)
    assert not backfill.promoted and backfill.champion_metric is None
    assert registry.champion_version(name) == first.version
    # a later run compares on September rows, after the champion's labels: compared, and it wins
    later = _register(settings, good, name, good_auc, toy, labels_through=september)
    assert later.promoted and later.champion_metric == pytest.approx(0.5, abs=0.05)
    assert registry.champion_version(name) == later.version


def test_a_champion_that_cannot_be_scored_is_never_replaced_because_of_the_error(spark, settings, toy,
                                                                                good_and_flat):
    """Its comparison fails (its features are gone) and it has no recorded metric: the new model
    is a challenger. With a recorded metric, that is compared. Other errors propagate."""
    from mlflow import MlflowClient

    configure(settings)
    good, good_auc, flat = good_and_flat
    name = "test-churn-unscorable"
    first = _register(settings, flat, name, 0.5, toy)
    MlflowClient().delete_model_version_tag(name, first.version, "validation_auc")
    without = toy.drop("orders")               # the champion reads "orders": scoring it fails
    with tracked_run(settings, "churn-test", "test"):
        second = registry.register(good, name, "validation_auc", good_auc,
                                   lambda champ: churn.evaluate(churn.score(champ, without), "areaUnderROC"), 0.0)
    assert not second.promoted and registry.champion_version(name) == first.version
    MlflowClient().set_model_version_tag(name, first.version, "validation_auc", "0.5")
    with tracked_run(settings, "churn-test", "test"):
        third = registry.register(good, name, "validation_auc", good_auc,
                                  lambda champ: churn.evaluate(churn.score(champ, without), "areaUnderROC"), 0.0)
    assert third.promoted and third.champion_metric == 0.5

    def broken(_champ):
        raise RuntimeError("the cluster went away")
    with tracked_run(settings, "churn-test", "test"), pytest.raises(RuntimeError, match="went away"):
        registry.register(flat, name, "validation_auc", 0.99, broken, 0.0)
    assert registry.champion_version(name) == third.version


def test_scoring_with_the_registered_champion(spark, settings, toy):
    configure(settings)
    name = "test-churn-scoring"
    model = _fit(toy, 0.0)
    reg = _register(settings, model, name, 0.9, toy)
    loaded, version = registry.load_champion(name)
    assert version == reg.version
    bands = {"high": 0.6, "medium": 0.3, "low": 0.0}
    scores = churn_scores(loaded, toy.drop("churned"), version, bands)
    assert scores.columns == ["person_id", "as_of_date", "probability", "decile", "risk_band", "model_version"]
    rows = scores.collect()
    assert len(rows) == 200 and {r["model_version"] for r in rows} == {version}
    direct = {r["person_id"]: r["p"] for r in churn.score(model, toy).collect()}
    assert all(r["probability"] == pytest.approx(direct[r["person_id"]]) for r in rows)
    # the riskiest decile holds the highest probabilities
    top = min(r["probability"] for r in rows if r["decile"] == 1)
    assert all(r["probability"] <= top for r in rows if r["decile"] > 1)


def test_deciles_and_risk_bands_by_hand(spark):
    frame = spark.createDataFrame([(f"p{i}", i / 100) for i in range(100)], "person_id string, probability double")
    out = {r["person_id"]: r for r in deciles(frame).select(
        "*", risk_band({"high": 0.6, "medium": 0.3, "low": 0.0}).alias("band")).collect()}
    assert out["p99"]["decile"] == 1 and out["p90"]["decile"] == 1 and out["p89"]["decile"] == 2
    assert out["p0"]["decile"] == 10 and out["p9"]["decile"] == 10
    counts = deciles(frame).groupBy("decile").count().agg(F.min("count"), F.max("count")).first()
    assert counts[0] == counts[1] == 10
    assert (out["p60"]["band"], out["p59"]["band"], out["p30"]["band"], out["p29"]["band"]) == (
        "high", "medium", "medium", "low")
