"""Scoring with the champion churn model: deciles, risk bands, and the model's monitoring rows."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.inputs import PersonActivity
from memberlake.ml import churn
from memberlake.ml.features import feature_names, features_at
from memberlake.ml.monitoring import realized_auc, stability
from memberlake.ops import registry
from memberlake.settings import Settings

log = logging.getLogger(__name__)


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


def monitoring(settings: Settings, inputs: PersonActivity, model, version: str, frame: DataFrame,
               scores: DataFrame, history: DataFrame, as_of: date, run_id: str, job: str
               ) -> tuple[DataFrame | None, list[tuple]]:
    """``model_monitoring`` rows of this scoring date and the alerts past the configured limits:
    PSI of every feature (``frame``) and of the score (``scores``, as written) against the model's
    reference date (its ``labels_through``), and the realised AUC of every earlier scoring date in
    ``history`` (``churn_scores``) whose horizon has passed."""
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
    for day, auc in realized_auc(history, inputs.purchases, cfg.horizon_days,
                                 inputs.last_day):
        rows.append(("realized_auc", day.isoformat(), (day + horizon).isoformat(), auc, limits.auc_min,
                     auc < limits.auc_min))
    if not rows:
        return None, []
    now = datetime.now(timezone.utc)
    table = frame.sparkSession.createDataFrame([(as_of, cfg.registered_model, version, *r, now) for r in rows], MONITORING_SCHEMA)
    alerts = [(run_id, job, "model", f"{cfg.registered_model} v{version}", "warn",
               f"{metric} of {subject}: {value:.4f} " + (f"> {limit}" if metric == "psi" else f"< {limit}")
               + f" (reference {reference})", value, limit, now)
              for metric, subject, reference, value, limit, alert in rows if alert]
    return table, alerts


MONITORING_SCHEMA = ("as_of_date date, model string, model_version string, metric string, subject string, "
                     "reference string, value double, limit double, alert boolean, measured_at timestamp")


MONITORING_SCHEMA = ("as_of_date date, model string, model_version string, metric string, subject string, "
                     "reference string, value double, limit double, alert boolean, measured_at timestamp")
