"""forget: the right to be forgotten — delete a person from every table, then VACUUM.

``memberlake forget --email a@b.com --member-id web:123 --person-id P…`` resolves the request
through the identity graph to persons and their identifiers, deletes their rows from every
Delta table in the lakehouse (bronze, quarantine, silver, identity, sessions, profiles, scores,
recommendations: whatever has a matching column), purges deletion vectors, and VACUUMs the
touched tables with ``privacy.forget_vacuum_hours`` retention: once it has passed, the rows
cannot be read even with time travel or the change data feed. The request is recorded in
``forget_requests`` with keyed hashes of the identifiers, never the identifiers themselves.

Landing files are the source systems' copies and are not touched; delete them there (or let
their retention expire) so that a full re-ingest does not bring the person back.
"""
from __future__ import annotations

import argparse
import logging
import uuid
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from memberlake.contract import Tables
from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main
from memberlake.ops.runs import recorded_run
from memberlake.privacy.forget import Footprint, Matcher, footprint, request_seeds
from memberlake.privacy.pseudonymise import Pseudonymiser, holds_raw_pii
from memberlake.settings import Settings

NAME = "forget"
HELP = "Right to be forgotten: delete persons (by id, e-mail, phone or member id) from every table."
log = logging.getLogger(__name__)

REQUESTS_TABLE = "forget_requests"
# Tables that keep no personal rows (run records, audit of requests, file lists, aggregates).
UNTOUCHED = {Tables.JOB_RUNS, REQUESTS_TABLE, Tables.INGEST_FILES, Tables.DQ_METRICS}
REQUESTS_SCHEMA = T.StructType([
    T.StructField("request_id", T.StringType()),
    T.StructField("requested_at", T.TimestampType()),
    T.StructField("identifiers", T.ArrayType(T.StringType())),
    T.StructField("person_ids", T.ArrayType(T.StringType())),
    T.StructField("rows_deleted", T.MapType(T.StringType(), T.LongType())),
    T.StructField("vacuum_retention_hours", T.DoubleType()),
])


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--person-id", type=_list, default=[], help="comma-separated person ids")
    parser.add_argument("--email", type=_list, default=[], help="comma-separated e-mail addresses")
    parser.add_argument("--phone", type=_list, default=[], help="comma-separated phone numbers")
    parser.add_argument("--member-id", type=_list, default=[],
                        help="comma-separated member ids: source:member_id, or a bare member id")
    parser.add_argument("--request-id", help="your ticket id for the audit table (default: generated)")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="delete only; VACUUM later with `memberlake maintain` (time travel still reads the rows)")


def _requested(args: argparse.Namespace) -> dict[str, list[str]]:
    requested = {"person_id": args.person_id, "email": args.email, "phone": args.phone, "member_id": args.member_id}
    if not any(requested.values()):
        raise InputError("forget: name at least one of --person-id, --email, --phone, --member-id")
    return requested


def _purge_and_vacuum(spark: SparkSession, lake: Lakehouse, table: str, hours: float) -> None:
    """Rewrite files that only hide rows (deletion vectors), then drop unreferenced files."""
    spark.sql(f"REORG TABLE {lake.sql_name(table)} APPLY (PURGE)")
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    spark.conf.set(check, "false")  # retention below Delta's 7-day guard is the request's point
    try:
        lake.for_update(spark, table).vacuum(hours)
    finally:
        spark.conf.set(check, previous)


def _footprint(spark: SparkSession, lake: Lakehouse, settings: Settings, pseud: Pseudonymiser,
               requested: dict[str, list[str]]) -> Footprint:
    seeds = request_seeds(spark, requested, pseud, settings.clean)
    graph = lake.read(spark, "identity_graph") if lake.exists(spark, "identity_graph") else None
    id_map = lake.read(spark, "person_id_map") if lake.exists(spark, "person_id_map") else None
    fp = footprint(graph, id_map, seeds)
    matcher = Matcher(fp, pseud, settings.clean)
    for table in (Tables.silver("orders"), Tables.bronze("orders")):  # the person's orders, for their lines
        if lake.exists(spark, table):
            orders = lake.read(spark, table)
            cond = matcher.condition(orders, hashed_contacts=False)
            if cond is not None:
                fp.order_ids |= {r.order_id for r in orders.where(cond).select("order_id").distinct().collect()
                                 if r.order_id is not None}
    return fp


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    lake = Lakehouse.from_settings(settings)
    requested = _requested(args)
    request_id = args.request_id or uuid.uuid4().hex
    hours = settings.privacy.forget_vacuum_hours
    # The run record names the request, never the identifiers.
    params = {"request_id": request_id, "identifiers": sum(len(v) for v in requested.values()),
              "vacuum": not args.no_vacuum}
    with recorded_run(spark, lake, NAME, params, monitoring=settings.monitoring) as run_:
        pseud = Pseudonymiser.from_settings(settings, spark)
        fp = _footprint(spark, lake, settings, pseud, requested)
        run_.stage("request %s: %d persons, %d member records, %d orders", request_id, len(fp.person_ids),
                   len(fp.member_keys), len(fp.order_ids))
        matcher = Matcher(fp, pseud, settings.clean)
        deleted: dict[str, int] = {}
        # Every table on storage, including one that only a failed run wrote: it is rolled back
        # to its published state first, then searched.
        for table in lake.table_names(spark, published_only=False):
            if table in UNTOUCHED:
                continue
            lake.for_update(spark, table)
            if not lake.exists(spark, table):
                continue
            df = lake.read(spark, table)
            cond = matcher.condition(df, hashed_contacts=not holds_raw_pii(table))
            if cond is None:
                continue
            n = df.where(cond).count()
            if n:
                lake.delete(spark, table, cond)
                deleted[table] = n
                run_.record_write(table, n, lake.version(spark, table))
        run_.stage("deleted %d rows from %d tables: %s", sum(deleted.values()), len(deleted), deleted)
        if not args.no_vacuum:
            for table in deleted:
                _purge_and_vacuum(spark, lake, table, hours)
            run_.stage("vacuumed %d tables with %.1f h retention", len(deleted), hours)
        identifiers = sorted(f"{kind}:{_digest(pseud, kind, v)}" for kind, values in requested.items() for v in values)
        record = (request_id, datetime.now(timezone.utc), identifiers, sorted(fp.person_ids), deleted,
                  None if args.no_vacuum else float(hours))
        lake.append(spark.createDataFrame([record], REQUESTS_SCHEMA), REQUESTS_TABLE)
        return deleted


def _digest(pseud: Pseudonymiser, kind: str, value: str) -> str:
    """Keyed hash of a requested identifier for the audit table (person ids are kept as they are)."""
    if kind == "person_id":
        return value
    import hashlib
    import hmac

    return hmac.new(pseud.key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
