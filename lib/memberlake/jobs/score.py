"""score: the champion churn model scores every active person as of a date -> ``churn_scores``.

Loads ``models:/<registered_model>@champion`` from the MLflow registry, computes the same
point-in-time features the model was trained on, and writes one slice per as-of date
(replaced on a re-run). Decile 1 is the riskiest tenth; risk bands come from
``models.churn.risk_bands``. Skipped (recorded, not failed) when no champion exists yet. Each
run also monitors the model (``model_monitoring``: feature and score stability, realised AUC of
matured scores; alerts past ``monitoring.psi_limit`` / ``auc_min``).
"""
from __future__ import annotations

import argparse
import logging
from datetime import datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.inputs import PersonActivity
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import MissingInput, job_main
from memberlake.ml import churn, registry
from memberlake.ml.features import feature_names, features_at
from memberlake.ml.monitoring import realized_auc, stability
from memberlake.ops.checks import raise_alerts
from memberlake.ops.runs import recorded_run, unchanged_since_last_run
from memberlake.ops.tracking import configure
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "score"
HELP = "Score churn risk for every active person with the champion model from the MLflow registry."
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """score has only the common options (--as-of picks the scoring date)."""


def risk_band(bands: dict[str, float]) -> Column:
    """The first band (highest lower bound first) whose lower bound the probability reaches."""
    expr = None
    for name, lower in sorted(bands.items(), key=lambda kv: -kv[1]):
        cond = F.col("probability") >= F.lit(lower)
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    return expr


def deciles(scored: DataFrame) -> DataFrame:
    """``decile`` 1..10 from approximate quantile cut points (1 = highest probability).

    Cut points come from one approxQuantile pass, so no window puts every row in one partition.
    A person is in decile d when their probability exceeds 10 - d cut points; persons tied at the
    highest probability are always in decile 1 (so the riskiest decile is never empty).
    """
    *cuts, top = scored.approxQuantile("probability", [i / 10 for i in range(1, 10)] + [1.0], 0.0001)
    above = sum((F.col("probability") > F.lit(c)).cast("int") for c in cuts)
    decile = F.when(F.col("probability") >= F.lit(top), F.lit(10) - len(cuts)).otherwise(F.lit(10) - above)
    return scored.withColumn("decile", decile.cast("int"))


def churn_scores(model, frame: DataFrame, version: str, bands: dict[str, float]) -> DataFrame:
    """(person_id, as_of_date, probability, decile, risk_band, model_version)."""
    scored = churn.score(model, frame).select("person_id", "as_of_date", F.col("p").alias("probability"))
    return deciles(scored.localCheckpoint()).select(
        "person_id", "as_of_date", "probability", "decile", risk_band(bands).alias("risk_band"),
        F.lit(version).alias("model_version"))


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    cfg = settings.models.churn
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {}, monitoring=settings.monitoring) as run_:
        configure(settings)
        version = registry.champion_version(cfg.registered_model)
        if version is None:
            raise MissingInput(f"score: no {registry.champion_uri(cfg.registered_model)} in the MLflow registry: "
                               "run `memberlake models` first (it needs enough history for the churn splits)")
        inputs = PersonActivity(spark, lake, run_, Pseudonymiser.from_settings(settings, spark))
        as_of = getattr(args, "as_of", None) or inputs.last_day
        run_.parameters.update({"as_of": as_of.isoformat(), "model": cfg.registered_model, "model_version": version,
                                "risk_bands": cfg.risk_bands, **settings.models.model_dump(mode="json",
                                                                                           exclude={"segmentation"})})
        if unchanged_since_last_run(spark, lake, run_) and lake.exists(spark, "churn_scores"):
            run_.stage("inputs, parameters and champion unchanged since the last scoring: nothing to do")
            return
        model, _ = registry.load_champion(cfg.registered_model)
        frame = features_at(inputs, [as_of], settings.models)
        scores = churn_scores(model, frame, version, cfg.risk_bands)
        predicate = f"as_of_date = DATE'{as_of.isoformat()}'"
        lake.replace_where(scores, "churn_scores", predicate)
        written = lake.read(spark, "churn_scores").where(predicate)
        run_.record_write("churn_scores", written.count(), lake.version(spark, "churn_scores"))
        bands = {r["risk_band"]: r["n"] for r in written.groupBy("risk_band").agg(F.count(F.lit(1)).alias("n")).collect()}
        run_.stage("scored %d persons as of %s with %s v%s: %s", sum(bands.values()), as_of, cfg.registered_model,
                   version, ", ".join(f"{b} {n}" for b, n in sorted(bands.items())))
        monitor(spark, lake, run_, settings, inputs, model, version, frame, written, as_of)


def monitor(spark: SparkSession, lake: Lakehouse, run, settings: Settings, inputs: PersonActivity, model,
            version: str, frame: DataFrame, scores: DataFrame, as_of) -> None:
    """``model_monitoring`` rows of this scoring date: PSI of every feature (``frame``) and of the
    score (``scores``, as written) against the model's reference date (its ``labels_through``),
    and the realised AUC of every earlier scoring date whose horizon has passed; alerts past the
    configured limits."""
    cfg, limits = settings.models.churn, settings.monitoring
    rows = []
    reference_date = registry.labels_through(cfg.registered_model, version)
    if reference_date is not None and reference_date != as_of:
        reference = features_at(inputs, [reference_date], settings.models).localCheckpoint()
        drift = stability(reference, frame, feature_names(settings.models))
        reference_scores = churn.score(model, reference).select(F.col("p").alias("probability"))
        drift["score"] = stability(reference_scores, scores, ["probability"])["probability"]
        rows += [("psi", name, reference_date.isoformat(), value, limits.psi_limit, value > limits.psi_limit)
                 for name, value in drift.items()]
    horizon = timedelta(days=cfg.horizon_days)
    for day, auc in realized_auc(lake.read(spark, "churn_scores"), inputs.purchases, cfg.horizon_days,
                                 inputs.last_day):
        rows.append(("realized_auc", day.isoformat(), (day + horizon).isoformat(), auc, limits.auc_min,
                     auc < limits.auc_min))
    if not rows:
        return
    now = datetime.now(timezone.utc)
    table = spark.createDataFrame([(as_of, cfg.registered_model, version, *r, now) for r in rows], MONITORING_SCHEMA)
    lake.replace_where(table, "model_monitoring", f"as_of_date = DATE'{as_of.isoformat()}'")
    run.record_write("model_monitoring", len(rows), lake.version(spark, "model_monitoring"))
    alerts = [(run.run_id, NAME, "model", f"{cfg.registered_model} v{version}", "warn",
               f"{metric} of {subject}: {value:.4f} " + (f"> {limit}" if metric == "psi" else f"< {limit}")
               + f" (reference {reference})", value, limit, now)
              for metric, subject, reference, value, limit, alert in rows if alert]
    raise_alerts(spark, lake, limits, alerts)
    run.stage("model monitoring: %d measures, %d past their limits", len(rows), len(alerts))


MONITORING_SCHEMA = ("as_of_date date, model string, model_version string, metric string, subject string, "
                     "reference string, value double, limit double, alert boolean, measured_at timestamp")


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
