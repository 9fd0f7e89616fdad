"""forecast: completed orders -> demand forecasts per series with backtested model choice, and the
customer base week by week from the CLV model.

Every table keeps one slice per as-of date (default: the last order's date) and a re-run of a
date replaces it; a run whose inputs and parameters are unchanged is skipped. Each run is an
MLflow run (experiment ``<prefix>-forecast``) with the backtest scores. docs/forecast.md says
what is fitted and how the model of each series is chosen.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.forecast.build import CLV_TABLES, ForecastInputs, build, log_run, with_horizon
from memberlake.inputs import latest_order_date
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context, snapshot_predicate
from memberlake.settings import Settings

NAME = "forecast"
HELP = "Demand forecasts per series (statsforecast models chosen on a rolling backtest, hierarchy bottom-up) and the customer base from the CLV model."


@dataclass(frozen=True)
class Options:
    as_of: date | None = None
    horizon_weeks: int | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizon-weeks", type=int, metavar="N",
                        help="periods ahead (sets forecast.horizon; days for the channel_day grain)")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    cfg = with_horizon(settings.forecast, opts.horizon_weeks)
    with job_context(spark, settings, NAME) as ctx:
        orders = ctx.silver("orders", required=True)
        inputs = ForecastInputs(orders, ctx.silver("order_items"), ctx.silver("products"), ctx.graph(),
                                {t: ctx.table(t) for t in CLV_TABLES})
        as_of = ctx.as_of(opts.as_of, lambda: latest_order_date(orders, NAME), Tables.silver("orders"))
        ctx.run.parameters.update(cfg.model_dump(mode="json"))
        if ctx.unchanged([Tables.FORECAST_SERIES]):
            return
        written = ctx.publish(build(inputs, cfg, as_of, ctx.stage))
        if not written:
            return
        latest = {t: ctx.lake.read(t).where(snapshot_predicate(as_of)) if t in written else None
                  for t in (Tables.FORECAST_BACKTEST, Tables.FORECAST_SERIES)}
        metrics = log_run(settings, NAME, as_of, ctx.run.parameters, latest[Tables.FORECAST_BACKTEST],
                          latest[Tables.FORECAST_SERIES])
        if "share_beating_baseline" in metrics:
            ctx.stage("chosen models beat their baseline on backtest MASE for %.0f%% of series (mean MASE %.3f vs %.3f)",
                      100 * metrics["share_beating_baseline"], metrics["mean_mase"], metrics["mean_baseline_mase"])


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
