"""clean: bronze -> silver (typed, standardised, one row per natural key) + clean-stage quarantine.

Incremental by ingest batch: a bronze batch is processed once (``clean_batches`` records it),
its rows are standardised, rows breaking a business rule are quarantined, the rest are reduced
to the latest row per key and MERGEd into silver, where a row only replaces an older one. So a
re-run on the same input changes nothing. ``--full`` rebuilds silver from all of bronze (after a
rule change).
"""
from __future__ import annotations

import argparse
import logging
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.clean.entities import RAW, REASONS, VERSION, is_newer, latest_per_key, standardise
from memberlake.contract import BATCH_ID, ENTITIES, FLAGS, INGESTED_AT, RECORD_HASH, SOURCE_FILE, Entity, Tables
from memberlake.io.delta import Lakehouse, sql_in
from memberlake.jobs.common import add_entities_argument, check_entities, job_main
from memberlake.ops.quality import Metric, metrics_frame, profile
from memberlake.ops.runs import Run, recorded_run
from memberlake.settings import Settings

NAME = "clean"
HELP = "Standardise and deduplicate bronze into silver Delta tables (incremental by batch)."
log = logging.getLogger(__name__)

BATCHES_SCHEMA = T.StructType([
    T.StructField("entity", T.StringType()),
    T.StructField("batch_id", T.StringType()),
    T.StructField("run_id", T.StringType()),
    T.StructField("cleaned_at", T.TimestampType()),
])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_entities_argument(parser)
    parser.add_argument("--full", action="store_true", help="rebuild silver from all of bronze")


def silver_rows(standardised: DataFrame, entity: Entity) -> DataFrame:
    """Accepted rows, one per key, in silver's column order."""
    good = standardised.where(F.size(REASONS) == 0)
    return latest_per_key(good, list(entity.key)).select(
        *entity.silver_column_names, FLAGS, VERSION, SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH
    )


def quarantine_rows(standardised: DataFrame, entity: Entity) -> DataFrame:
    return standardised.where(F.size(REASONS) > 0).select(
        F.lit(entity.name).alias("entity"),
        F.lit(NAME).alias("stage"),
        F.col(RAW).alias("raw_record"),
        F.col(REASONS).alias("reasons"),
        SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH,
    )


def _pending(spark: SparkSession, lake: Lakehouse, entity: str, full: bool) -> DataFrame:
    bronze = lake.read(spark, Tables.bronze(entity))
    if full or not lake.exists(spark, Tables.CLEAN_BATCHES):
        return bronze
    done = lake.read(spark, Tables.CLEAN_BATCHES).where(F.col("entity") == entity).select(F.col("batch_id").alias(BATCH_ID))
    return bronze.join(done, on=BATCH_ID, how="left_anti")


