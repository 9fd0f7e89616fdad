"""Landing files into bronze and quarantine, file by file, through the job context's writer.

A file's rows replace any earlier rows of the same file (``replaceWhere`` on ``_source_file``);
``ingest_files`` lists every file taken, with its size, modification time and row counts. The
job records the files of all entities in one MERGE at its end: a run's writes are published
together (``memberlake.io.commits``), so a per-entity MERGE bought no safety and cost a Delta
commit per entity.
"""
from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import unquote

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import ENTITIES, SOURCE_FILE, Tables
from memberlake.ingest.validate import REASONS, accepted, rejected, validate, with_lineage
from memberlake.io.delta import sql_in
from memberlake.io.landing import LandingFile, read_entity
from memberlake.ops.context import JobContext

log = logging.getLogger(__name__)

FILES_SCHEMA = T.StructType([
    T.StructField("entity", T.StringType()),
    T.StructField("path", T.StringType()),
    T.StructField("size", T.LongType()),
    T.StructField("modified", T.LongType()),
    T.StructField("format", T.StringType()),
    T.StructField("batch_id", T.StringType()),
    T.StructField("ingested_at", T.TimestampType()),
    T.StructField("rows_read", T.LongType()),
    T.StructField("rows_accepted", T.LongType()),
    T.StructField("rows_quarantined", T.LongType()),
])


def known_files(ctx: JobContext) -> set[tuple[str, str, int, int]]:
    """(entity, path, size, modified) of ingested files: one row per file, not per record."""
    if not ctx.exists(Tables.INGEST_FILES):
        return set()
    rows = ctx.lake.read(Tables.INGEST_FILES).select("entity", "path", "size", "modified").collect()
    return {(r.entity, r.path, r.size, r.modified) for r in rows}


def ingest_entity(ctx: JobContext, entity_name: str, files: list[LandingFile],
                  ingested_at: datetime) -> tuple[list[tuple], list[tuple]]:
    """Ingest ``files`` of one entity; returns its ``ingest_files`` rows and dq metric tuples."""
    spark, lake, settings, run = ctx.spark, ctx.lake, ctx.settings, ctx.run
    entity = ENTITIES[entity_name]
    raw = read_entity(spark, files, entity, settings.landing)
    validated: DataFrame = (
        with_lineage(raw, entity, run.run_id, ingested_at)
        .transform(lambda df: validate(df, entity, settings.landing))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        per_file = (validated.groupBy(SOURCE_FILE)
                    .agg(F.count(F.lit(1)).alias("rows"), F.sum((F.size(REASONS) == 0).cast("long")).alias("ok"))
                    .collect())
        data_paths = [r[SOURCE_FILE] for r in per_file]
        predicate = sql_in(SOURCE_FILE, data_paths + [f.path for f in files])
        bronze = Tables.bronze(entity_name)
        lake.replace_where(accepted(validated, entity), bronze, predicate)
        lake.replace_where(rejected(validated, entity), Tables.QUARANTINE,
                           f"stage = 'ingest' AND entity = '{entity_name}' AND {predicate}")
    finally:
        validated.unpersist()
    counts = {unquote(r[SOURCE_FILE]): (int(r["rows"]), int(r["ok"])) for r in per_file}
    file_rows = []
    for f in files:
        rows, ok = counts.get(f.path, counts.get(unquote(f.path), (0, 0)))
        file_rows.append((entity_name, f.path, f.size, f.modified, f.format, run.run_id, ingested_at, rows, ok, rows - ok))
    total = sum(r[7] for r in file_rows)
    ok_total = sum(r[8] for r in file_rows)
    run.record_read(f"landing:{entity_name}", total)
    run.record_write(bronze, ok_total, lake.version(bronze))
    run.record_write(Tables.QUARANTINE, total - ok_total, lake.version(Tables.QUARANTINE))
    run.stage("%s: %d files, %d rows in, %d accepted, %d quarantined",
              entity_name, len(files), total, ok_total, total - ok_total)
    return file_rows, [(bronze, "rows_in", None, total), (bronze, "rows_accepted", None, ok_total),
                       (bronze, "rows_quarantined", None, total - ok_total)]


def record_files(ctx: JobContext, file_rows: list[tuple]) -> None:
    """Upsert the run's ingested files (one row per file, keyed by entity and path)."""
    if file_rows:
        ctx.lake.merge(ctx.spark.createDataFrame(file_rows, FILES_SCHEMA), Tables.INGEST_FILES,
                       keys=["entity", "path"])
