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
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.inputs import PersonActivity
from memberlake.jobs.common import MissingInput, job_main, options
from memberlake.ml.features import features_at
from memberlake.ml.scoring import churn_scores, monitoring
from memberlake.ops import registry
from memberlake.ops.checks import raise_alerts
from memberlake.ops.context import Outputs, job_context, snapshot_predicate
from memberlake.ops.tracking import configure
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "score"
HELP = "Score churn risk for every active person with the champion model from the MLflow registry."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """score has only the common options (--as-of picks the scoring date)."""


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts, cfg = options(Options, args), settings.models.churn
    with job_context(spark, settings, NAME) as ctx:
        configure(settings)
        version = registry.champion_version(cfg.registered_model)
        if version is None:
            raise MissingInput(f"score: no {registry.champion_uri(cfg.registered_model)} in the MLflow registry: "
                               "run `memberlake models` first (it needs enough history for the churn splits)")
        inputs = PersonActivity(ctx.lake, ctx.run, Pseudonymiser.from_settings(settings, spark))
        as_of = ctx.as_of(opts.as_of, lambda: inputs.last_day, Tables.silver("orders"))
        ctx.run.parameters.update({"model": cfg.registered_model, "model_version": version,
                                   "risk_bands": cfg.risk_bands,
                                   **settings.models.model_dump(mode="json", exclude={"segmentation"})})
        if ctx.unchanged([Tables.CHURN_SCORES]):
            return
        model, _ = registry.load_champion(cfg.registered_model)
        frame = features_at(inputs, [as_of], settings.models)
        ctx.publish(Outputs(as_of=as_of, slices={Tables.CHURN_SCORES: churn_scores(model, frame, version, cfg.risk_bands)}))
        written = ctx.lake.read(Tables.CHURN_SCORES)
        bands = {r["risk_band"]: r["n"] for r in written.where(snapshot_predicate(as_of)).groupBy("risk_band").agg(
            F.count(F.lit(1)).alias("n")).collect()}   # one row per band
        ctx.stage("scored %d persons as of %s with %s v%s: %s", sum(bands.values()), as_of, cfg.registered_model,
                  version, ", ".join(f"{b} {n}" for b, n in sorted(bands.items())))
        table, alerts = monitoring(settings, inputs, model, version, frame, written.where(snapshot_predicate(as_of)),
                                   written, as_of, ctx.run.run_id, NAME)
        if table is not None:
            ctx.publish(Outputs(as_of=as_of, slices={Tables.MODEL_MONITORING: table}))
            raise_alerts(spark, ctx.lake, settings.monitoring, alerts)
            ctx.stage("model monitoring: %d measures, %d past their limits", ctx.run.rows_written[Tables.MODEL_MONITORING],
                      len(alerts))


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
