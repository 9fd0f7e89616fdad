"""RFM figures, scores, cells and named segments per person as of a date.

Figures (over purchases up to the as-of date, see ``purchases``):
- recency_days: as-of date minus the last purchase date (0 = bought on the as-of day);
- frequency: distinct orders, lifetime; frequency_window: orders in the last ``window_days``
  days (as-of day included);
- monetary: net revenue, lifetime; monetary_window likewise within the window;
- first/last order date, tenure_days (as-of minus first order), average order value, and mean
  inter-purchase days = (last - first) / (orders - 1), null for a single order.
Scores use lifetime frequency and monetary (``ranks.scores``: ties share a score).
"""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.value.ranks import multi_scores


def rfm_figures(purchases: DataFrame, as_of: date, window_days: int) -> DataFrame:
    start = F.lit(as_of - timedelta(days=window_days - 1))
    in_window = F.col("order_date") >= start
    per = purchases.groupBy("person_id").agg(
        F.min("order_date").alias("first_order_date"),
        F.max("order_date").alias("last_order_date"),
        F.count(F.lit(1)).alias("frequency"),          # one purchase row per order
        F.count(F.when(in_window, 1)).alias("frequency_window"),
        F.sum("net").alias("monetary"),
        F.coalesce(F.sum(F.when(in_window, F.col("net"))), F.lit(0.0)).alias("monetary_window"),
    )
    as_of_col = F.lit(as_of)
    span = F.datediff("last_order_date", "first_order_date")
    return per.select(
        "person_id",
        F.datediff(as_of_col, "last_order_date").alias("recency_days"),
        "frequency", "frequency_window",
        F.round("monetary", 2).alias("monetary"), F.round("monetary_window", 2).alias("monetary_window"),
        "first_order_date", "last_order_date",
        F.datediff(as_of_col, "first_order_date").alias("tenure_days"),
        F.round(F.col("monetary") / F.col("frequency"), 2).alias("avg_order_value"),
        F.when(F.col("frequency") > 1, span / (F.col("frequency") - 1)).alias("mean_interpurchase_days"),
    )


def rfm_scores(figures: DataFrame, buckets: int = 5) -> DataFrame:
    # Each score reads the figures three times (quantiles, range totals, join): compute them once.
    figures = figures.localCheckpoint()
    # Recency and frequency have few distinct values by construction (at most the days of
    # history; distinct order counts at most sqrt(2 x orders)): their value counts and
    # monetary's quantile cuts come from one job.
    scored = multi_scores(figures, [("recency_days", "r_score", True), ("frequency", "f_score", False)],
                          [("monetary", "m_score", False)], buckets)
    return scored.withColumn("rfm_cell", F.concat(F.col("r_score").cast("string"), F.col("f_score").cast("string"),
                                                  F.col("m_score").cast("string")))


def segment(rules: list[tuple[str, str]], fallback: str = "Other") -> Column:
    """First matching rule's name; rules are SQL over r_score, f_score, m_score (and figures)."""
    expr = F.lit(fallback)
    for name, rule in reversed(rules):
        expr = F.when(F.expr(rule), F.lit(name)).otherwise(expr)
    return expr


def migration(previous: DataFrame, current: DataFrame, from_date: date | None, to_date: date) -> DataFrame:
    """Persons moving between segments from the previous snapshot to this one ('(new)' if absent)."""
    prev = previous.select("person_id", F.col("segment").alias("from_segment"))
    joined = current.select("person_id", F.col("segment").alias("to_segment")).join(prev, "person_id", "full")
    return joined.groupBy(
        F.coalesce("from_segment", F.lit("(new)")).alias("from_segment"),
        F.coalesce("to_segment", F.lit("(gone)")).alias("to_segment"),
    ).agg(F.count(F.lit(1)).alias("persons")).select(
        F.lit(from_date).cast("date").alias("from_date"), F.lit(to_date).alias("as_of_date"), "*")
