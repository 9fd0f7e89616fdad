"""value: purchases -> RFM snapshot and segment migration, member profiles and tags, CLV.

Snapshot tables (``rfm``, ``rfm_segment_migration``, ``tag_coverage``, ``clv``,
``clv_parameters``, ``clv_holdout``, ``loyalty``) keep one slice per as-of date and a re-run of a
date replaces only that slice; ``member_profile`` is the profile as of the latest run. A run whose
inputs and parameters are unchanged since the last one is skipped. Each run is an MLflow run
(experiment ``<prefix>-value``) with the fitted CLV parameters and the holdout report.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.inputs import latest_order_date
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings
from memberlake.value.snapshot import ValueInputs, log_run, snapshot

NAME = "value"
HELP = "RFM snapshot and segments, member profiles and tags, customer lifetime value (BG/NBD, MBG/NBD or Pareto/NBD, chosen on a holdout, + Gamma-Gamma)."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None
    skip_clv: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-clv", action="store_true", help="RFM and profiles only")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts, cfg = options(Options, args), settings.value
    with job_context(spark, settings, NAME) as ctx:
        orders = ctx.silver("orders", required=True, pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        inputs = ValueInputs(orders, ctx.silver("order_items"), ctx.silver("products"), ctx.table(Tables.PERSON),
                             ctx.graph(), ctx.table(Tables.SESSIONS), ctx.table(Tables.REVIEW_SENTIMENT),
                             ctx.lake.read(Tables.RFM) if ctx.exists(Tables.RFM) else None)
        as_of = ctx.as_of(opts.as_of, lambda: latest_order_date(orders, NAME), Tables.silver("orders"))
        ctx.run.parameters.update({"skip_clv": opts.skip_clv, **cfg.model_dump(mode="json")})
        if ctx.unchanged([Tables.MEMBER_PROFILE]):
            return
        outputs = snapshot(inputs, cfg, as_of, opts.skip_clv, ctx.stage)
        ctx.publish(outputs)
        log_run(settings, NAME, ctx.run.parameters, outputs)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
