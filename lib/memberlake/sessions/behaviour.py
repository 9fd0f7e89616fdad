"""Behaviour analytics from sessions: per person and month, funnels, landing pages and paths."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def _mode(df: DataFrame, keys: list[str], value: str, out: str) -> DataFrame:
    """Most frequent ``value`` per ``keys``; ties go to the most recent, then the smallest."""
    counts = df.where(F.col(value).isNotNull()).groupBy(*keys, value).agg(
        F.count(F.lit(1)).alias("_c"), F.max("session_start").alias("_t"))
    order = Window.partitionBy(*keys).orderBy(F.col("_c").desc(), F.col("_t").desc(), F.col(value))
    return counts.withColumn("_n", F.row_number().over(order)).where("_n = 1").select(*keys, F.col(value).alias(out))


def most_viewed(views: DataFrame, n: int = 3) -> DataFrame:
    """(person_id, month, most_viewed_categories) from (person_id, event_ts, category) product views."""
    keyed = views.where(F.col("category").isNotNull()).withColumn("month", F.trunc(F.col("event_ts").cast("date"), "month"))
    counts = keyed.groupBy("person_id", "month", "category").agg(F.count(F.lit(1)).alias("_c"))
    order = Window.partitionBy("person_id", "month").orderBy(F.col("_c").desc(), "category")
    top = counts.withColumn("_n", F.row_number().over(order)).where(F.col("_n") <= n)
    return top.groupBy("person_id", "month").agg(F.array_sort(F.collect_list(F.struct("_n", "category"))).alias("_s")).select(
        "person_id", "month", F.col("_s.category").alias("most_viewed_categories"))


def person_behaviour(sessions: DataFrame, views: DataFrame | None = None) -> DataFrame:
    """Per person and month: sessions, active days, averages, rates and preferences.

    ``views`` (person_id, event_ts, category) of product views adds the most-viewed categories.
    """
    keyed = sessions.where(F.col("person_id").isNotNull()).withColumn(
        "month", F.trunc(F.col("session_start").cast("date"), "month")).withColumn(
        "hour", F.hour("session_start")).withColumn("weekday", F.date_format("session_start", "EEEE"))
    keys = ["person_id", "month"]
    base = keyed.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("sessions"),
        F.countDistinct(F.col("session_start").cast("date")).alias("active_days"),
        F.avg("duration_s").alias("avg_duration_s"),
        F.avg("page_views").alias("pages_per_session"),
        F.avg(F.col("bounce").cast("double")).alias("bounce_rate"),
        F.avg(F.col("converted").cast("double")).alias("conversion_rate"),
        F.sum("revenue").alias("revenue"),
    )
    for value, out in (("device_id", "preferred_device"), ("hour", "preferred_hour"), ("weekday", "preferred_weekday"),
                       ("channel", "preferred_channel")):
        base = base.join(_mode(keyed, keys, value, out), keys, "left")
    if views is not None:
        base = base.join(most_viewed(views), keys, "left")
    return base


def funnel(sessions: DataFrame, steps: list[str]) -> DataFrame:
    """Per channel, campaign and step: sessions reaching it (and every earlier step), drop-off."""
    cumulative, cols = F.lit(True), []
    for i, step in enumerate(steps):
        cumulative = cumulative & F.array_contains("event_types", step)
        cols.append(F.count(F.when(cumulative, 1)).alias(f"s{i}"))
    per = sessions.groupBy("channel", "campaign").agg(F.count(F.lit(1)).alias("sessions"), *cols)
    rows = [per.select("channel", "campaign", "sessions", F.lit(i + 1).alias("step_no"), F.lit(step).alias("step"),
                       F.col(f"s{i}").alias("reached"), (F.col(f"s{i - 1}") if i else F.col("sessions")).alias("_prev"))
            for i, step in enumerate(steps)]
    out = rows[0]
    for r in rows[1:]:
        out = out.unionByName(r)
    return out.select("channel", "campaign", "step_no", "step", "sessions", "reached",
                      F.when(F.col("_prev") > 0, 1 - F.col("reached") / F.col("_prev")).alias("drop_off"))


def top_landing_pages(sessions: DataFrame, n: int) -> DataFrame:
    counts = sessions.where(F.col("landing_page").isNotNull()).groupBy("landing_page").agg(
        F.count(F.lit(1)).alias("sessions"), F.avg(F.col("bounce").cast("double")).alias("bounce_rate"),
        F.avg(F.col("converted").cast("double")).alias("conversion_rate"))
    return counts.orderBy(F.col("sessions").desc(), "landing_page").limit(n)


def top_paths(sessions: DataFrame, n: int) -> DataFrame:
    counts = sessions.where(F.size("path") > 0).groupBy(F.concat_ws(" > ", "path").alias("path")).agg(
        F.count(F.lit(1)).alias("sessions"), F.avg(F.col("converted").cast("double")).alias("conversion_rate"))
    return counts.orderBy(F.col("sessions").desc(), "path").limit(n)
