"""Full and incremental session builds.

Incremental rule (exact, see ``sessionize``): for each visitor touched by new on-time events,
re-sessionize from the start of the visit the earliest new event joins (a visit whose last event
is within the timeout before it, else the new event itself), replacing that visitor's sessions
from there on. Events older than the watermark (the latest event already sessionized) minus
``lateness_days`` are late: they are kept in ``late_events`` and only a full rebuild uses them.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.sessions.fields import session_rows
from memberlake.sessions.sessionize import assign_sessions
from memberlake.settings import SessionSettings

EVENT_COLUMNS = ["event_id", "event_ts", "anonymous_id", "device_id", "member_id", "event_type", "page_url",
                 "referrer", "utm_source", "utm_medium", "utm_campaign", "product_id", "order_id"]


def visitor_events(events: DataFrame) -> DataFrame:
    """Events with a visitor key in ``anonymous_id`` (cookie, else device, else member id)."""
    visitor = F.coalesce(F.col("anonymous_id"), F.concat(F.lit("device:"), F.col("device_id")),
                         F.concat(F.lit("member:"), F.col("member_id")))
    return events.select(*[visitor.alias(c) if c == "anonymous_id" else F.col(c) for c in EVENT_COLUMNS]).where(
        F.col("anonymous_id").isNotNull() & F.col("event_ts").isNotNull())


def build_sessions(events: DataFrame, cfg: SessionSettings) -> DataFrame:
    return session_rows(assign_sessions(events, cfg), cfg)


def split_late(new: DataFrame, watermark, cfg: SessionSettings) -> tuple[DataFrame, DataFrame]:
    """(on time, late) new events against the watermark (None: nothing sessionized yet)."""
    if watermark is None:
        return new, new.limit(0)
    cutoff = F.lit(watermark) - F.expr(f"INTERVAL {int(cfg.lateness_days * 86400)} SECONDS")
    late = F.col("event_ts") < cutoff
    return new.where(~late), new.where(late)


def recompute_from(on_time: DataFrame, sessions: DataFrame, cfg: SessionSettings) -> DataFrame:
    """(anonymous_id, from_ts): where each touched visitor's sessions must be rebuilt."""
    first_new = on_time.groupBy("anonymous_id").agg(F.min("event_ts").alias("first_new"))
    reach = F.expr(f"INTERVAL {int(cfg.timeout_minutes * 60)} SECONDS")
    joined = first_new.join(sessions.select("anonymous_id", "visit_start", "session_end"), "anonymous_id", "left")
    touching = F.when(F.col("session_end") >= F.col("first_new") - reach, F.col("visit_start"))
    return joined.groupBy("anonymous_id", "first_new").agg(F.min(touching).alias("visit")).select(
        "anonymous_id", F.least("first_new", F.coalesce("visit", "first_new")).alias("from_ts"))
