"""Exact quantile scores without a global window.

A naive score (NTILE over one window of every person) moves all rows into one partition. Here
the score of a value depends only on how many persons have a strictly smaller value:

    score = 1 + floor(buckets x n_below / n)

so equal values always get the same score (ties never split across scores), the rule is
deterministic, and a population smaller than the number of buckets still gets scores from 1 up.
The count is exact and parallel: rows are cut into ordered value ranges at approximate
quantiles, range totals are summed on the driver (a few dozen numbers), and inside each range
``rank() - 1`` is the number of smaller values (one window partitioned by range, no join).
Columns with few distinct values (recency in days, order counts) take a shortcut: their value
counts are summed on the driver and broadcast back. ``multi_scores`` gathers what the driver
needs for several columns (value counts, quantile cuts, distinct-value estimates) in one job.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

RANGES = 64
SMALL = 20_000


Spec = tuple[str, str, bool]          # (column, output column, descending)


def _key(column: str, descending: bool):
    return F.col(column) * (-1 if descending else 1)


def _join_counts(df: DataFrame, spec: Spec, counts: list[tuple[float, int]], buckets: int) -> DataFrame:
    """``df`` plus the score of ``spec`` from its (signed value, count) pairs."""
    column, out, descending = spec
    n = sum(c for _, c in counts)
    sign = -1 if descending else 1
    table, below = [], 0
    for key, count in sorted(counts):
        table.append((key * sign, 1 + buckets * below // n))
        below += count
    # Matched on the value cast to double, as it was counted (exact for counts and days, and the
    # same cast on both sides for decimals).
    lookup = df.sparkSession.createDataFrame(table or [(None, None)], f"_v double, `{out}` int")
    joined = df.join(F.broadcast(lookup.where(F.col("_v").isNotNull())), F.col(column).cast("double") == F.col("_v"), "left")
    return joined.select(*df.columns, out)


def _range_scores(df: DataFrame, spec: Spec, cuts: list[float], buckets: int) -> DataFrame:
    """``df`` plus the score of ``spec``, ranks counted inside value ranges cut at ``cuts``."""
    column, out, descending = spec
    keyed = df.withColumn("_key", _key(column, descending))
    present = F.col("_key").isNotNull()
    bucket = F.lit(0)
    for i, cut in enumerate(sorted(set(cuts))):
        bucket = F.when(F.col("_key") > F.lit(cut), F.lit(i + 1)).otherwise(bucket)
    ranged = keyed.withColumn("_r", F.when(present, bucket))
    totals = sorted((r["_r"], r["count"]) for r in ranged.where(present).groupBy("_r").count().collect())
    offset, running = F.lit(0), 0
    for rng, total in totals:
        offset = F.when(F.col("_r") == rng, F.lit(running)).otherwise(offset)
        running += total
    # rank() - 1 counts the rows with a strictly smaller value inside the range; ties never
    # straddle ranges because ranges are cut by value.
    below = offset + F.rank().over(Window.partitionBy("_r").orderBy("_key")) - 1
    score = (F.lit(1) + F.floor(F.lit(buckets) * below / F.lit(max(running, 1)))).cast("int")
    return ranged.withColumn(out, F.when(present, score)).drop("_key", "_r")


def multi_scores(df: DataFrame, counted: list[Spec], ranged: list[Spec], buckets: int = 5,
                 ranges: int = RANGES) -> DataFrame:
    """``df`` plus a score per spec, everything the driver needs gathered in one job.

    ``counted``: columns known to have few distinct values (their value counts are collected);
    ``ranged``: any column (its quantile cuts and distinct-value estimate are collected, and a
    column that turns out to have at most ``SMALL`` values takes the counting path after all).
    """
    fractions = [i / ranges for i in range(1, ranges)]
    parts = [df.where(F.col(c).isNotNull()).groupBy(F.lit(i).alias("_i"), _key(c, d).cast("double").alias("_v")).count()
             for i, (c, _, d) in enumerate(counted)]
    for j, (c, _, d) in enumerate(ranged):
        planned = df.agg(F.percentile_approx(_key(c, d).cast("double"), fractions, 1000).alias("_q"),
                         F.approx_count_distinct(c).alias("count"))
        parts.append(planned.select(F.lit(len(counted) + j).alias("_i"), F.explode_outer("_q").alias("_v"), "count"))
    rows = reduce(DataFrame.unionByName, parts).collect() if parts else []
    for i, spec in enumerate(counted):
        df = _join_counts(df, spec, [(r["_v"], r["count"]) for r in rows if r["_i"] == i], buckets)
    for j, spec in enumerate(ranged):
        mine = [r for r in rows if r["_i"] == len(counted) + j]
        if mine and mine[0]["count"] <= SMALL:
            df = multi_scores(df, [spec], [], buckets)
        else:
            df = _range_scores(df, spec, [r["_v"] for r in mine if r["_v"] is not None], buckets)
    return df


def scores(df: DataFrame, column: str, out: str, buckets: int = 5, descending: bool = False,
           ranges: int = RANGES) -> DataFrame:
    """``df`` plus ``out`` in 1..buckets (null for a null value); ``descending`` scores small values high."""
    return multi_scores(df, [], [(column, out, descending)], buckets, ranges)
