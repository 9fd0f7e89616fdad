"""Exact quantile scores without a global window.

A naive score (NTILE over one window of every person) moves all rows into one partition. Here
the score of a value depends only on how many persons have a strictly smaller value:

    score = 1 + floor(buckets x n_below / n)

so equal values always get the same score (ties never split across scores), the rule is
deterministic, and a population smaller than the number of buckets still gets scores from 1 up.
``n_below`` is computed exactly and in parallel: distinct values are cut into ordered ranges at
approximate quantiles, range totals are summed on the driver (a few dozen numbers), and the
running count inside each range is a window partitioned by range. Columns with few distinct
values (recency in days, order counts) take a shortcut: their value counts are summed on the
driver and broadcast.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

RANGES = 64
SMALL = 20_000


def n_below(values: DataFrame, column: str, ranges: int = RANGES) -> DataFrame:
    """(column, n_below, n) for each distinct non-null value: persons with a strictly smaller value."""
    counts = values.where(F.col(column).isNotNull()).groupBy(column).agg(F.count(F.lit(1)).alias("_c")).localCheckpoint()
    distinct = counts.count()
    if distinct <= SMALL:
        # Few distinct values (days of recency, order counts): the running count is a few
        # thousand numbers; compute it on the driver and broadcast it back.
        rows = sorted((r[0], r[1]) for r in counts.collect())
        below, running = [], 0
        for value, count in rows:
            below.append((value, running))
            running += count
        dtype = counts.schema[column].dataType.simpleString()
        table = values.sparkSession.createDataFrame(below, f"`{column}` {dtype}, n_below long")
        return F.broadcast(table.select(column, "n_below", F.lit(running).alias("n")))
    cuts = sorted(set(counts.approxQuantile(column, [i / ranges for i in range(1, ranges)], 0.001)))
    bucket = F.lit(0)
    for i, cut in enumerate(cuts):
        bucket = F.when(F.col(column) > F.lit(cut), F.lit(i + 1)).otherwise(bucket)
    ranged = counts.withColumn("_r", bucket)
    totals = sorted((r["_r"], r["t"]) for r in ranged.groupBy("_r").agg(F.sum("_c").alias("t")).collect())
    offsets, running = {}, 0
    for rng, total in totals:
        offsets[rng], running = running, running + total
    offset = F.lit(0)
    for rng, value in offsets.items():
        offset = F.when(F.col("_r") == rng, F.lit(value)).otherwise(offset)
    inside = Window.partitionBy("_r").orderBy(column).rowsBetween(Window.unboundedPreceding, -1)
    return ranged.select(column, (offset + F.coalesce(F.sum("_c").over(inside), F.lit(0))).alias("n_below"),
                         F.lit(running).alias("n"))


def scores(df: DataFrame, column: str, out: str, buckets: int = 5, descending: bool = False) -> DataFrame:
    """``df`` plus ``out`` in 1..buckets; ``descending`` scores small values high (recency)."""
    key = F.col(column) * (-1 if descending else 1)
    keyed = df.withColumn("_key", key)
    ranks = n_below(keyed.select("_key"), "_key")
    score = (F.lit(1) + F.floor(F.lit(buckets) * F.col("n_below") / F.col("n"))).cast("int")
    return keyed.join(ranks.select("_key", score.alias(out)), "_key", "left").drop("_key")
