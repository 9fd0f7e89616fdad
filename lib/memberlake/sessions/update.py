"""Incremental sessionization against the ``sessions`` table, and the analytics built on it.

Unlike the snapshot areas, sessions are updated in place (MERGE of the visitors new events touch,
re-stitching, revenue refresh), so :func:`update` writes through the job context's writer; the
analytics are recomputed from the table and returned as :class:`Outputs`.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.contract import BATCH_ID, Tables
from memberlake.inputs import EVENT_KEYS, attach_person, completed, line_values, person_graph_or_empty
from memberlake.ops.context import JobContext, Outputs
from memberlake.sessions.attribution import journeys, markov, markov_attribution, rule_based
from memberlake.sessions.behaviour import funnel, person_behaviour, top_landing_pages, top_paths
from memberlake.sessions.build import build_sessions, recompute_from, split_late, visitor_events
from memberlake.sessions.fields import with_revenue

log = logging.getLogger(__name__)


def order_values(ctx: JobContext) -> DataFrame:
    """(order_id, net) of purchases, for session revenue."""
    orders = ctx.silver("orders")
    if orders is None:
        return ctx.spark.createDataFrame([], "order_id string, net double")
    items = ctx.silver("order_items")
    done = completed(orders)
    net = F.col("total_amount").cast("double")
    if items is not None:
        done = done.join(line_values(items), "order_id", "left")
        net = F.coalesce(F.col("net"), net)
    return done.select("order_id", net.alias("net"))


def with_person(sessions: DataFrame, graph: DataFrame) -> DataFrame:
    return attach_person(sessions.drop("person_id") if "person_id" in sessions.columns else sessions,
                         graph, "session_id", EVENT_KEYS)


def product_views(ctx: JobContext) -> DataFrame | None:
    """(person_id, event_ts, category) of product views, for the most-viewed categories."""
    lake = ctx.lake
    if not lake.exists(Tables.silver("products")):
        return None
    types = ctx.settings.sessions.page_view_types
    events = visitor_events(lake.read(Tables.silver("events"))).where(
        F.col("product_id").isNotNull() & F.col("event_type").isin(*types))
    graph = person_graph_or_empty(lake)
    located = attach_person(events, graph, "event_id", EVENT_KEYS)
    return located.join(lake.read(Tables.silver("products")).select("product_id", "category"), "product_id")


def analytics(ctx: JobContext) -> Outputs:
    """Behaviour, funnel, top pages and paths, attribution: recomputed from the sessions table."""
    spark, cfg = ctx.spark, ctx.settings.sessions
    sessions = ctx.lake.read(Tables.SESSIONS).localCheckpoint()
    paths = journeys(sessions, cfg.lookback_days)
    views = product_views(ctx)
    transitions, effects = markov(paths, cfg.markov_order)
    return Outputs(whole={
        Tables.PERSON_BEHAVIOUR: person_behaviour(sessions, views),
        Tables.SESSION_FUNNEL: funnel(sessions, cfg.funnel_steps),
        Tables.TOP_LANDING_PAGES: top_landing_pages(sessions, cfg.top_n),
        Tables.TOP_PATHS: top_paths(sessions, cfg.top_n),
        Tables.ATTRIBUTION: rule_based(sessions, cfg.lookback_days, cfg.time_decay_half_life_days).unionByName(
            markov_attribution(sessions, effects)),
        Tables.MARKOV_TRANSITIONS: transitions,
        Tables.MARKOV_REMOVAL_EFFECTS: spark.createDataFrame(
            effects or [("", 0.0, 0.0)], "channel string, removal_effect double, share double").where("channel != ''"),
    })


def incremental(ctx: JobContext, silver: DataFrame, new: DataFrame, graph: DataFrame, values: DataFrame) -> None:
    """Sessionize the new events: late ones to ``late_events``, the visitors the on-time ones touch
    rebuilt from the earliest session they can change (MERGE of changed, delete of gone)."""
    lake, run, cfg = ctx.lake, ctx.run, ctx.settings.sessions
    current = lake.read(Tables.SESSIONS)
    watermark = current.agg(F.max("session_end")).first()[0]
    on_time, late = split_late(visitor_events(new), watermark, cfg)
    on_time, late = on_time.localCheckpoint(), late.localCheckpoint()
    if late.count():
        lake.merge(late, Tables.LATE_EVENTS, keys=["event_id"], insert_only=True)
    # Only sessions ending within the timeout before the first new event can be touched by it.
    first_new = on_time.agg(F.min("event_ts")).first()[0]
    reach = F.lit(first_new) - F.expr(f"INTERVAL {int(cfg.timeout_minutes * 60)} SECONDS")
    near = current.where(F.col("session_end") >= reach) if first_new is not None else current.limit(0)
    scope = recompute_from(on_time, near, cfg).localCheckpoint()
    late_ids = lake.read(Tables.LATE_EVENTS).select("event_id") if lake.exists(Tables.LATE_EVENTS) else late.select("event_id")
    # No visitor is rebuilt from before the earliest from_ts: a literal bound lets Delta skip the
    # files of older events instead of reading all of silver.
    # (the text is formatted by Spark in the session time zone, where the SQL literal is read)
    earliest, earliest_text = scope.agg(F.min("from_ts"), F.date_format(F.min("from_ts"),
                                                                         "yyyy-MM-dd HH:mm:ss.SSSSSS")).first()
    since = silver.where(F.col("event_ts") >= F.lit(earliest)) if earliest is not None else silver.limit(0)
    redo = (visitor_events(since).join(F.broadcast(scope), "anonymous_id", "inner")
            .where(F.col("event_ts") >= F.col("from_ts")).drop("from_ts")
            .join(late_ids, "event_id", "left_anti"))
    rebuilt = with_person(with_revenue(build_sessions(redo, cfg), values), graph).localCheckpoint()
    # Every replaced or removed session starts at or after its visitor's from_ts >= earliest.
    recent = (current.where(F.col("session_start") >= F.lit(earliest)) if earliest is not None
              else current.limit(0))
    stale = (recent.join(F.broadcast(scope), "anonymous_id", "inner")
             .where(F.col("session_start") >= F.col("from_ts")).select("session_id")
             .join(rebuilt.select("session_id"), "session_id", "left_anti"))
    target = f"t.session_start >= TIMESTAMP'{earliest_text}'" if earliest is not None else None
    lake.apply_changes(rebuilt.select(*current.columns), stale, Tables.SESSIONS, "session_id", target_filter=target)
    run.stage("incremental: %d on-time and %d late new events; %d visitors re-sessionized, %d sessions written, "
              "%d removed", on_time.count(), late.count(), scope.count(), rebuilt.count(), stale.count())


def refresh_revenue(ctx: JobContext, values: DataFrame) -> None:
    """Bring every converted session's revenue up to date with the orders as they are now.

    A session's order ids come from its events, its revenue from silver orders: an order that
    lands after its events, or a later status change (a return), changes the revenue of a session
    that no new event touches. Only sessions with order ids are read, and only those whose
    revenue differs are rewritten; attribution follows, as it is recomputed from this table.
    """
    lake, run = ctx.lake, ctx.run
    current = lake.read(Tables.SESSIONS)
    converted = current.where(F.size("order_ids") > 0)
    fresh = with_revenue(converted.drop("orders", "revenue"), values).select(*current.columns)
    changed = (fresh.join(converted.select("session_id", F.col("revenue").alias("_old")), "session_id")
               .where(~F.col("revenue").eqNullSafe(F.col("_old"))).drop("_old").localCheckpoint())
    n = changed.count()
    if n:
        lake.merge(changed, Tables.SESSIONS, keys=["session_id"])
    run.stage("orders changed since the last run: revenue of %d sessions updated", n)


def restitch(ctx: JobContext, graph: DataFrame) -> None:
    """Move sessions whose visitor now resolves to another person (an update only where it differs)."""
    lake, run = ctx.lake, ctx.run
    current = lake.read(Tables.SESSIONS)
    fresh = with_person(current, graph).select(*current.columns)
    changed = (fresh.alias("n").join(current.select("session_id", F.col("person_id").alias("_old")), "session_id")
               .where(~F.col("person_id").eqNullSafe(F.col("_old"))).drop("_old"))
    moved = changed.localCheckpoint()
    if moved.count():
        lake.merge(moved, Tables.SESSIONS, keys=["session_id"])
    run.stage("re-stitched %d sessions to their current person", moved.count())


def update(ctx: JobContext, full: bool, values: DataFrame, graph: DataFrame, silver: DataFrame,
           batches: list[str], graph_unchanged: bool, orders_unchanged: bool) -> None:
    """Bring ``sessions`` up to date: a full rebuild, or the new ``batches`` of ``silver`` events
    incrementally; then re-stitch to current persons and refresh converted sessions' revenue."""
    spark, lake, cfg = ctx.spark, ctx.lake, ctx.settings.sessions
    if full:
        events = visitor_events(silver).localCheckpoint()
        sessions = with_person(with_revenue(build_sessions(events, cfg), values), graph).localCheckpoint()
        # Files cover narrow ranges of session_start, so an incremental MERGE, which only
        # touches recent sessions, reads and rewrites the newest files instead of all of them.
        lake.overwrite(sessions.repartitionByRange("session_start"), Tables.SESSIONS)
        lake.overwrite(events.limit(0), Tables.LATE_EVENTS)
        ctx.stage("full rebuild: %d events -> %d sessions", events.count(), sessions.count())
    else:
        # Rows of the new batches by value, so Delta skips the files of older batches.
        fresh = silver.where(F.col(BATCH_ID).isin(batches)) if batches else silver.limit(0)
        incremental(ctx, silver, fresh, graph, values)
    if batches:
        lake.append(spark.createDataFrame([(b,) for b in batches], f"{BATCH_ID} string")
                    .withColumn("sessionized_at", F.current_timestamp()), Tables.SESSIONS_BATCHES)
    if graph_unchanged:
        ctx.stage("identity graph unchanged since the last run: no session to re-stitch")
    else:
        restitch(ctx, graph)
    if not full and not orders_unchanged:
        refresh_revenue(ctx, values)
    ctx.run.record_write(Tables.SESSIONS, lake.read(Tables.SESSIONS).count(), lake.version(Tables.SESSIONS))
