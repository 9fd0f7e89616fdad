"""uplift: who do campaigns move? T-learner and class-transformation models from randomised contacts.

Reads ``campaign_outcomes`` (campaigns with a control group), computes point-in-time features
the day before each campaign's first send, fits every learner x classifier in
``models.uplift``, picks the best on validation Qini, evaluates it on held-out contacts (Qini
coefficient, AUUC, uplift@k, deciles) beside a random and a churn-risk order, registers it in
MLflow (``champion`` when it beats the current one on the same rows) and scores every active
person: ``uplift_metrics``, ``uplift_deciles``, ``uplift_scores`` (one slice per as-of date).
``campaign plan`` can then target the top persons by predicted uplift x value. docs/campaigns.md.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.inputs import PersonActivity
from memberlake.jobs.common import job_main, options
from memberlake.ml.training import run_tags
from memberlake.ml.uplift_training import uplift_training
from memberlake.ops.context import Outputs, job_context
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "uplift"
HELP = "Uplift models from randomised campaigns (T-learner, class transformation; Qini, AUUC) and uplift_scores."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None
    skip_uplift: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-uplift", action="store_true", help="do not train uplift models")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts, cfg = options(Options, args), settings.models.uplift
    if opts.skip_uplift or not cfg.enabled:
        return
    with job_context(spark, settings, NAME, cfg.model_dump(mode="json")) as ctx:
        outcomes = ctx.table(Tables.CAMPAIGN_OUTCOMES)
        if outcomes is None:
            ctx.stage("no campaign_outcomes (no campaign contacts read out yet): nothing to do")
            return
        activity = PersonActivity(ctx.lake, ctx.run, Pseudonymiser.from_settings(settings, spark))
        as_of = ctx.as_of(opts.as_of, lambda: activity.last_day, Tables.silver("orders"))
        if ctx.unchanged([Tables.UPLIFT_SCORES]):
            return
        tables = uplift_training(settings, activity, outcomes, as_of, run_tags(ctx.run, settings), ctx.stage,
                                 on_commit=ctx.run.on_commit)
        ctx.publish(Outputs(as_of=as_of, slices=tables))


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
