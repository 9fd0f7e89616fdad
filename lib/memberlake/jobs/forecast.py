"""forecast: completed orders -> demand forecasts per series with backtested model choice, and the
customer base week by week from the CLV model.

Every table keeps one slice per as-of date (default: the last order's date) and a re-run of a
date replaces it; a run whose inputs and parameters are unchanged is skipped. Each run is an
MLflow run (experiment ``<prefix>-forecast``) with the backtest scores. docs/forecast.md says
what is fitted and how the model of each series is chosen.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from datetime import date
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from memberlake.btyd import btyd_summary, expected_value
from memberlake.forecast import customer_base as base
from memberlake.forecast.models import fit_all
from memberlake.forecast.pattern import profile as series_profile
from memberlake.forecast.selection import (
    KEYS,
    choose,
    clipped,
    forecasts,
    history_levels,
    level_scores,
    series_scores,
)
from memberlake.forecast.series import GRAINS, demand_history, demand_lines, ds_of, last_complete_period, period_date
from memberlake.inputs import latest_order_date, person_graph_or_empty, purchases, read_optional, read_silver
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main, snapshot_predicate, write_slice
from memberlake.ops.runs import Run, recorded_run, unchanged_since_last_run
from memberlake.ops.tracking import tracked_run
from memberlake.settings import ForecastSettings, Settings
from memberlake.tables import conform

NAME = "forecast"
HELP = "Demand forecasts per series (statsforecast models chosen on a rolling backtest, hierarchy bottom-up) and the customer base from the CLV model."
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizon-weeks", type=int, metavar="N",
                        help="periods ahead (sets forecast.horizon; days for the channel_day grain)")


def settings_for(settings: Settings, args: argparse.Namespace) -> ForecastSettings:
    cfg = settings.forecast
    weeks = getattr(args, "horizon_weeks", None)
    if weeks is not None:
        if weeks < 1:
            raise InputError(f"--horizon-weeks {weeks}: give a number of periods of at least 1")
        cfg = cfg.model_copy(update={"horizon": weeks})
    return cfg


def cutoffs(last_ds: int, cfg: ForecastSettings) -> list[int]:
    """Backtest cutoffs, oldest first: the last window ends at the last complete period; with
    ``season_window`` also the cutoff one season before it, whose window covers the periods a
    season before the ones ahead."""
    windows = cfg.backtest.windows
    rolling = {last_ds - cfg.horizon - (windows - 1 - k) * cfg.step for k in range(windows)}
    if cfg.backtest.season_window:
        rolling.add(last_ds - cfg.season())
    return sorted(rolling)


def demand(history: DataFrame, cfg: ForecastSettings, last_ds: int, as_of: date, run_: Run) -> dict[str, DataFrame]:
    """forecast_series, demand_forecast and forecast_backtest rows (without as_of_date and grain)."""
    grain = GRAINS[cfg.grain]
    cuts = cutoffs(last_ds, cfg)
    span = cfg.horizon + (cfg.backtest.windows - 1) * cfg.step   # the rolling windows decide fallback
    prof = series_profile(history, last_ds, span, cfg.season(), cfg.min_train, cfg.dormant_periods,
                          cfg.horizon).localCheckpoint()
    status = {r["status"]: r["n"] for r in prof.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()}  # <= 3 rows
    run_.stage("%d series (%s); backtest cutoffs at periods %s", sum(status.values()),
               ", ".join(f"{k} {v}" for k, v in sorted(status.items())), cuts)
    fitted = status.get("backtest", 0) + status.get("fallback", 0)
    pinned = None if cfg.model == "auto" else cfg.model
    if fitted == 0:
        chosen = prof.limit(0).select(*KEYS, F.lit(None).cast("string").alias("model"),
                                      F.lit(None).cast("string").alias("status"), F.lit(None).cast("string").alias("baseline"))
        empty = history.sparkSession.createDataFrame([], "measure string, series_id string, model string, mase double")
        return _outputs(history, prof, chosen, empty, None, None, grain)
    out = clipped(fit_all(history, prof, cutoffs=cuts, horizon=cfg.horizon, season=cfg.season(),
                          fallback=cfg.fallback_model, series_per_group=cfg.series_per_group, series=fitted,
                          min_train=cfg.min_train),
                  prof).localCheckpoint()
    run_.stage("fitted %d series: %d forecasts", fitted, out.count())
    scale_end = last_ds - cfg.horizon   # MASE scale: in-sample errors up to the last cutoff
    scores = series_scores(out, history, prof, scale_end, cfg.season()).localCheckpoint()
    chosen = choose(scores, prof, cfg.fallback_model, pinned).localCheckpoint()
    predicted = forecasts(out, chosen, prof, grain.parent is not None)
    above = level_scores(out, chosen, history, prof, grain.parent is not None, scale_end, cfg.season())
    return _outputs(history, prof, chosen, scores, predicted.withColumn("step", F.col("ds") - F.lit(last_ds)), above, grain)


def _outputs(history: DataFrame, prof: DataFrame, chosen: DataFrame, scores: DataFrame, predicted: DataFrame | None,
             above: DataFrame | None, grain) -> dict[str, DataFrame]:
    mine = scores.join(chosen.select(*KEYS, "model"), [*KEYS, "model"]).select(*KEYS, "mase")
    base_mase = scores.join(chosen.select(*KEYS, F.col("baseline").alias("model")), [*KEYS, "model"]).select(
        *KEYS, F.col("mase").alias("baseline_mase"))
    series = (prof.join(chosen.select(*KEYS, "model"), KEYS, "left").join(mine, KEYS, "left")
              .join(base_mase, KEYS, "left"))
    outputs = {"forecast_series": series}
    if predicted is not None:
        outputs["demand_history"] = history_levels(history, grain.parent is not None).withColumn(
            "period", period_date(F.col("ds"), grain))
        outputs["demand_forecast"] = predicted.withColumn("period", period_date(F.col("ds"), grain))
        per_series = scores.join(chosen.select(*KEYS, F.col("model").alias("_chosen")), KEYS).select(
            F.lit("series").alias("level"), *KEYS, "model", (F.col("model") == F.col("_chosen")).alias("chosen"),
            "windows", "periods", "mae", "mase", "wape", "bias", "coverage_80", "coverage_95")
        outputs["forecast_backtest"] = per_series.unionByName(
            above.withColumn("chosen", F.col("model") == "bottom_up"))
    return outputs


CLV_TABLES = ("clv", "clv_parameters", "clv_holdout")


def customer_base(tables: dict[str, DataFrame | None], run_: Run, purch: DataFrame, as_of: date,
                  weeks: int) -> DataFrame | None:
    """The customer_base_forecast rows from value's CLV tables (``CLV_TABLES``, None when absent):
    the CLV slice's model summed week by week (``forecast``) and its calibration fit's prediction
    of the holdout weeks beside what happened (``backtest``)."""
    if any(t is None for t in tables.values()):
        run_.stage("customer base: no CLV tables (value ran without CLV): skipped")
        return None
    clv, params, holdout = tables["clv"], tables["clv_parameters"], tables["clv_holdout"]
    clv_as_of = clv.where(F.col("as_of_date") <= F.lit(as_of)).agg(F.max("as_of_date")).first()[0]
    if clv_as_of is None:
        run_.stage("customer base: no CLV slice on or before %s: skipped", as_of)
        return None
    rows = params.where((F.col("as_of_date") == F.lit(clv_as_of)) & F.col("selected")).collect()   # < 20 rows
    fits: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        fits.setdefault((r["fit"], r["model"]), {})[r["parameter"]] = r["value"]
    full = [m for (fit, m) in fits if fit == "full" and m != "gamma_gamma"]
    if not full:
        run_.stage("customer base: no transaction model in clv_parameters at %s: skipped", clv_as_of)
        return None
    model = full[0]
    gg = fits.get(("full", "gamma_gamma"))
    summary = clv.where(F.col("as_of_date") == F.lit(clv_as_of)).select("frequency", "recency", "T", "expected_value")
    parts = [base.frame(base.weekly_expectations(summary, model, fits[("full", model)], weeks), clv_as_of,
                        "forecast", model)]
    calibration_end = holdout.where(F.col("as_of_date") == F.lit(clv_as_of)).agg(F.max("calibration_end")).first()[0]
    if ("calibration", model) in fits and calibration_end is not None and (clv_as_of - calibration_end).days >= 7:
        held = (clv_as_of - calibration_end).days // 7
        cal = btyd_summary(purch, calibration_end).select(
            "frequency", "recency", "T", (expected_value(gg) if gg else F.lit(0.0)).alias("expected_value"))
        parts.append(base.frame(base.weekly_expectations(cal, model, fits[("calibration", model)], held),
                                calibration_end, "backtest", model, base.actual_weeks(purch, calibration_end, held)))
    run_.stage("customer base: %s from the CLV slice of %s, %d weeks ahead", model, clv_as_of, weeks)
    return reduce(DataFrame.unionByName, parts)


def log_to_mlflow(settings: Settings, as_of: date, params: dict, backtest: DataFrame | None,
                  series: DataFrame) -> dict[str, float]:
    import mlflow

    metrics: dict[str, float] = {}
    counts = series.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()   # <= 3 rows
    metrics.update({f"series_{r['status']}": float(r["n"]) for r in counts})
    scored = series.where(F.col("mase").isNotNull() & F.col("baseline_mase").isNotNull()).agg(
        F.count(F.lit(1)).alias("n"), F.avg((F.col("mase") < F.col("baseline_mase")).cast("double")).alias("share"),
        F.avg("mase").alias("mase"), F.avg("baseline_mase").alias("baseline")).first()
    if scored["n"]:
        metrics.update({"share_beating_baseline": scored["share"], "mean_mase": scored["mase"],
                        "mean_baseline_mase": scored["baseline"]})
    if backtest is not None:
        for r in backtest.where("level = 'total'").collect():   # two rows per measure
            metrics[f"total.{r['measure']}.{r['model']}.mase"] = float("nan") if r["mase"] is None else r["mase"]
            metrics[f"total.{r['measure']}.{r['model']}.wape"] = float("nan") if r["wape"] is None else r["wape"]
    with tracked_run(settings, NAME, f"forecast {as_of}", params):
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        if backtest is not None:
            with tempfile.TemporaryDirectory() as tmp:
                backtest.where("level != 'series'").toPandas().to_csv(Path(tmp) / "backtest_levels.csv", index=False)
                mlflow.log_artifact(str(Path(tmp) / "backtest_levels.csv"))
    return metrics


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    cfg = settings_for(settings, args)
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {}, monitoring=settings.monitoring) as run_:
        orders = read_silver(spark, lake, run_, "orders", required=True)
        items = read_silver(spark, lake, run_, "order_items", required=False)
        products = read_silver(spark, lake, run_, "products", required=False)
        graph = person_graph_or_empty(spark, lake, run_)
        clv_tables = {t: read_optional(spark, lake, run_, t) for t in CLV_TABLES}
        as_of = getattr(args, "as_of", None) or latest_order_date(orders, NAME)
        run_.parameters.update({"as_of": as_of.isoformat(), **cfg.model_dump(mode="json")})
        if unchanged_since_last_run(spark, lake, run_) and lake.exists(spark, "forecast_series"):
            run_.stage("inputs and parameters unchanged since the last forecast run: nothing to do")
            return
        grain = GRAINS[cfg.grain]
        measures = [m for m in cfg.measures if m != "units" or items is not None]
        if not measures:
            run_.stage("no order lines: units cannot be forecast and revenue is not asked for: nothing to do")
            return
        last = last_complete_period(as_of, grain)
        history = demand_history(demand_lines(orders, items, products, as_of), grain, measures, as_of).localCheckpoint()
        outputs = demand(history, cfg, ds_of(last, grain), as_of, run_)
        if cfg.customer_base:
            purch = purchases(orders, items, graph, as_of).localCheckpoint()
            weeks = cfg.horizon if grain.period == "week" else max(1, cfg.horizon // 7)
            cb = customer_base(clv_tables, run_, purch, as_of, weeks)
            if cb is not None:
                outputs["customer_base_forecast"] = cb
        for table, df in outputs.items():
            shaped = df.select(F.lit(as_of).alias("as_of_date"), F.lit(cfg.grain).alias("grain"), "*")
            write_slice(spark, lake, run_, conform(shaped, table), table, snapshot_predicate(as_of))
        metrics = log_to_mlflow(settings, as_of, run_.parameters,
                                lake.read(spark, "forecast_backtest").where(snapshot_predicate(as_of))
                                if "forecast_backtest" in outputs else None,
                                lake.read(spark, "forecast_series").where(snapshot_predicate(as_of)))
        if "share_beating_baseline" in metrics:
            run_.stage("chosen models beat their baseline on backtest MASE for %.0f%% of series (mean MASE %.3f vs %.3f)",
                       100 * metrics["share_beating_baseline"], metrics["mean_mase"], metrics["mean_baseline_mase"])


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
