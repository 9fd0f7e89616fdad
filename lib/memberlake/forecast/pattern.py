"""What each series is: its demand pattern, and whether it can be backtested, fitted or not at all.

Demand pattern (Syntetos, Boylan & Croston 2005), over the series' whole history:
ADI = periods / periods with demand (average inter-demand interval), CV² = squared coefficient
of variation of the non-zero demand sizes. ADI < 1.32 and CV² < 0.49: smooth; ADI < 1.32 and
CV² ≥ 0.49: erratic; ADI ≥ 1.32 and CV² < 0.49: intermittent; both above: lumpy. A week with
negative net demand counts as a week without demand here.

Status, in order: ``skipped`` (no demand at all, fewer than 2 periods, or dormant: no demand in
the last ``dormant_periods``), ``fallback`` (too short for the backtest: fewer than ``min_train``
periods before its first cutoff; it gets ``fallback_model``, unscored), else ``backtest``.
``seasonal``: at least a season and two periods before the last cutoff, so seasonal models and
the seasonal-naive baseline can be fitted; such a series is backtested on the windows whose
cutoff has that much history before it (every candidate on the same windows).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ADI_CUT = 1.32
CV2_CUT = 0.49
# A seasonal model needs a season and this many periods more before a cutoff.
SEASON_EXTRA = 2


def pattern(adi: Column, cv2: Column) -> Column:
    return (F.when(adi.isNull(), F.lit(None))
            .when(adi < ADI_CUT, F.when(cv2 < CV2_CUT, "smooth").otherwise("erratic"))
            .otherwise(F.when(cv2 < CV2_CUT, "intermittent").otherwise("lumpy")))


def profile(history: DataFrame, last_ds: int, span: int, season: int, min_train: int,
            dormant_periods: int, horizon: int | None = None) -> DataFrame:
    """Per (measure, series_id): periods, demand periods, ADI, CV², pattern, status, reason,
    seasonal, and the family of candidate models (``continuous`` or ``intermittent``).

    ``span`` = horizon + (windows - 1) x step: the periods the backtest holds out before the
    last complete period ``last_ds``; ``horizon`` (default: ``span``) those after the last cutoff.
    """
    demand = F.col("y") > 0
    stats = history.groupBy("measure", "series_id").agg(
        F.max("parent").alias("parent"),
        F.count(F.lit(1)).alias("periods"),
        F.sum(demand.cast("int")).alias("demand_periods"),
        F.max(F.when(demand, F.col("ds"))).alias("last_demand_ds"),
        F.avg(F.when(demand, F.col("y"))).alias("_mean"),
        F.var_pop(F.when(demand, F.col("y"))).alias("_var"),
        F.sum("y").alias("total"),
        F.min("y").alias("min_y"),
    )
    adi = F.when(F.col("demand_periods") > 0, F.col("periods") / F.col("demand_periods"))
    cv2 = F.when(F.col("demand_periods") > 0, F.coalesce(F.col("_var"), F.lit(0.0)) / F.col("_mean") ** 2)
    train = F.col("periods") - F.lit(span)
    skip = (F.when(F.col("demand_periods") == 0, "no demand in the history")
            .when(F.col("periods") < 2, "fewer than 2 periods of history")
            .when(F.col("last_demand_ds") <= F.lit(last_ds - dormant_periods),
                  F.lit(f"dormant: no demand in the last {dormant_periods} periods")))
    short = F.when(train < min_train, F.format_string(
        f"%d periods of history: a backtest needs {min_train} before its first cutoff plus {span} held out; "
        "fallback model", F.col("periods")))
    status = F.when(skip.isNotNull(), "skipped").when(short.isNotNull(), "fallback").otherwise("backtest")
    reason = F.coalesce(skip, short)
    return stats.select(
        "measure", "series_id", "parent", "periods", "demand_periods", "total", "min_y",
        adi.alias("adi"), cv2.alias("cv2"), pattern(adi, cv2).alias("pattern"),
        status.alias("status"), reason.alias("reason"),
        (F.col("periods") - F.lit(horizon or span) >= F.lit(season + SEASON_EXTRA)).alias("seasonal"),
        F.when(adi >= ADI_CUT, "intermittent").otherwise("continuous").alias("family"),
    )
