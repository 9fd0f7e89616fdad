"""Session rows from sessionized events: timing, pages, traffic source, channel, conversions.

- page views: events whose type is in ``page_view_types``; conversions: ``conversion_types``;
- bounce: exactly one page view and no conversion; engaged: two or more page views, a duration
  of at least 10 seconds, or a conversion;
- traffic source, medium, campaign and referrer come from the session's first event; the channel
  is the first matching rule of ``sessions.channels`` over the lower-cased source, medium and
  referrer;
- orders counts the distinct order ids the session's conversion events name; revenue is the
  net value of those of them that are purchases (cancelled and returned orders add nothing).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.settings import SessionSettings

SESSION_KEY = ["anonymous_id", "session_id"]


def channel(rules: list[dict[str, str]]) -> Column:
    """First matching channel rule over lower-cased ``source``, ``medium``, ``referrer``."""
    expr = F.lit("other")
    for rule in reversed(rules):
        expr = F.when(F.expr(rule["rule"]), F.lit(rule["name"])).otherwise(expr)
    return expr


def session_rows(sessionized: DataFrame, cfg: SessionSettings) -> DataFrame:
    """One row per session (without person and revenue; see ``with_revenue``)."""
    order = F.struct(F.col("event_ts"), F.col("event_id"))
    is_view = F.col("event_type").isin(*cfg.page_view_types)
    is_conv = F.col("event_type").isin(*cfg.conversion_types)
    first = F.min_by(F.struct("utm_source", "utm_medium", "utm_campaign", "referrer", "page_url", "device_id"), order)
    agg = sessionized.groupBy(*SESSION_KEY).agg(
        F.min("visit_start").alias("visit_start"),
        F.min("session_start").alias("session_start"),
        F.max("event_ts").alias("session_end"),
        F.count(F.lit(1)).alias("events"),
        F.count(F.when(is_view, 1)).alias("page_views"),
        first.alias("_first"),
        F.max_by(F.when(is_view, F.col("page_url")), F.when(is_view, order)).alias("exit_page"),
        F.min_by(F.when(is_view, F.col("page_url")), F.when(is_view, order)).alias("landing_page"),
        F.max_by(F.col("member_id"), F.when(F.col("member_id").isNotNull(), order)).alias("member_id"),
        F.max(is_conv).alias("converted"),
        F.array_sort(F.collect_set(F.when(is_conv, F.col("order_id")))).alias("order_ids"),
        F.array_sort(F.collect_set("event_type")).alias("event_types"),
        F.array_sort(F.collect_list(F.when(is_view, F.struct(F.col("event_ts").alias("t"), F.col("event_id").alias("e"),
                                                             F.col("page_url").alias("url"))))).alias("_views"),
    )
    duration = F.col("session_end").cast("double") - F.col("session_start").cast("double")
    lower = {k: F.lower(F.col(f"_first.{v}")) for k, v in
             (("source", "utm_source"), ("medium", "utm_medium"), ("referrer", "referrer"))}
    framed = agg.select(
        "*", duration.alias("duration_s"),
        F.col("_first.utm_source").alias("source"), F.col("_first.utm_medium").alias("medium"),
        F.col("_first.utm_campaign").alias("campaign"), F.col("_first.referrer").alias("referrer"),
        F.col("_first.device_id").alias("device_id"),
    )
    with_channel = framed.select("*", *[v.alias(f"_l_{k}") for k, v in lower.items()])
    chan = channel(cfg.channels)
    # rules are written over source/medium/referrer: evaluate them on the lower-cased copies
    renamed = with_channel.select(
        *[c for c in with_channel.columns if c not in ("source", "medium", "referrer") and not c.startswith("_l_")
          and c != "_first"],
        F.col("_l_source").alias("source"), F.col("_l_medium").alias("medium"), F.col("_l_referrer").alias("referrer"),
        F.col("source").alias("_source"), F.col("medium").alias("_medium"), F.col("referrer").alias("_referrer"),
    ).withColumn("channel", chan)
    converted = F.coalesce(F.col("converted"), F.lit(False))
    return renamed.select(
        "session_id", "anonymous_id", "device_id", "member_id", "visit_start", "session_start", "session_end",
        "duration_s", "events", "page_views", "landing_page", "exit_page",
        F.col("_source").alias("source"), F.col("_medium").alias("medium"), "campaign",
        F.col("_referrer").alias("referrer"), "channel",
        converted.alias("converted"), "order_ids", "event_types",
        F.slice(F.col("_views.url"), 1, cfg.path_pages).alias("path"),
        ((F.col("page_views") == 1) & ~converted).alias("bounce"),
        ((F.col("page_views") >= 2) | (F.col("duration_s") >= 10) | converted).alias("engaged"),
    )


def with_revenue(sessions: DataFrame, order_values: DataFrame) -> DataFrame:
    """``orders`` and ``revenue`` from (order_id, net) of the orders each session converted."""
    exploded = sessions.select("session_id", F.explode("order_ids").alias("order_id"))
    revenue = exploded.join(order_values, "order_id", "inner").groupBy("session_id").agg(
        F.count(F.lit(1)).alias("orders"), F.sum("net").alias("revenue"))
    return sessions.join(revenue.drop("orders"), "session_id", "left").select(
        *sessions.columns, F.size("order_ids").alias("orders"),
        F.coalesce("revenue", F.lit(0.0)).alias("revenue"))
