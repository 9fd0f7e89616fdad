"""The forecast job's demand step on a tiny daily history: statuses, outputs, hierarchy, cutoffs."""
from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from memberlake.errors import InputError
from memberlake.forecast.build import cutoffs, demand, with_horizon
from memberlake.settings import ForecastBacktestSettings, ForecastSettings, Settings


def test_cutoffs_roll_back_from_the_last_period_and_add_a_season_earlier():
    cfg = ForecastSettings(horizon=13)
    assert cutoffs(200, cfg) == [148, 161, 174, 187]          # 200 - 52, then 200 - 13 - 26, -13, -0
    other = ForecastSettings(horizon=13, backtest=ForecastBacktestSettings(windows=2, step=5, season_window=False))
    assert cutoffs(200, other) == [182, 187]


def test_horizon_weeks_overrides_the_setting():
    assert with_horizon(Settings().forecast, 4).horizon == 4
    assert with_horizon(Settings().forecast, None).horizon == 13
    with pytest.raises(InputError, match="--horizon-weeks 0"):
        with_horizon(Settings().forecast, 0)


@pytest.mark.extended   # ~7 s; the default keeps the weekly grain
def test_demand_on_a_daily_grain_lists_every_series(spark):
    rng = np.random.default_rng(3)
    last = 20000
    rows = [("units", "web", None, last - 59 + i, float(rng.poisson(20))) for i in range(60)]
    rows += [("units", "store", None, last - 4 + i, 3.0) for i in range(5)]                 # new: fallback
    rows += [("units", "phone", None, last - 59 + i, 2.0 if i < 3 else 0.0) for i in range(60)]   # dormant
    history = spark.createDataFrame(rows, "measure string, series_id string, parent string, ds int, y double")
    cfg = ForecastSettings(grain="channel_day", horizon=7, dormant_periods=30)
    said: list[str] = []
    out = demand(history, cfg, last, lambda msg, *args: said.append(msg % args))
    status = {r.series_id: (r.status, r.model) for r in out["forecast_series"].collect()}
    factors = {r.series_id: (r.interval_factor_80, r.interval_factor_95) for r in out["forecast_series"].collect()}
    assert all(f is not None and f > 0 for f in factors["web"]) and factors["store"] == factors["phone"] == (None, None)
    assert status["web"][0] == "backtest" and status["web"][1] is not None
    assert status["store"] == ("fallback", "HistoricAverage")
    assert status["phone"] == ("skipped", None)
    fc = out["demand_forecast"]
    per = {(r.level, r.series_id): r.n for r in fc.groupBy("level", "series_id").agg(F.count(F.lit(1)).alias("n")).collect()}
    assert per == {("series", "web"): 7, ("series", "store"): 7, ("total", "total"): 7}
    # web has 3 windows x 7 = 21 backtest days (>= 19): calibrated; store, a fallback, keeps its own
    how = {(r.level, r.series_id, r.interval) for r in fc.select("level", "series_id", "interval").distinct().collect()}
    assert how == {("series", "web", "backtest"), ("series", "store", "model"), ("total", "total", "sum")}
    assert any(line.startswith("bounds calibrated on the backtest for 1 of 1 backtested series") for line in said)
    steps = sorted(r.step for r in fc.where("level = 'total'").select("step").collect())
    assert steps == list(range(1, 8))
    total = fc.groupBy("period").agg(F.sum(F.when(F.col("level") == "series", F.col("forecast"))).alias("s"),
                                     F.sum(F.when(F.col("level") == "total", F.col("forecast"))).alias("t")).collect()
    assert all(abs(r.s - r.t) < 1e-9 for r in total)
    backtest = out["forecast_backtest"]
    assert backtest.where("level = 'series' AND series_id = 'web' AND chosen").count() == 1
    assert {r.model for r in backtest.where("level = 'total'").collect()} == {"bottom_up", "baseline"}
    # three rolling windows of 7 days; the season window (7 days back) is the last of them
    assert backtest.where("series_id = 'web' AND model = 'Naive'").first().windows == 3
    # forecast.intervals=model: the models' own bounds, no factors
    own = demand(history, cfg.model_copy(update={"intervals": "model"}), last, lambda *a: None)
    assert {r.interval for r in own["demand_forecast"].where("level = 'series'").collect()} == {"model"}
    assert own["forecast_series"].where("interval_factor_80 IS NOT NULL OR interval_factor_95 IS NOT NULL").count() == 0
