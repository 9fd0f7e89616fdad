"""The customer base, week by week: repeat purchases, active members and repeat revenue expected
from the fitted BTYD model, and the same prediction made from the calibration fit checked
against what happened.

Per person with BTYD summary (frequency x, recency t_x, age T, in days) and the transaction
model's parameters, E(t) is the expected number of purchase days in (T, T + t]; week k's
expected purchases are E(7k) - E(7(k - 1)). Summed over persons that is the model's weekly
repeat-purchase forecast (Fader, Hardie & Lee's tracking plot). Expected repeat revenue is each
person's weekly purchases times their Gamma-Gamma expected spend. Active members in week k, the
expected number of persons buying at least once, is approximated per person by
1 - exp(-expected purchases in week k): exact for a Poisson count, slightly high for the
over-dispersed BTYD counts — the backtest shows by how much. No intervals: the fitted parameters'
standard errors are not computed yet (issue 20).

Summing runs per partition (``mapInPandas``: each partition returns one row per week), so nothing
per person reaches the driver.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.btyd import MODELS

SUMS = "week int, persons bigint, expected_purchases double, expected_active double, expected_revenue double"


def weekly_expectations(summary: DataFrame, model: str, params: dict[str, float], weeks: int) -> DataFrame:
    """(week, persons, expected_purchases, expected_active, expected_revenue) for weeks 1..``weeks``
    after the summary's as-of date. ``summary`` has frequency, recency, T (days) and
    expected_value (spend per purchase; 0 when unknown)."""
    spec = MODELS[model]
    values = [params[k] for k in spec.parameters]

    def per_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        purchases, active, revenue, persons = np.zeros(weeks), np.zeros(weeks), np.zeros(weeks), 0
        for b in batches:
            if b.empty:
                continue
            x, tx, T = (b[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
            spend = b["expected_value"].fillna(0.0).to_numpy(dtype=float)
            before = np.zeros(len(b))
            for k in range(weeks):
                cumulative = np.nan_to_num(spec.expected(7.0 * (k + 1), x, tx, T, *values))
                week = np.clip(cumulative - before, 0.0, None)
                purchases[k] += week.sum()
                active[k] += (1.0 - np.exp(-week)).sum()
                revenue[k] += (week * spend).sum()
                before = cumulative
            persons += len(b)
        yield pd.DataFrame({"week": np.arange(1, weeks + 1, dtype="int32"), "persons": persons,
                            "expected_purchases": purchases, "expected_active": active, "expected_revenue": revenue})

    return (summary.select("frequency", "recency", "T", "expected_value").mapInPandas(per_partition, SUMS)
            .groupBy("week").agg(F.sum("persons").alias("persons"),
                                 *[F.sum(c).alias(c) for c in ("expected_purchases", "expected_active",
                                                               "expected_revenue")]))


def actual_weeks(purchases: DataFrame, start: date, weeks: int) -> DataFrame:
    """(week, actual_purchases, actual_active, actual_revenue) of the persons whose first purchase
    is on or before ``start``, in weeks 1..``weeks`` after it (purchase days, as BTYD counts)."""
    first = purchases.groupBy("person_id").agg(F.min("order_date").alias("_first"))
    cohort = purchases.join(first.where(F.col("_first") <= F.lit(start)), "person_id")
    later = cohort.where((F.col("order_date") > F.lit(start))
                         & (F.col("order_date") <= F.lit(start + timedelta(days=7 * weeks))))
    days = later.groupBy("person_id", "order_date").agg(F.sum("net").alias("net"))
    week = (F.floor((F.datediff("order_date", F.lit(start)) - 1) / 7) + 1).cast("int")
    return days.groupBy(week.alias("week")).agg(
        F.count(F.lit(1)).cast("double").alias("actual_purchases"),
        F.countDistinct("person_id").cast("double").alias("actual_active"),
        F.sum("net").alias("actual_revenue"))


def frame(expected: DataFrame, start: date, kind: str, model: str, actual: DataFrame | None = None) -> DataFrame:
    """Rows of ``customer_base_forecast`` (actuals null for a forecast)."""
    spark = expected.sparkSession
    if actual is None:
        actual = spark.createDataFrame([], "week int, actual_purchases double, actual_active double, "
                                           "actual_revenue double")
    return expected.join(actual, "week", "left").select(
        F.lit(kind).alias("kind"), F.lit(model).alias("model"), F.lit(start).alias("start_date"), "week",
        F.date_add(F.lit(start), ((F.col("week") - 1) * 7 + 1).cast("int")).alias("week_start"),
        "persons", "expected_purchases", "expected_active", "expected_revenue",
        *[F.coalesce(F.col(c), F.lit(0.0)).alias(c) if kind == "backtest" else F.col(c)
          for c in ("actual_purchases", "actual_active", "actual_revenue")])
