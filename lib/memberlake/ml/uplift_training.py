"""The uplift job's training run: candidates, test figures beside baselines, MLflow, scores.

Returns the rows of ``uplift_metrics``, ``uplift_deciles`` and ``uplift_scores`` (one slice
per as-of date); nothing when no campaign has enough contacts in both arms.
"""
from __future__ import annotations

import json
import logging
from datetime import date
from typing import Callable

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.inputs import PersonActivity
from memberlake.ml import churn, uplift
from memberlake.ml import uplift_metrics as um
from memberlake.ml.features import feature_names, features_at
from memberlake.ops import registry
from memberlake.ops.tracking import configure, tracked_run
from memberlake.settings import Settings

log = logging.getLogger(__name__)


def _churn_risk(settings: Settings, test: DataFrame) -> tuple[str, DataFrame]:
    """The churn-risk baseline's scores on the test rows: the churn champion's P(churn) when one
    is registered and can score these features, else recency (days since the last order)."""
    try:
        loaded = registry.load_champion(settings.models.churn.registered_model)
    except Exception as exc:  # noqa: BLE001 - any registry problem: the proxy baseline instead
        log.warning("uplift: churn champion not loadable (%s): recency is the churn-risk baseline", exc)
        loaded = None
    if loaded is not None:
        model, version = loaded
        try:
            scored = churn.score(model, test).withColumnRenamed("p", "baseline").localCheckpoint()
            return f"churn_risk (churn model v{version})", scored
        except (PySparkException, ValueError, KeyError) as exc:
            log.warning("uplift: churn champion v%s cannot score these rows (%s): recency instead", version, exc)
    return "churn_risk (recency)", test.withColumn("baseline", F.col("recency_days"))


def uplift_training(settings: Settings, activity: PersonActivity, outcomes: DataFrame, as_of: date,
                    tags: dict[str, str], stage: Callable[..., None],
                    on_commit: Callable[[Callable[[], None]], None] | None = None) -> dict[str, DataFrame]:
    """Train, test and register an uplift model; score every active person at ``as_of``. A
    winning model takes the champion alias through ``on_commit`` (the job's run commit)."""
    import mlflow

    configure(settings)      # this lakehouse's MLflow store, before the churn champion is looked up
    cfg, models = settings.models.uplift, settings.models
    spark = outcomes.sparkSession
    names = [*feature_names(models), uplift.HISTORY]
    rows = uplift.training_rows(outcomes, cfg.outcome, cfg.campaigns)
    dates = uplift.feature_dates(rows)
    if not dates:
        stage("uplift skipped: no campaign has contacts in both a treated variant and the control group")
        return {}
    feats = features_at(activity, dates, models)
    frame = uplift.with_features(rows, feats, feature_names(models), models.active_days).localCheckpoint()
    parts = {k: v.localCheckpoint() for k, v in uplift.split(frame, cfg).items()}
    sizes = {k: {r["w"]: r["n"] for r in v.groupBy("w").agg(F.count(F.lit(1)).alias("n")).collect()}
             for k, v in parts.items()}
    small = [f"{k} {arm}" for k, by in sizes.items() for arm in (0, 1) if by.get(arm, 0) < cfg.min_rows]
    if small:
        stage("uplift skipped: fewer than %d contacts in %s (%s); more campaigns, or lower models.uplift.min_rows",
              cfg.min_rows, ", ".join(small), json.dumps({k: {str(a): n for a, n in v.items()} for k, v in sizes.items()}))
        return {}
    stage("uplift: %d campaigns, rows train %s, validation %s, test %s (treated/control)", len(dates),
          *[f"{sizes[k].get(1, 0)}/{sizes[k].get(0, 0)}" for k in ("train", "validation", "test")])
    candidates = uplift.tune(parts, names, cfg)
    best = candidates[0]
    tested = uplift.score(best.model, parts["test"]).localCheckpoint()
    figures = {best.name: uplift.evaluation(tested, "uplift", cfg.k)}
    baseline_name, risky = _churn_risk(settings, parts["test"])
    figures[baseline_name] = uplift.evaluation(risky, "baseline", cfg.k)
    randomised = parts["test"].withColumn("baseline", F.rand(cfg.seed))
    figures["random"] = uplift.evaluation(randomised, "baseline", cfg.k)
    deciles = {best.name: um.by_decile(tested, "uplift"), baseline_name: um.by_decile(risky, "baseline")}
    stage("uplift: best %s (validation Qini %.4f); test Qini %.4f vs %s %.4f and random %.4f", best.name,
          best.validation_qini, figures[best.name]["qini"], baseline_name, figures[baseline_name]["qini"],
          figures["random"]["qini"])
    params = {"as_of": as_of.isoformat(), "features": ",".join(names), "best": best.name,
              **{k: v for k, v in cfg.model_dump(mode="json").items() if k != "classifiers"},
              "classifiers": json.dumps(cfg.classifiers, sort_keys=True)}
    with tracked_run(settings, "uplift", f"uplift {as_of}", params, tags):
        mlflow.log_metrics({f"test_{k}": v for k, v in figures[best.name].items() if v == v})
        mlflow.log_metrics({f"baseline.{n.split(' ')[0]}.{k}": v for n, f in figures.items() if n != best.name
                            for k, v in f.items() if v == v})
        for c in candidates:
            mlflow.log_metric(f"candidate.{c.learner}.{c.kind}.validation_qini", c.validation_qini)
        registered = registry.register(
            best.model, cfg.registered_model, "test_qini", figures[best.name]["qini"],
            lambda champion: um.qini_coefficient(uplift.score(champion, parts["test"]), "uplift"),
            cfg.min_improvement, on_commit=on_commit)
    # Scores come from the champion: the new model when it won, else the one that kept the alias.
    champion = None if registered.promoted else registry.load_champion(cfg.registered_model)
    model, version = champion if champion is not None else (best.model, registered.version)
    current = features_at(activity, [as_of], models).withColumn(uplift.HISTORY, F.lit(1.0))
    scored = uplift.population_deciles(uplift.score(model, current).select("person_id", "uplift").localCheckpoint())
    day = F.lit(as_of).alias("as_of_date")
    metric_rows = [(name, "test", metric, float(value)) for name, f in figures.items() for metric, value in f.items()]
    metric_rows += [(c.name, "validation", "qini", float(c.validation_qini)) for c in candidates]
    metrics = spark.createDataFrame(metric_rows, "model string, split string, metric string, value double").select(
        day, F.lit(registered.version).alias("model_version"), F.lit(registered.promoted).alias("champion"), "*")
    decile_rows = None
    for name, table in deciles.items():
        part = uplift.deciles_frame(spark, name, table)
        decile_rows = part if decile_rows is None else decile_rows.unionByName(part)
    stage("uplift model registered as %s v%s (%s); %s persons scored with v%s", cfg.registered_model,
          registered.version, "champion" if registered.promoted else "challenger", "all active", version)
    holdout = tested.join(risky.select("campaign_id", "person_id", "baseline"), ["campaign_id", "person_id"]).select(
        day, "campaign_id", "person_id", F.col("w").alias("treated"), F.col("y").alias("outcome"), "uplift",
        F.col("baseline").alias("churn_risk"))
    return {Tables.UPLIFT_HOLDOUT: holdout, Tables.UPLIFT_METRICS: metrics, Tables.UPLIFT_DECILES: decile_rows.select(day, "*"),
            Tables.UPLIFT_SCORES: scored.select(day, "person_id", "uplift", "decile",
                                           F.lit(str(version)).alias("model_version"))}
