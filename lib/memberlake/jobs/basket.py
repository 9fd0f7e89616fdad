"""basket: completed orders -> frequent itemsets, rules, bought-together lists, recommendations.

Each run is a snapshot for its as-of date (default: the last completed order's date): the four
output tables keep one slice per ``as_of_date`` and a re-run of a date replaces only that slice,
so running twice changes nothing. Each run is also an MLflow run (experiment ``<prefix>-basket``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from memberlake.basket.snapshot import OUTPUTS, log_run, parameters, segment_columns, snapshot
from memberlake.contract import Tables
from memberlake.inputs import latest_order_date
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context, snapshot_predicate
from memberlake.privacy.pseudonymise import Pseudonymiser
from memberlake.settings import Settings

NAME = "basket"
HELP = "Mine frequently-bought-together rules (FP-Growth) and recommend products per person."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """basket has only the common options (--as-of picks the snapshot date)."""


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts, cfg = options(Options, args), settings.basket
    with job_context(spark, settings, NAME) as ctx:
        orders = ctx.silver("orders", required=True, pseudonymiser=Pseudonymiser.from_settings(settings, spark))
        items = ctx.silver("order_items", required=True)
        products = ctx.silver("products", required=cfg.level != "product")
        profile = ctx.lake.read(Tables.MEMBER_PROFILE) if ctx.exists(Tables.MEMBER_PROFILE) else None
        segment_by = segment_columns(cfg, orders, products, profile)
        as_of = ctx.as_of(opts.as_of, lambda: latest_order_date(orders, NAME), Tables.silver("orders"))
        params = parameters(cfg, as_of)
        ctx.run.parameters.update(params)
        graph = ctx.graph()
        if any(c not in orders.columns for c in segment_by):       # e.g. the RFM segment or value tier of the buyer
            ctx.run.record_read(Tables.MEMBER_PROFILE, version=ctx.lake.version(Tables.MEMBER_PROFILE))
        if ctx.unchanged(OUTPUTS):
            return
        out = snapshot(orders, items, products, profile, graph, segment_by, cfg, as_of, params, ctx.stage)
        counts = {**out.counts, **{t.removeprefix("basket_"): n for t, n in ctx.publish(out).items()}}
        ctx.stage("itemsets %d, rules %d, recommendations %d", counts["itemsets"], counts["rules"],
                  counts["recommendations"])
        log_run(settings, NAME, as_of, params, counts,
                ctx.lake.read(Tables.BASKET_RULES).where(snapshot_predicate(as_of)), out.skipped)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
