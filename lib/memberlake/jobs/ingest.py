"""ingest: landing files -> bronze tables + quarantine, file by file, idempotently.

A file is new when its (path, size, modification time) is not yet in ``ingest_files``. Its rows
replace any earlier rows of the same file (``replaceWhere`` on ``_source_file``), so re-running
on the same files adds nothing, a changed file replaces its old rows, and a run that failed half
way is completed by the next one.
"""
from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone
from urllib.parse import unquote

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.contract import ENTITIES, SOURCE_FILE, Tables
from memberlake.ingest.validate import REASONS, accepted, rejected, validate, with_lineage
from memberlake.io.delta import Lakehouse, sql_in
from memberlake.io.landing import LandingFile, list_entity_files, read_entity
from memberlake.jobs.common import add_entities_argument, check_entities, job_main
from memberlake.ops.quality import metrics_frame
from memberlake.ops.runs import Run, recorded_run
from memberlake.settings import Settings

NAME = "ingest"
HELP = "Read new landing files into bronze Delta tables; rejected rows go to quarantine."
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_entities_argument(parser)


def _known_files(spark: SparkSession, lake: Lakehouse) -> set[tuple[str, str, int, int]]:
    """(entity, path, size, modified) of ingested files: one row per file, not per record."""
    if not lake.exists(spark, Tables.INGEST_FILES):
        return set()
    rows = lake.read(spark, Tables.INGEST_FILES).select("entity", "path", "size", "modified").collect()
    return {(r.entity, r.path, r.size, r.modified) for r in rows}


def ingest_entity(spark: SparkSession, lake: Lakehouse, settings: Settings, run: Run,
                  entity_name: str, files: list[LandingFile], ingested_at: datetime) -> list[tuple]:
    """Ingest ``files`` of one entity; returns dq metric tuples."""
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
    lake.merge(spark.createDataFrame(file_rows, FILES_SCHEMA), Tables.INGEST_FILES, keys=["entity", "path"])
    total = sum(r[7] for r in file_rows)
    ok_total = sum(r[8] for r in file_rows)
    run.record_read(f"landing:{entity_name}", total)
    run.record_write(bronze, ok_total, lake.version(spark, bronze))
    run.record_write(Tables.QUARANTINE, total - ok_total, lake.version(spark, Tables.QUARANTINE))
    run.stage("%s: %d files, %d rows in, %d accepted, %d quarantined",
              entity_name, len(files), total, ok_total, total - ok_total)
    return [(bronze, "rows_in", None, total), (bronze, "rows_accepted", None, ok_total),
            (bronze, "rows_quarantined", None, total - ok_total)]


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    settings.require("landing.path")
    check_entities(args.entities, settings)
    lake = Lakehouse.from_settings(settings)
    params = {"landing": settings.landing.path, "entities": args.entities}
    with recorded_run(spark, lake, NAME, params, monitoring=settings.monitoring) as run_:
        ingested_at = datetime.now(timezone.utc)
        known = _known_files(spark, lake)
        metrics: list[tuple] = []
        for entity_name in args.entities:
            files = list_entity_files(spark, settings.landing.path, entity_name)
            new = [f for f in files if (entity_name, f.path, f.size, f.modified) not in known]
            if not files:
                run_.stage("%s: no landing files (entity absent), skipped", entity_name)
                continue
            if not new:
                run_.stage("%s: %d files, all ingested before: nothing to do", entity_name, len(files))
                continue
            metrics += ingest_entity(spark, lake, settings, run_, entity_name, new, ingested_at)
        if metrics:
            lake.append(metrics_frame(spark, run_.run_id, NAME, metrics, ingested_at), Tables.DQ_METRICS)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
