"""Exact quantile scores without a global window or a per-row rank.

A naive score (NTILE over one window of every person) moves all rows into one partition. Here
the score of a value depends only on how many values are strictly smaller (``below``):

    score = 1 + floor(buckets x below / n)

so equal values always get the same score (ties never split across scores), the rule is
deterministic, and a population smaller than the number of buckets still gets scores from 1 up.

The score only changes where ``below`` crosses ``m_k = ceil(k x n / buckets)``, k = 1..buckets-1,
and ``below(x) >= m`` holds exactly when x is greater than the m-th smallest value. So

    score(x) = 1 + #{k : x > v[m_k - 1]}      (v sorted ascending, 0-based)

needs just ``buckets - 1`` exact order statistics per column, found in three small jobs for all
columns at once: approximate quantiles cut the values into ranges, the rows per range are
counted, and inside the few ranges holding a wanted position the values are numbered. The
scores are then plain comparisons with those thresholds: no join, no window over every row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

RANGES = 64


@dataclass(frozen=True)
class Spec:
    column: str
    out: str
    descending: bool = False


def _key(spec: Spec) -> Column:
    """The sort key: the value, negated when small values score high."""
    value = F.col(spec.column).cast("double")
    return -value if spec.descending else value


def _range_of(key: Column, cuts: list[float]) -> Column:
    """Index of ``key``'s range: how many cuts lie below it (cuts sorted, distinct)."""
    if not cuts:
        return F.lit(0)
    return F.size(F.filter(F.array(*[F.lit(float(c)) for c in cuts]), lambda c: c < key))


def thresholds(df: DataFrame, specs: list[Spec], buckets: int = 5, ranges: int = RANGES) -> dict[str, list[float]]:
    """Per spec, the order statistics v[m_k - 1] (k = 1..buckets-1) of its non-null keys."""
    keys = df.select(*[_key(s).alias(f"_k{i}") for i, s in enumerate(specs)])
    names = [f"_k{i}" for i in range(len(specs))]
    probs = [i / ranges for i in range(1, ranges)]
    cuts = [sorted(set(c)) for c in keys.approxQuantile(names, probs, 0.01)]
    # one row per (spec, range, key) present: the spec index, its range and its key
    long = keys.select(F.explode(F.array(*[
        F.struct(F.lit(i).alias("s"), _range_of(F.col(n), cuts[i]).alias("r"), F.col(n).alias("k"))
        for i, n in enumerate(names)])).alias("x")).select("x.*").where(F.col("k").isNotNull())
    totals: dict[int, dict[int, int]] = {}
    for row in long.groupBy("s", "r").count().collect():        # at most len(specs) x ranges rows
        totals.setdefault(row["s"], {})[row["r"]] = row["count"]
    wanted: dict[tuple[int, int], dict[int, list[int]]] = {}      # (spec, range) -> {position in range: [k]}
    for i in range(len(specs)):
        counts = totals.get(i, {})
        n = sum(counts.values())
        if not n:
            continue
        starts, running = {}, 0
        for r in sorted(counts):
            starts[r] = running
            running += counts[r]
        for k in range(1, buckets):
            position = math.ceil(k * n / buckets) - 1             # 0-based index of v[m_k - 1]
            r = max(r for r in starts if starts[r] <= position)
            wanted.setdefault((i, r), {}).setdefault(position - starts[r] + 1, []).append(k)
    found: dict[int, dict[int, float]] = {}
    if wanted:
        inside = reduce(lambda a, b: a | b, [(F.col("s") == s) & (F.col("r") == r) for s, r in wanted])
        numbered = long.where(inside).select(
            "s", "r", "k", F.row_number().over(Window.partitionBy("s", "r").orderBy("k")).alias("pos"))
        pairs = reduce(lambda a, b: a | b, [(F.col("s") == s) & (F.col("r") == r) & F.col("pos").isin(list(p))
                                            for (s, r), p in wanted.items()])
        for row in numbered.where(pairs).collect():              # at most len(specs) x (buckets - 1) rows
            for k in wanted[(row["s"], row["r"])][row["pos"]]:
                found.setdefault(row["s"], {})[k] = row["k"]
    return {s.out: [found[i][k] for k in range(1, buckets)] if i in found else [] for i, s in enumerate(specs)}


def scores_many(df: DataFrame, specs: list[Spec], buckets: int = 5, ranges: int = RANGES) -> DataFrame:
    """``df`` plus each spec's score column in 1..buckets (null for a null value)."""
    cut = thresholds(df, specs, buckets, ranges)
    out = []
    for spec in specs:
        key = _key(spec)
        above = reduce(lambda a, b: a + b, [(key > F.lit(t)).cast("int") for t in cut[spec.out]], F.lit(0))
        out.append(F.when(key.isNotNull(), F.lit(1) + above).cast("int").alias(spec.out))
    return df.select("*", *out)


def scores(df: DataFrame, column: str, out: str, buckets: int = 5, descending: bool = False,
           ranges: int = RANGES) -> DataFrame:
    """``df`` plus ``out`` in 1..buckets (null for a null value); ``descending`` scores small values high."""
    return scores_many(df, [Spec(column, out, descending)], buckets, ranges)