def clean_entity(spark: SparkSession, lake: Lakehouse, settings: Settings, run: Run,
                 entity_name: str, full: bool) -> list[Metric]:
    """Clean the pending bronze batches of one entity; returns its dq metrics."""
    entity = ENTITIES[entity_name]
    bronze_name, silver_name = Tables.bronze(entity_name), Tables.silver(entity_name)
    run.record_read(bronze_name, version=lake.version(spark, bronze_name))
    pending = _pending(spark, lake, entity_name, full)
    standardised = standardise(pending, entity, settings.clean, settings.landing).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        per_batch = (standardised.groupBy(BATCH_ID)
                     .agg(F.count(F.lit(1)).alias("rows"), F.sum((F.size(REASONS) > 0).cast("long")).alias("bad"))
                     .collect())
        if not per_batch:
            run.stage("%s: no new bronze batches", entity_name)
            return []
        batches = sorted(r[BATCH_ID] for r in per_batch)
        run.stage("%s: standardised %d rows", entity_name, sum(r["rows"] for r in per_batch))
        rows_in, bad = sum(r["rows"] for r in per_batch), sum(r["bad"] for r in per_batch)
        scope = f"stage = '{NAME}' AND entity = '{entity_name}'"
        if not full:
            scope += " AND " + sql_in(BATCH_ID, batches)
        lake.replace_where(quarantine_rows(standardised, entity), Tables.QUARANTINE, scope)
        run.stage("%s: quarantine written", entity_name)
        rows = silver_rows(standardised, entity)
        if full:
            lake.overwrite(rows, silver_name)
        else:
            lake.merge(rows, silver_name, keys=list(entity.key), update_condition=is_newer(), add_columns=True)
            redelivered(spark, lake, run, settings, entity, standardised, batches)
        run.stage("%s: silver %s", entity_name, "overwritten" if full else "merged")
        accepted = standardised.where(F.size(REASONS) == 0)
        metrics = profile(accepted, silver_name, list(entity.key), entity.column_names)
    finally:
        standardised.unpersist()
    now = datetime.now(timezone.utc)
    done = spark.createDataFrame([(entity_name, b, run.run_id, now) for b in batches], BATCHES_SCHEMA)
    if full:  # batches seen before are recorded already
        lake.merge(done, Tables.CLEAN_BATCHES, keys=["entity", "batch_id"], insert_only=True)
    else:
        lake.append(done, Tables.CLEAN_BATCHES)
    run.record_read(bronze_name, rows_in)
    run.record_write(silver_name, rows_in - bad, lake.version(spark, silver_name))
    run.record_write(Tables.QUARANTINE, bad, lake.version(spark, Tables.QUARANTINE))
    total = lake.read(spark, silver_name).count()  # answered from the Delta log
    run.stage("%s: %d bronze rows in %d batches, %d quarantined; silver now %d rows",
              entity_name, rows_in, len(batches), bad, total)
    return [(silver_name, "rows_in", None, rows_in), (silver_name, "rows_quarantined", None, bad),
            (silver_name, "rows_total", None, total)] + metrics


def redelivered(spark: SparkSession, lake: Lakehouse, run: Run, settings: Settings, entity: Entity,
                pending: DataFrame, batches: list[str]) -> None:
    """A file delivered again replaces its earlier contribution end to end.

    Ingest replaced the file's rows in bronze; here, the silver rows that came from its earlier
    delivery are rebuilt from bronze as it is now: a key the new file no longer has falls back to
    another file's row, or leaves silver; the earlier delivery's clean-stage quarantine rows go.
    Only files of the pending batches that silver holds from another batch are touched.
    """
    files = [r[0] for r in pending.select(SOURCE_FILE).distinct().collect()]   # one row per file
    silver_name, keys = Tables.silver(entity.name), list(entity.key)
    earlier = (lake.read(spark, silver_name).where(sql_in(SOURCE_FILE, files))
               .where(~F.col(BATCH_ID).isin(*batches)).select(*keys).distinct().localCheckpoint())
    if not files or earlier.limit(1).count() == 0:
        return
    bronze = lake.read(spark, Tables.bronze(entity.name)).join(earlier, keys, "left_semi")
    rebuilt = silver_rows(standardise(bronze, entity, settings.clean, settings.landing), entity)
    gone = earlier.join(rebuilt.select(*keys), keys, "left_anti")
    lake.apply_changes(rebuilt, gone, silver_name, keys)
    stale = ((F.col("stage") == NAME) & (F.col("entity") == entity.name) & F.col(SOURCE_FILE).isin(*files)
             & ~F.col(BATCH_ID).isin(*batches))
    quarantine = lake.read(spark, Tables.QUARANTINE)
    if quarantine.where(stale).limit(1).count():
        lake.delete(spark, Tables.QUARANTINE, stale)
    run.stage("%s: %d files delivered again: %d keys rebuilt from bronze, %d left silver", entity.name,
              len(files), earlier.count(), gone.count())


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    check_entities(args.entities, settings)
    lake = Lakehouse.from_settings(settings)
    with recorded_run(spark, lake, NAME, {"entities": args.entities, "full": args.full},
                      monitoring=settings.monitoring) as run_:
        metrics: list[Metric] = []
        for entity_name in args.entities:
            if not lake.exists(spark, Tables.bronze(entity_name)):
                run_.stage("%s: no bronze table (entity absent), skipped", entity_name)
                continue
            metrics += clean_entity(spark, lake, settings, run_, entity_name, args.full)
        if metrics:
            frame = metrics_frame(spark, run_.run_id, NAME, metrics, datetime.now(timezone.utc))
            lake.append(frame, Tables.DQ_METRICS)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
