"""Erasing a person: the right-to-be-forgotten request carried out across the lakehouse.

The request resolves through the identity graph to persons and identifiers; every table with a
matching column loses their rows (through the writer, so a failed run leaves nothing half done
for readers), deletion vectors are purged and the touched tables VACUUMed. The request is kept in
``forget_requests`` with keyed hashes of the identifiers, never the identifiers themselves.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from memberlake.contract import Tables
from memberlake.io.delta import Lakehouse
from memberlake.ops.context import JobContext
from memberlake.ops.parallel import run_each
from memberlake.privacy.forget import Footprint, Matcher, footprint, request_seeds
from memberlake.privacy.pseudonymise import Pseudonymiser, holds_raw_pii
from memberlake.settings import Settings

log = logging.getLogger(__name__)

# Tables that keep no personal rows (run records, audit of requests, file lists, aggregates).
UNTOUCHED = {Tables.JOB_RUNS, Tables.FORGET_REQUESTS, Tables.INGEST_FILES, Tables.DQ_METRICS}
REQUESTS_SCHEMA = T.StructType([
    T.StructField("request_id", T.StringType()),
    T.StructField("requested_at", T.TimestampType()),
    T.StructField("identifiers", T.ArrayType(T.StringType())),
    T.StructField("person_ids", T.ArrayType(T.StringType())),
    T.StructField("rows_deleted", T.MapType(T.StringType(), T.LongType())),
    T.StructField("vacuum_retention_hours", T.DoubleType()),
])


def purge_and_vacuum(spark: SparkSession, lake: Lakehouse, tables: list[str], hours: float, workers: int = 1) -> None:
    """Rewrite files that only hide rows (deletion vectors), then drop unreferenced files, for
    each of ``tables`` (``workers`` at a time)."""
    def purge(table: str) -> None:
        spark.sql(f"REORG TABLE {lake.sql_name(table)} APPLY (PURGE)")
        lake.for_update(table).vacuum(hours)

    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    spark.conf.set(check, "false")  # retention below Delta's 7-day guard is the request's point
    try:
        run_each(spark, tables, purge, workers)
    finally:
        spark.conf.set(check, previous)


def request_footprint(spark: SparkSession, lake: Lakehouse, settings: Settings, pseud: Pseudonymiser,
                      requested: dict[str, list[str]]) -> Footprint:
    """The persons, member records, contacts and orders a request reaches (through the graph,
    the id map and the person's orders, whose lines go too)."""
    seeds = request_seeds(spark, requested, pseud, settings.clean)
    graph = lake.read(Tables.IDENTITY_GRAPH) if lake.exists(Tables.IDENTITY_GRAPH) else None
    id_map = lake.read(Tables.PERSON_ID_MAP) if lake.exists(Tables.PERSON_ID_MAP) else None
    fp = footprint(graph, id_map, seeds)
    matcher = Matcher(fp, pseud, settings.clean)
    for table in (Tables.silver("orders"), Tables.bronze("orders")):  # the person's orders, for their lines
        if lake.exists(table):
            orders = lake.read(table)
            cond = matcher.condition(orders, hashed_contacts=False)
            if cond is not None:
                fp.order_ids |= {r.order_id for r in orders.where(cond).select("order_id").distinct().collect()
                                 if r.order_id is not None}
    return fp


def _digest(pseud: Pseudonymiser, kind: str, value: str) -> str:
    """Keyed hash of a requested identifier for the audit table (person ids are kept as they are)."""
    if kind == "person_id":
        return value
    import hashlib
    import hmac

    return hmac.new(pseud.key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def erase(ctx: JobContext, requested: dict[str, list[str]], request_id: str, vacuum: bool) -> dict[str, int]:
    """Delete the request's footprint from every table; purge and VACUUM the touched ones (with
    ``vacuum``); record the request in ``forget_requests``. Returns rows deleted per table."""
    spark, lake, settings, run = ctx.spark, ctx.lake, ctx.settings, ctx.run
    hours = settings.privacy.forget_vacuum_hours
    pseud = Pseudonymiser.from_settings(settings, spark)
    fp = request_footprint(spark, lake, settings, pseud, requested)
    run.stage("request %s: %d persons, %d member records, %d orders", request_id, len(fp.person_ids),
              len(fp.member_keys), len(fp.order_ids))
    matcher = Matcher(fp, pseud, settings.clean)

    def erase_from(table: str) -> int:
        """Rows deleted from ``table``: rolled back to its published state first (a table only a
        failed run wrote is searched too), then searched."""
        lake.for_update(table)
        if not lake.exists(table):
            return 0
        df = lake.read(table)
        cond = matcher.condition(df, hashed_contacts=not holds_raw_pii(table))
        if cond is None:
            return 0
        n = df.where(cond).count()
        if n:
            lake.delete(table, cond)
            run.record_write(table, n, lake.version(table))
        return n

    # Every table on storage, side by side (spark.concurrent_jobs): tables are independent.
    tables = [t for t in lake.table_names(published_only=False) if t not in UNTOUCHED]
    counts = run_each(spark, tables, erase_from, settings.spark.concurrent_jobs)
    deleted = {t: n for t, n in zip(tables, counts, strict=True) if n}
    run.stage("deleted %d rows from %d tables: %s", sum(deleted.values()), len(deleted), deleted)
    if vacuum:
        purge_and_vacuum(spark, lake, list(deleted), hours, settings.spark.concurrent_jobs)
        run.stage("vacuumed %d tables with %.1f h retention", len(deleted), hours)
    identifiers = sorted(f"{kind}:{_digest(pseud, kind, v)}" for kind, values in requested.items() for v in values)
    record = (request_id, datetime.now(timezone.utc), identifiers, sorted(fp.person_ids), deleted,
              float(hours) if vacuum else None)
    lake.append(spark.createDataFrame([record], REQUESTS_SCHEMA), Tables.FORGET_REQUESTS)
    return deleted
