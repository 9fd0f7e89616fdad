"""Sessionization: one visitor's events cut into sessions by documented, local rules.

Per visitor (``anonymous_id``), events in the total order (event_ts, event_id):
1. a **visit** starts at the visitor's first event and after every gap strictly longer than the
   timeout (a gap of exactly the timeout does not split);
2. inside a visit a new session also starts at local midnight (``midnight_timezone``) and, with
   ``split_on_campaign``, at an event whose utm (source, medium, campaign) is present and differs
   from the last utm present earlier in the same visit;
3. a session longer than ``max_length_hours`` is cut into pieces of that length measured from
   its first event.

Every rule looks only at events since the visit's start, so re-sessionizing a visitor from any
visit start reproduces the same sessions: that is what makes incremental runs exact. All
windows share one partitioning and ordering, so the whole computation is one sort per visitor.
``session_id`` is derived from the visitor and the session's first event, so re-runs keep ids.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from memberlake.settings import SessionSettings

ORDER = ["event_ts", "event_id"]


def _visitor_window():
    return Window.partitionBy("anonymous_id").orderBy(*ORDER)


def assign_sessions(events: DataFrame, cfg: SessionSettings) -> DataFrame:
    """``events`` (with anonymous_id, event_ts, event_id) plus visit_start, session_start, session_id."""
    w = _visitor_window()
    upto = w.rowsBetween(Window.unboundedPreceding, 0)
    before = w.rowsBetween(Window.unboundedPreceding, -1)
    ts = F.col("event_ts")
    seconds = ts.cast("double")
    prev = F.lag(seconds).over(w)
    timeout = cfg.timeout_minutes * 60
    staged = events.withColumn("_visit_new", prev.isNull() | (seconds - prev > timeout))
    staged = staged.withColumn("visit_start", F.max(F.when(F.col("_visit_new"), ts)).over(upto))
    boundary: Column = F.col("_visit_new")
    if cfg.midnight_timezone:
        local_day = F.to_date(F.from_utc_timestamp(ts, cfg.midnight_timezone))
        boundary = boundary | F.coalesce(local_day != F.lag(local_day).over(w), F.lit(False))
    if cfg.split_on_campaign:
        utm = F.when(F.coalesce("utm_source", "utm_medium", "utm_campaign").isNotNull(),
                     F.concat_ws("\u0001", F.coalesce("utm_source", F.lit("")), F.coalesce("utm_medium", F.lit("")),
                                 F.coalesce("utm_campaign", F.lit(""))))
        staged = staged.withColumn("_utm", utm).withColumn(
            "_utm_ts", F.max(F.when(F.col("_utm").isNotNull(), ts)).over(before)).withColumn(
            "_prev_utm", F.last("_utm", ignorenulls=True).over(before))
        same_visit = F.col("_utm_ts") >= F.col("visit_start")
        changed = F.col("_utm").isNotNull() & same_visit & (F.col("_utm") != F.col("_prev_utm"))
        boundary = boundary | F.coalesce(changed, F.lit(False))
    staged = staged.withColumn("_boundary", boundary)
    staged = staged.withColumn("_split_start", F.max(F.when(F.col("_boundary"), ts)).over(upto))
    piece = F.floor((seconds - F.col("_split_start").cast("double")) / (cfg.max_length_hours * 3600))
    staged = staged.withColumn("_piece", piece)
    new_session = F.col("_boundary") | (F.col("_piece") != F.lag("_piece").over(w))
    staged = staged.withColumn("_new", F.coalesce(new_session, F.lit(True)))
    staged = staged.withColumn("session_start", F.max(F.when(F.col("_new"), ts)).over(upto)).withColumn(
        "_first_id", F.last(F.when(F.col("_new"), F.col("event_id")), ignorenulls=True).over(upto))
    out = staged.select(
        *events.columns, "visit_start", "session_start",
        F.substring(F.sha2(F.concat_ws("|", "anonymous_id", F.col("session_start").cast("string"), "_first_id"), 256),
                    1, 24).alias("session_id"),
    )
    return out
