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
counts are summed on the driver and broadcast back.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType

RANGES = 64
SMALL = 20_000


def few_values(df: DataFrame, columns: list[str]) -> dict[str, bool]:
    """Which columns have at most ``SMALL`` distinct values (one pass over ``df`` for all of them)."""
    row = df.agg(*[F.approx_count_distinct(c).alias(c) for c in columns]).first()
    return {c: row[c] <= SMALL for c in columns}


def count_scores(df: DataFrame, specs: list[tuple[str, str, bool]], buckets: int = 5) -> DataFrame:
    """``df`` plus a score per (column, out, descending) in ``specs``, for columns with few values.

    The value counts of every column come from one job (a union of small aggregations); the
    running counts are summed on the driver and joined back as broadcast lookups.
    """
    if not specs:
        return df
    parts = [df.where(F.col(c).isNotNull()).groupBy(F.lit(i).alias("_i"), F.col(c).cast("double").alias("_v")).count()
             for i, (c, _, _) in enumerate(specs)]
    rows = reduce(DataFrame.unionByName, parts).collect()
    for i, (column, out, descending) in enumerate(specs):
        counts = sorted(((r["_v"], r["count"]) for r in rows if r["_i"] == i), reverse=descending)
        n = sum(c for _, c in counts)
        field = df.schema[column].dataType
        as_value = int if isinstance(field, IntegralType) else float
        table, below = [], 0
        for value, count in counts:
            table.append((as_value(value), 1 + buckets * below // n))
            below += count
        lookup = df.sparkSession.createDataFrame(table or [(None, None)], f"`{column}` {field.simpleString()}, `{out}` int")
        joined = df.join(F.broadcast(lookup.where(F.col(column).isNotNull())), column, "left")
        df = joined.select(*df.columns, out)        # the join moved the key column first
    return df


def scores(df: DataFrame, column: str, out: str, buckets: int = 5, descending: bool = False,
           ranges: int = RANGES, small: bool | None = None) -> DataFrame:
    """``df`` plus ``out`` in 1..buckets (null for a null value); ``descending`` scores small values high.

    ``small``: whether the column has few distinct values (see ``few_values``); measured if None.
    """
    if small is None:
        small = few_values(df, [column])[column]
    if small:
        return count_scores(df, [(column, out, descending)], buckets)
    keyed = df.withColumn("_key", F.col(column) * (-1 if descending else 1))
    present = F.col("_key").isNotNull()
    cuts = sorted(set(keyed.approxQuantile("_key", [i / ranges for i in range(1, ranges)], 0.001)))
    bucket = F.lit(0)
    for i, cut in enumerate(cuts):
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
