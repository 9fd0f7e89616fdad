"""One forecast run: demand per series with a backtested model choice, and the customer base.

:func:`build` is what the ``forecast`` job runs between reading its inputs and publishing; it
writes nothing itself. docs/forecast.md says what is fitted and how a series' model is chosen.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Callable

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.btyd import MODELS, btyd_summary, expected_value
from memberlake.contract import Tables
from memberlake.errors import InputError
from memberlake.forecast import customer_base as base
from memberlake.forecast.models import fit_all
from memberlake.forecast.pattern import profile as series_profile
from memberlake.forecast.selection import (
    KEYS,
    choose,
    clipped,
    forecasts,
    history_levels,
    interval_factors,
    level_scores,
    series_scores,
)
from memberlake.forecast.series import GRAINS, demand_history, demand_lines, ds_of, last_complete_period, period_date
from memberlake.inputs import purchases
from memberlake.ops.context import Outputs
from memberlake.ops.tracking import tracked_run
from memberlake.settings import ForecastSettings, Settings
from memberlake.tables import conform

log = logging.getLogger(__name__)

CLV_TABLES = (Tables.CLV, Tables.CLV_PARAMETERS, Tables.CLV_HOLDOUT)


def with_horizon(cfg: ForecastSettings, weeks: int | None) -> ForecastSettings:
    """``cfg`` with ``--horizon-weeks`` applied (periods ahead; days for the channel_day grain)."""
    if weeks is None:
        return cfg
    if weeks < 1:
        raise InputError(f"--horizon-weeks {weeks}: give a number of periods of at least 1")
    return cfg.model_copy(update={"horizon": weeks})


@dataclass
class ForecastInputs:
    orders: DataFrame
    items: DataFrame | None
    products: DataFrame | None
    graph: DataFrame
    clv: dict[str, DataFrame | None]     # value's CLV_TABLES (None when absent)


def cutoffs(last_ds: int, cfg: ForecastSettings) -> list[int]:
    """Backtest cutoffs, oldest first: the last window ends at the last complete period; with
    ``season_window`` also the cutoff one season before it, whose window covers the periods a
    season before the ones ahead."""
    windows = cfg.backtest.windows
    rolling = {last_ds - cfg.horizon - (windows - 1 - k) * cfg.step for k in range(windows)}
    if cfg.backtest.season_window:
        rolling.add(last_ds - cfg.season())
    return sorted(rolling)


def demand(history: DataFrame, cfg: ForecastSettings, last_ds: int, stage: Callable[..., None]) -> dict[str, DataFrame]:
    """forecast_series, demand_forecast and forecast_backtest rows (without as_of_date and grain)."""
    grain = GRAINS[cfg.grain]
    cuts = cutoffs(last_ds, cfg)
    span = cfg.horizon + (cfg.backtest.windows - 1) * cfg.step   # the rolling windows decide fallback
    prof = series_profile(history, last_ds, span, cfg.season(), cfg.min_train, cfg.dormant_periods,
                          cfg.horizon).localCheckpoint()
    status = {r["status"]: r["n"] for r in prof.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()}  # <= 3 rows
    stage("%d series (%s); backtest cutoffs at periods %s", sum(status.values()),
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
    stage("fitted %d series: %d forecasts", fitted, out.count())
    scale_end = last_ds - cfg.horizon   # MASE scale: in-sample errors up to the last cutoff
    scores = series_scores(out, history, prof, scale_end, cfg.season()).localCheckpoint()
    chosen = choose(scores, prof, cfg.fallback_model, pinned).localCheckpoint()
    factors = None
    if cfg.intervals == "backtest":
        factors = interval_factors(out, chosen, history).localCheckpoint()
        got = factors.where(F.col("f_80").isNotNull()).agg(F.count(F.lit(1)), F.percentile_approx("f_80", 0.5)).first()
        stage("bounds calibrated on the backtest for %d of %d backtested series (median factor at 80%%: %s)",
              got[0], status.get("backtest", 0), _fmt(got[1]))
    predicted = forecasts(out, chosen, prof, grain.parent is not None, factors)
    above = level_scores(out, chosen, history, prof, grain.parent is not None, scale_end, cfg.season())
    return _outputs(history, prof, chosen, scores, predicted.withColumn("step", F.col("ds") - F.lit(last_ds)), above, grain,
                    factors)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}"


def _outputs(history: DataFrame, prof: DataFrame, chosen: DataFrame, scores: DataFrame, predicted: DataFrame | None,
             above: DataFrame | None, grain, factors: DataFrame | None = None) -> dict[str, DataFrame]:
    mine = scores.join(chosen.select(*KEYS, "model"), [*KEYS, "model"]).select(*KEYS, "mase")
    base_mase = scores.join(chosen.select(*KEYS, F.col("baseline").alias("model")), [*KEYS, "model"]).select(
        *KEYS, F.col("mase").alias("baseline_mase"))
    series = (prof.join(chosen.select(*KEYS, "model"), KEYS, "left").join(mine, KEYS, "left")
              .join(base_mase, KEYS, "left"))
    # the factors that calibrated the series' bounds (both or neither: docs/forecast.md "Intervals")
    if factors is not None:
        series = series.join(factors.select(*KEYS, *[F.col(f"f_{lv}").alias(f"interval_factor_{lv}") for lv in (80, 95)]),
                             KEYS, "left")
    else:
        series = series.select("*", *[F.lit(None).cast("double").alias(f"interval_factor_{lv}") for lv in (80, 95)])
    outputs = {Tables.FORECAST_SERIES: series}
    if predicted is not None:
        outputs[Tables.DEMAND_HISTORY] = history_levels(history, grain.parent is not None).withColumn(
            "period", period_date(F.col("ds"), grain))
        outputs[Tables.DEMAND_FORECAST] = predicted.withColumn("period", period_date(F.col("ds"), grain))
        per_series = scores.join(chosen.select(*KEYS, F.col("model").alias("_chosen")), KEYS).select(
            F.lit("series").alias("level"), *KEYS, "model", (F.col("model") == F.col("_chosen")).alias("chosen"),
            "windows", "periods", "mae", "mase", "wape", "bias", "coverage_80", "coverage_95")
        outputs[Tables.FORECAST_BACKTEST] = per_series.unionByName(
            above.withColumn("chosen", F.col("model") == "bottom_up"))
    return outputs



def customer_base(tables: dict[str, DataFrame | None], stage: Callable[..., None], purch: DataFrame, as_of: date,
                  weeks: int, level: float = 0.9) -> DataFrame | None:
    """The customer_base_forecast rows from value's CLV tables (``CLV_TABLES``, None when absent):
    the CLV slice's model summed week by week (``forecast``) and its calibration fit's prediction
    of the holdout weeks beside what happened (``backtest``), each with ``level`` bounds."""
    if any(t is None for t in tables.values()):
        stage("customer base: no CLV tables (value ran without CLV): skipped")
        return None
    clv, params, holdout = tables[Tables.CLV], tables[Tables.CLV_PARAMETERS], tables[Tables.CLV_HOLDOUT]
    clv_as_of = clv.where(F.col("as_of_date") <= F.lit(as_of)).agg(F.max("as_of_date")).first()[0]
    if clv_as_of is None:
        stage("customer base: no CLV slice on or before %s: skipped", as_of)
        return None
    rows = params.where((F.col("as_of_date") == F.lit(clv_as_of)) & F.col("selected")).collect()   # < 20 rows
    fits: dict[tuple[str, str], dict[str, float]] = {}
    covariance: dict[tuple[str, str], dict[str, list[float] | None]] = {}
    for r in rows:
        fits.setdefault((r["fit"], r["model"]), {})[r["parameter"]] = r["value"]
        covariance.setdefault((r["fit"], r["model"]), {})[r["parameter"]] = r.asDict().get("log_covariance")
    full = [m for (fit, m) in fits if fit == "full" and m != "gamma_gamma"]
    if not full:
        stage("customer base: no transaction model in clv_parameters at %s: skipped", clv_as_of)
        return None
    model = full[0]
    gg = fits.get(("full", "gamma_gamma"))
    summary = clv.where(F.col("as_of_date") == F.lit(clv_as_of)).select("frequency", "recency", "T", "expected_value")
    parts = [base.frame(base.weekly_expectations(summary, model, fits[("full", model)], weeks,
                                                 _log_covariance(model, covariance[("full", model)]), level),
                        clv_as_of, "forecast", model)]
    calibration_end = holdout.where(F.col("as_of_date") == F.lit(clv_as_of)).agg(F.max("calibration_end")).first()[0]
    if ("calibration", model) in fits and calibration_end is not None and (clv_as_of - calibration_end).days >= 7:
        held = (clv_as_of - calibration_end).days // 7
        cal = btyd_summary(purch, calibration_end).select(
            "frequency", "recency", "T", (expected_value(gg) if gg else F.lit(0.0)).alias("expected_value"))
        cal_cov = _log_covariance(model, covariance[("calibration", model)])
        parts.append(base.frame(base.weekly_expectations(cal, model, fits[("calibration", model)], held, cal_cov, level),
                                calibration_end, "backtest", model, base.actual_weeks(purch, calibration_end, held)))
    stage("customer base: %s from the CLV slice of %s, %d weeks ahead", model, clv_as_of, weeks)
    return reduce(DataFrame.unionByName, parts)


def _log_covariance(model: str, rows: dict[str, list[float] | None]) -> np.ndarray | None:
    """The fit's covariance of the log-parameters from its ``clv_parameters`` rows (one matrix row
    per parameter, in the model's order); None when a row lacks it (no covariance, or a slice
    written before the column existed)."""
    names = MODELS[model].parameters
    if any(rows.get(name) is None or len(rows[name]) != len(names) for name in names):
        return None
    return np.array([rows[name] for name in names], dtype=float)


def log_run(settings: Settings, job: str, as_of: date, params: dict, backtest: DataFrame | None,
            series: DataFrame) -> dict[str, float]:
    """The run's MLflow metrics (series per status, share beating the baseline, totals' scores)
    and the backtest of the levels above the series; returns the metrics."""
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
    if "interval_factor_80" in series.columns:
        calibrated = series.where(F.col("interval_factor_80").isNotNull()).agg(
            F.count(F.lit(1)).alias("n"), *[F.percentile_approx(f"interval_factor_{lv}", 0.5).alias(f"f{lv}")
                                            for lv in (80, 95)]).first()
        metrics["series_calibrated"] = float(calibrated["n"])
        if calibrated["n"]:
            metrics.update({"median_interval_factor_80": calibrated["f80"], "median_interval_factor_95": calibrated["f95"]})
    if backtest is not None:
        for r in backtest.where("level = 'total'").collect():   # two rows per measure
            metrics[f"total.{r['measure']}.{r['model']}.mase"] = float("nan") if r["mase"] is None else r["mase"]
            metrics[f"total.{r['measure']}.{r['model']}.wape"] = float("nan") if r["wape"] is None else r["wape"]
    with tracked_run(settings, job, f"forecast {as_of}", params):
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        if backtest is not None:
            with tempfile.TemporaryDirectory() as tmp:
                backtest.where("level != 'series'").toPandas().to_csv(Path(tmp) / "backtest_levels.csv", index=False)
                mlflow.log_artifact(str(Path(tmp) / "backtest_levels.csv"))
    return metrics


def build(inputs: ForecastInputs, cfg: ForecastSettings, as_of: date, stage: Callable[..., None]) -> Outputs:
    """Every forecast table's slice for ``as_of`` (none when units cannot be forecast and revenue
    is not asked for)."""
    grain = GRAINS[cfg.grain]
    measures = [m for m in cfg.measures if m != "units" or inputs.items is not None]
    if not measures:
        stage("no order lines: units cannot be forecast and revenue is not asked for: nothing to do")
        return Outputs(as_of=as_of)
    last = last_complete_period(as_of, grain)
    history = demand_history(demand_lines(inputs.orders, inputs.items, inputs.products, as_of), grain, measures,
                             as_of).localCheckpoint()
    tables = demand(history, cfg, ds_of(last, grain), stage)
    if cfg.customer_base:
        purch = purchases(inputs.orders, inputs.items, inputs.graph, as_of).localCheckpoint()
        weeks = cfg.horizon if grain.period == "week" else max(1, cfg.horizon // 7)
        cb = customer_base(inputs.clv, stage, purch, as_of, weeks, cfg.customer_base_level)
        if cb is not None:
            tables[Tables.CUSTOMER_BASE_FORECAST] = cb
    shaped = {t: conform(df.select(F.lit(as_of).alias("as_of_date"), F.lit(cfg.grain).alias("grain"), "*"), t)
              for t, df in tables.items()}
    # customer_base_forecast gained its bounds, demand_forecast its interval and forecast_series its
    # interval factors after their first versions
    return Outputs(as_of=as_of, slices=shaped, add_columns=frozenset(
        {Tables.CUSTOMER_BASE_FORECAST, Tables.DEMAND_FORECAST, Tables.FORECAST_SERIES}))
