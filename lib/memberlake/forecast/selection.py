"""Backtest scores, the model chosen per series, and forecasts that add up the hierarchy.

Per series and model, over the rolling-origin windows: MAE, MASE (MAE over the in-sample MAE of
the seasonal-naive forecast — naive for a series without a season of history — on the periods up
to the last cutoff), WAPE (sum |error| / sum |actual|), bias (sum error / sum |actual|, positive =
over-forecast) and the share of actuals inside the 80% and 95% intervals. The chosen model has the
lowest backtest MAE (ties: the order in :data:`memberlake.forecast.models.ORDER`), or is the
pinned one where the series has it.

Hierarchy, bottom-up: a parent's (category, when the series are finer) and the total's point
forecast is the sum of its series' chosen forecasts, so every level adds up exactly. Their
intervals assume independent series errors (half-widths add in quadrature): narrower than the
truth when series move together. Their backtest compares the sum of the chosen models with the
sum of the baselines (seasonal naive where a series has a season, naive otherwise).
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.forecast.models import ORDER, VALUES

KEYS = ["measure", "series_id"]
BOUNDS = tuple(VALUES[1:])   # lo_80, hi_80, lo_95, hi_95


def rank(model: Column) -> Column:
    return F.coalesce(F.array_position(F.array(*[F.lit(m) for m in ORDER]), model), F.lit(len(ORDER) + 1))


def clipped(out: DataFrame, profile: DataFrame) -> DataFrame:
    """Forecasts and bounds at or above 0 for series that never had negative demand."""
    nonneg = profile.select(*KEYS, (F.col("min_y") >= 0).alias("_nonneg"))
    return out.join(nonneg, KEYS).select(
        *[c for c in out.columns if c not in ("forecast", *BOUNDS)],
        *[F.when(F.col("_nonneg"), F.greatest(F.col(c), F.lit(0.0))).otherwise(F.col(c)).alias(c)
          for c in ("forecast", *BOUNDS)])


def _scores(cv: DataFrame, keys: list[str]) -> DataFrame:
    error = F.col("forecast") - F.col("y")
    inside = {lv: F.when(F.col(f"lo_{lv}").isNotNull() & F.col(f"hi_{lv}").isNotNull(),
                         F.col("y").between(F.col(f"lo_{lv}"), F.col(f"hi_{lv}")).cast("double")) for lv in (80, 95)}
    actual = F.sum(F.abs("y"))
    return cv.groupBy(*keys).agg(
        F.countDistinct("window").cast("int").alias("windows"), F.count(F.lit(1)).alias("periods"),
        F.avg(F.abs(error)).alias("mae"),
        F.when(actual > 0, F.sum(F.abs(error)) / actual).alias("wape"),
        F.when(actual > 0, F.sum(error) / actual).alias("bias"),
        F.avg(inside[80]).alias("coverage_80"), F.avg(inside[95]).alias("coverage_95"))


def naive_scale(history: DataFrame, keys: list[str], scale_end: int, season: int, seasonal: Column) -> DataFrame:
    """Per series: the in-sample MAE of the seasonal-naive (``seasonal``) or naive forecast up to
    ``scale_end``, the MASE denominator (null when it is 0: a constant series)."""
    w = Window.partitionBy(*keys).orderBy("ds")
    lagged = history.where(F.col("ds") <= scale_end).select(
        *keys, "ds", "y", seasonal.alias("_seasonal"),
        F.lag("y", 1).over(w).alias("_lag1"), F.lag("y", season).over(w).alias("_lagm"))
    diff = F.abs(F.col("y") - F.when(F.col("_seasonal"), F.col("_lagm")).otherwise(F.col("_lag1")))
    return lagged.groupBy(*keys).agg(F.avg(diff).alias("_scale")).select(
        *keys, F.when(F.col("_scale") > 0, F.col("_scale")).alias("scale"))


def series_scores(out: DataFrame, history: DataFrame, profile: DataFrame, scale_end: int, season: int) -> DataFrame:
    """Backtest scores per (measure, series_id, model)."""
    cv = out.where(F.col("window") > 0).join(history.select(*KEYS, "ds", "y"), [*KEYS, "ds"])
    scale = naive_scale(history.join(profile.select(*KEYS, "seasonal"), KEYS), KEYS, scale_end, season,
                        F.col("seasonal"))
    return _scores(cv, [*KEYS, "model"]).join(scale, KEYS, "left").withColumn(
        "mase", F.col("mae") / F.col("scale")).drop("scale")


def choose(scores: DataFrame, profile: DataFrame, fallback: str, pinned: str | None = None) -> DataFrame:
    """(measure, series_id, model, baseline) per fitted series."""
    best = scores.groupBy(*KEYS).agg(
        F.min_by("model", F.struct(F.round("mae", 9), rank(F.col("model")))).alias("best"),
        F.max((F.col("model") == F.lit(pinned)) if pinned else F.lit(False)).alias("has_pinned"))
    picked = F.when(F.col("has_pinned"), F.lit(pinned)).otherwise(F.col("best")) if pinned else F.col("best")
    backtested = best.select(*KEYS, picked.alias("model"))
    fell_back = profile.where(F.col("status") == "fallback").select(*KEYS, F.lit(fallback).alias("model"))
    baseline = F.when(F.col("seasonal"), "SeasonalNaive").otherwise("Naive")
    return backtested.unionByName(fell_back).join(
        profile.select(*KEYS, "status", baseline.alias("baseline")), KEYS)


def _aggregate(rows: DataFrame, level_key: Column, by: list[str]) -> DataFrame:
    """Sum forecasts (and actuals when present) over series; bounds by half-widths in quadrature."""
    complete = F.count(F.lit(1)) == F.count("hi_95")
    half = {c: F.sqrt(F.sum((F.col(c) - F.col("forecast")) ** 2)) for c in BOUNDS}
    total = F.sum("forecast")
    aggs = [total.alias("forecast"),
            *[F.when(complete, total + (half[c] if c.startswith("hi") else -half[c])).alias(c) for c in BOUNDS]]
    if "y" in rows.columns:
        aggs.append(F.sum("y").alias("y"))
    return rows.withColumn("series_id", level_key).groupBy("measure", "series_id", *by).agg(*aggs)


def levels(parent: bool) -> list[tuple[str, Column]]:
    """The levels above the series: (name, the column naming a row's node)."""
    return ([("parent", F.col("parent"))] if parent else []) + [("total", F.lit("total"))]


def interval_factors(out: DataFrame, chosen: DataFrame, history: DataFrame) -> DataFrame:
    """Per series and level L (80, 95): the factor ``f_L`` that scales its chosen model's own
    interval to cover its backtest errors (split conformal on a scaled score). Each backtest
    period's score is its error over the model's half-width on the error's side, (y - ŷ)/(hi - ŷ)
    above the forecast and (ŷ - y)/(ŷ - lo) below; ``f_L`` is the k-th smallest of the n scores,
    k = ⌈(n + 1)·L⌉, null where k > n (too few periods) or the k-th is not finite. A series gets
    both factors or neither, so that its two levels' bounds come from one method.

    Why scaled and not absolute errors: the model's width carries what the backtest cannot see,
    a level that grew since (the errors of a smaller past are too small), a peak ahead (a
    multiplicative season widens it), the step ahead; the backtest says by how much the model's
    own widths were too narrow or too wide. A calibrated model gets factors near 1."""
    cv = (out.where(F.col("window") > 0).join(chosen.select(*KEYS, "model"), [*KEYS, "model"])
          .join(history.select(*KEYS, "ds", "y"), [*KEYS, "ds"]))
    error = F.col("y") - F.col("forecast")

    def score(level: int) -> Column:
        half = F.when(error >= 0, F.col(f"hi_{level}") - F.col("forecast")).otherwise(F.col("forecast") - F.col(f"lo_{level}"))
        return (F.when(error == 0, F.lit(0.0))
                .when(half > 0, F.abs(error) / half)
                .when(half.isNotNull(), F.lit(float("inf"))))   # an error the model gave no width for

    scores = cv.groupBy(*KEYS).agg(*[F.sort_array(F.collect_list(score(lv))).alias(f"_s{lv}") for lv in (80, 95)])

    def factor(level: int) -> Column:
        s, n = F.col(f"_s{level}"), F.size(f"_s{level}")
        k = F.ceil((n + 1) * F.lit(level / 100)).cast("int")
        kth = F.element_at(s, k)
        return F.when((k <= n) & (kth < F.lit(float("inf"))), kth)

    f80, f95 = factor(80), factor(95)
    both = f80.isNotNull() & f95.isNotNull()
    return scores.select(*KEYS, F.when(both, f80).alias("f_80"), F.when(both, f95).alias("f_95"))


def calibrated(series: DataFrame, factors: DataFrame, profile: DataFrame) -> DataFrame:
    """``series`` (window-0 rows of chosen models) with the model's half-widths on each side scaled
    by the series' backtest factors where it has both levels' and the model gave bounds
    (``interval`` = ``backtest``), else the model's own (``model``); lower bounds at or above 0
    for series that never had negative demand."""
    joined = series.join(factors, KEYS, "left").join(
        profile.select(*KEYS, (F.col("min_y") >= 0).alias("_nonneg")), KEYS, "left")
    both = (F.col("f_80").isNotNull() & F.col("f_95").isNotNull()
            & F.col("lo_80").isNotNull() & F.col("hi_95").isNotNull())   # both levels from one method
    centre = F.col("forecast")
    moved = {c: centre + F.col(f"f_{c[-2:]}") * (F.col(c) - centre) for c in BOUNDS}
    # the 95% interval never inside the 80% one (each level's factor is estimated on its own)
    moved["lo_95"], moved["hi_95"] = F.least(moved["lo_95"], moved["lo_80"]), F.greatest(moved["hi_95"], moved["hi_80"])
    bounds = []
    for c in BOUNDS:
        value = moved[c]
        if c.startswith("lo"):
            value = F.when(F.col("_nonneg"), F.greatest(value, F.lit(0.0))).otherwise(value)
        bounds.append(F.when(both, value).otherwise(F.col(c)).alias(c))
    method = F.when(both, "backtest").otherwise("model")
    return joined.select(*[c for c in series.columns if c not in BOUNDS and c != "interval"], *bounds,
                         method.alias("interval"))


def forecasts(out: DataFrame, chosen: DataFrame, profile: DataFrame, parent: bool,
              factors: DataFrame | None = None) -> DataFrame:
    """The chosen forecasts per series (level ``series``) and their bottom-up sums per level;
    with ``factors`` (:func:`interval_factors`) the series' bounds are calibrated on the backtest."""
    mine = out.where(F.col("window") == 0).join(chosen.select(*KEYS, "model"), [*KEYS, "model"]).join(
        profile.select(*KEYS, "parent", "pattern"), KEYS).withColumn("interval", F.lit("model"))
    if factors is not None:
        mine = calibrated(mine, factors, profile)
    series = mine.select(F.lit("series").alias("level"), *KEYS, "parent", "ds", "forecast", *BOUNDS, "model",
                         "pattern", "interval")
    above = [_aggregate(mine, key, ["ds"]).select(
        F.lit(name).alias("level"), *KEYS, F.lit(None).cast("string").alias("parent"), "ds", "forecast", *BOUNDS,
        F.lit("bottom_up").alias("model"), F.lit(None).cast("string").alias("pattern"),
        F.lit("sum").alias("interval"))
        for name, key in levels(parent)]
    return reduce(DataFrame.unionByName, [series, *above])


def level_scores(out: DataFrame, chosen: DataFrame, history: DataFrame, profile: DataFrame, parent: bool,
                 scale_end: int, season: int) -> DataFrame:
    """Backtest scores of each level above the series: the bottom-up sum of the chosen models
    (``bottom_up``) and of the baselines (``baseline``), over the backtested series."""
    picks = chosen.where(F.col("status") == "backtest").select(
        *KEYS, F.explode(F.array(
            F.struct(F.col("model").alias("model"), F.lit("bottom_up").alias("as")),
            F.struct(F.col("baseline").alias("model"), F.lit("baseline").alias("as")))).alias("p")
    ).select(*KEYS, "p.model", "p.as")
    cv = (out.where(F.col("window") > 0).join(picks, [*KEYS, "model"])
          .join(history.select(*KEYS, "ds", "y", "parent"), [*KEYS, "ds"]))
    backtested = profile.where(F.col("status") == "backtest").select(*KEYS, "seasonal")
    parts = []
    for name, key in levels(parent):
        summed = _aggregate(cv, key, ["as", "window", "ds"])
        hist = (history.join(backtested, KEYS).withColumn("series_id", key)
                .groupBy("measure", "series_id", "ds").agg(F.sum("y").alias("y"), F.min("seasonal").alias("seasonal")))
        node_seasonal = F.min("seasonal").over(Window.partitionBy("measure", "series_id"))
        scale = naive_scale(hist, KEYS, scale_end, season, node_seasonal)
        parts.append(_scores(summed.withColumnRenamed("as", "model"), [*KEYS, "model"]).join(scale, KEYS, "left")
                     .select(F.lit(name).alias("level"), "*", (F.col("mae") / F.col("scale")).alias("mase"))
                     .drop("scale"))
    return reduce(DataFrame.unionByName, parts)


def history_levels(history: DataFrame, parent: bool) -> DataFrame:
    """The demand history per series (level ``series``) and summed per level above, for
    actual-versus-forecast views (``demand_history``)."""
    series = history.select(F.lit("series").alias("level"), *KEYS, "parent", "ds", "y")
    above = [history.withColumn("series_id", key).groupBy("measure", "series_id", "ds").agg(F.sum("y").alias("y"))
             .select(F.lit(name).alias("level"), *KEYS, F.lit(None).cast("string").alias("parent"), "ds", "y")
             for name, key in levels(parent)]
    return reduce(DataFrame.unionByName, [series, *above])
