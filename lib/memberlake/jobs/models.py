"""models: point-in-time features -> behavioural segments and a churn model, tracked in MLflow.

Outputs (one slice per as-of date, replaced on a re-run of that date): ``features`` (every
as-of date used), ``segments`` and ``segment_profile`` (the as-of date), ``churn_metrics``,
``churn_calibration`` and ``churn_roc`` (test-date curve points), keyed by the as-of date the
model was trained at. Segmentation and churn are one MLflow run each (experiments
``<prefix>-segmentation`` and ``<prefix>-churn``); the churn model is registered and becomes
``champion`` only when it beats the current one.
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
from memberlake.ml.features import feature_names, features_at, split_dates
from memberlake.ml.training import churn_training, run_tags, segmentation
from memberlake.ops.context import Outputs, job_context
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "models"
HELP = "Point-in-time features, MLlib segmentation and churn models (MLflow tracking and registry)."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None
    skip_churn: bool = False
    skip_segments: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-churn", action="store_true", help="features and segmentation only")
    parser.add_argument("--skip-segments", action="store_true", help="features and churn only")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts, cfg = options(Options, args), settings.models
    with job_context(spark, settings, NAME) as ctx:
        inputs = PersonActivity(ctx.lake, ctx.run, Pseudonymiser.from_settings(settings, spark))
        as_of = ctx.as_of(opts.as_of, lambda: inputs.last_day, Tables.silver("orders"))
        splits = split_dates(as_of, cfg.churn.horizon_days, cfg.churn.train_dates, cfg.churn.step_days)
        ctx.run.parameters.update({"skip_churn": opts.skip_churn,
                                   "skip_segments": opts.skip_segments, "feature_names": feature_names(cfg),
                                   **cfg.model_dump(mode="json")})
        if ctx.unchanged([Tables.FEATURES]):
            return
        dates = sorted({as_of, *([] if opts.skip_churn else [d for ds in splits.values() for d in ds])})
        feats = features_at(inputs, dates, cfg).localCheckpoint()
        listed = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
        # a new feature is a new column; earlier slices read it as null
        rows = ctx.replace_slice(Tables.FEATURES, feats, f"as_of_date IN ({listed})", add_columns=True)
        ctx.stage("features: %d rows for %d as-of dates", rows, len(dates))
        current = feats.where(F.col("as_of_date") == F.lit(as_of))
        if current.limit(1).count() == 0:
            raise MissingInput(f"models: no person has a completed order in the {cfg.active_days} days up to {as_of}")
        tags = run_tags(ctx.run, settings)
        out = Outputs(as_of=as_of)
        if not opts.skip_segments:
            out.slices.update(segmentation(settings, current, as_of, tags, ctx.stage))
        if not opts.skip_churn:
            out.slices.update(churn_training(settings, inputs.purchases, feats, splits, as_of, tags, ctx.stage,
                                             on_commit=ctx.run.on_commit))
        ctx.publish(out)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
