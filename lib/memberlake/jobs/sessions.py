"""sessions: silver events -> sessions (incremental, late data, re-stitched to persons).

Each run takes the silver event batches not yet sessionized; on-time events re-sessionize only
the visitors they touch (``memberlake.sessions.build``), late ones go to ``late_events``;
``--full`` rebuilds everything from silver, late events included. Every run then re-attributes
sessions to the current person_id of the identity graph (a cookie later tied to a member takes
its earlier sessions along), and, when silver orders changed, brings the revenue of converted
sessions up to date (a late order, a return). A run with no new batch, an unchanged graph and
unchanged orders changes nothing.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.contract import BATCH_ID, Tables
from memberlake.jobs.common import job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.runs import same_version, unchanged
from memberlake.sessions.update import analytics, order_values, update
from memberlake.settings import Settings

NAME = "sessions"
HELP = "Sessionize clickstream events incrementally (late data, re-stitching to persons)."


@dataclass(frozen=True)
class Options:
    full: bool = False
    skip_analytics: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="rebuild all sessions from silver (late events included)")
    parser.add_argument("--skip-analytics", action="store_true",
                        help="update sessions only; behaviour, funnel, paths and attribution at a later run")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    # skip_analytics is a parameter: a later full run must not take "nothing to do" as done.
    params = {**settings.sessions.model_dump(mode="json"), "skip_analytics": opts.skip_analytics}
    with job_context(spark, settings, NAME, params) as ctx:
        full = opts.full or not ctx.exists(Tables.SESSIONS)
        silver, graph, values = ctx.silver("events", required=True), ctx.graph(), order_values(ctx)
        previous = ctx.last_success()
        # Every table at the version the last successful run read (which sessionized every batch
        # there was): nothing to do, found without reading the batch column of every event.
        if not full and unchanged(previous, ctx.run):
            ctx.stage("no new event batch and identity unchanged: nothing to do")
            return
        done = (ctx.lake.read(Tables.SESSIONS_BATCHES).select(BATCH_ID) if ctx.exists(Tables.SESSIONS_BATCHES)
                else spark.createDataFrame([], f"{BATCH_ID} string"))
        batches = [r[0] for r in silver.join(done, BATCH_ID, "left_anti").select(BATCH_ID).distinct().collect()]
        # The graph this run reads is the one the last run attached: no session can have moved.
        graph_unchanged = not full and same_version(previous, ctx.run, Tables.IDENTITY_GRAPH)
        orders_unchanged = all(same_version(previous, ctx.run, Tables.silver(t)) for t in ("orders", "order_items"))
        update(ctx, full, values, graph, silver, batches, graph_unchanged, orders_unchanged)
        if not opts.skip_analytics:
            ctx.publish(analytics(ctx))


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
