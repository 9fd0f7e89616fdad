"""``memberlake uplift`` on a copy of the shared pipeline run: the generated campaigns are too small
for the default ``min_rows``, so the copy lowers it; the model is trained, tested beside its
baselines, registered in the lakehouse's own MLflow store, and every active person is scored."""
from __future__ import annotations

import shutil

import pytest
from pyspark.sql import functions as F

from memberlake import cli
from memberlake.io.delta import Lakehouse
from memberlake.tables import TABLES

pytestmark = pytest.mark.extended


def test_uplift_trains_tests_registers_and_scores(spark, lake_dirs, tmp_path):
    _, lakehouse = lake_dirs
    lake = Lakehouse(str(lakehouse))
    assert not lake.exists("uplift_scores")          # the default min_rows: too few contacts, nothing written
    copy = tmp_path / "lake"
    shutil.copytree(lakehouse, copy)
    assert cli.main(["uplift", "--lakehouse", str(copy), "--set", "models.uplift.min_rows=10",
                     "--set", "models.uplift.classifiers={logistic_regression: {regParam: 0.01}}"]) == 0
    lake = Lakehouse(str(copy))
    for name in ("uplift_metrics", "uplift_deciles", "uplift_scores", "uplift_holdout"):
        df = lake.read(name)
        assert ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in df.schema.fields) == TABLES[name].columns
    metrics = {(r.model.split(" ")[0], r.split, r.metric): r.value for r in lake.read("uplift_metrics").collect()}
    models = {m for m, _, _ in metrics}
    assert {"random", "churn_risk"} <= models and ({"t_learner", "class_transformation"} & models)
    assert all(isinstance(v, float) for v in metrics.values())
    assert -1 <= metrics[("random", "test", "uplift_at_30")] <= 1         # a difference of two rates
    holdout = lake.read("uplift_holdout")
    outcomes = lake.read("campaign_outcomes")
    assert 0 < holdout.count() < outcomes.count()
    assert holdout.join(outcomes, ["campaign_id", "person_id"]).count() == holdout.count()
    scores = lake.read("uplift_scores")
    as_of = scores.agg(F.max("as_of_date")).first()[0]
    active = lake.read("features").where(F.col("as_of_date") == F.lit(as_of)).count()
    assert scores.count() == active > 0
    deciles = {r.decile: r["count"] for r in scores.groupBy("decile").count().collect()}
    assert sorted(deciles) == list(range(1, 11)) and max(deciles.values()) - min(deciles.values()) <= 0.05 * active + 2
    top, bottom = (scores.where(f"decile = {d}").agg(F.min("uplift"), F.max("uplift")).first() for d in (1, 10))
    assert top[0] >= bottom[1]
    report = tmp_path / "report.html"
    assert cli.main(["report", "--lakehouse", str(copy), "--out", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert 'data-chart="uplift_deciles"' in text and "on held-out contacts (Qini coefficient and AUUC" in text
    again = cli.main(["uplift", "--lakehouse", str(copy), "--set", "models.uplift.min_rows=10",
                      "--set", "models.uplift.classifiers={logistic_regression: {regParam: 0.01}}"])
    assert again == 0 and lake.read("uplift_scores").count() == active        # unchanged inputs: nothing to do
