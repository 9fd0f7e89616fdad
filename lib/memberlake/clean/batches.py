"""Cleaning bronze batches into silver: standardised rows MERGEd by key, rule breakers quarantined.

Incremental by ingest batch (``clean_batches`` records each one, in one write per run: a run's
writes are published together, so recording per entity bought no safety); a file delivered again
replaces its earlier contribution end to end. Writes go through the job context's writer.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from memberlake.clean.entities import RAW, REASONS, VERSION, is_newer, latest_per_key, standardise
from memberlake.contract import BATCH_ID, ENTITIES, FLAGS, INGESTED_AT, RECORD_HASH, SOURCE_FILE, Entity, Tables
from memberlake.io.delta import sql_in
from memberlake.ops.context import JobContext
from memberlake.ops.quality import Metric, profile
from memberlake.ops.runs import same_version

log = logging.getLogger(__name__)

STAGE = "clean"
BATCHES_SCHEMA = T.StructType([
    T.StructField("entity", T.StringType()),
    T.StructField("batch_id", T.StringType()),
    T.StructField("run_id", T.StringType()),
    T.StructField("cleaned_at", T.TimestampType()),
])


def silver_rows(standardised: DataFrame, entity: Entity) -> DataFrame:
    """Accepted rows, one per key, in silver's column order."""
    good = standardised.where(F.size(REASONS) == 0)
    return latest_per_key(good, list(entity.key)).select(
        *entity.silver_column_names, FLAGS, VERSION, SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH
    )


def quarantine_rows(standardised: DataFrame, entity: Entity) -> DataFrame:
    return standardised.where(F.size(REASONS) > 0).select(
        F.lit(entity.name).alias("entity"),
        F.lit(STAGE).alias("stage"),
        F.col(RAW).alias("raw_record"),
        F.col(REASONS).alias("reasons"),
        SOURCE_FILE, INGESTED_AT, BATCH_ID, RECORD_HASH,
    )


# Up to this many pending batches are read by their ids: each ingest batch writes its own files,
# so Delta's per-file statistics of the batch column leave the other batches' files unread. More
# (a first clean after many ingests) take the anti-join over the whole table.
PENDING_BY_ID = 1000


def pending_batches(bronze: DataFrame, done: DataFrame | None, limit: int = PENDING_BY_ID) -> list[str] | None:
    """The batch ids of ``bronze`` that are not in ``done`` (a ``BATCH_ID`` column), read from
    the batch column alone; None when there are more than ``limit``."""
    ids = bronze.select(BATCH_ID).distinct()
    if done is not None:
        ids = ids.join(done, on=BATCH_ID, how="left_anti")
    rows = ids.limit(limit + 1).collect()   # at most limit + 1 ids
    return None if len(rows) > limit else sorted(r[0] for r in rows)


def _pending(ctx: JobContext, entity: str, full: bool) -> DataFrame | None:
    """The bronze rows to clean; None when no batch is pending (nothing is read but the batch
    column: a run with nothing new no longer scans and standardises every bronze row)."""
    lake = ctx.lake
    bronze = lake.read(Tables.bronze(entity))
    if full or not lake.exists(Tables.CLEAN_BATCHES):
        return bronze
    done = lake.read(Tables.CLEAN_BATCHES).where(F.col("entity") == entity).select(F.col("batch_id").alias(BATCH_ID))
    ids = pending_batches(bronze, done)
    if ids is None:
        return bronze.join(done, on=BATCH_ID, how="left_anti")
    return bronze.where(F.col(BATCH_ID).isin(ids)) if ids else None


def clean_entity(ctx: JobContext, entity_name: str, full: bool, last=None) -> tuple[list[str], list[Metric]]:
    """Clean the pending bronze batches of one entity; returns the batches cleaned and its dq
    metrics.

    ``last``: the last successful clean run (``JobContext.last_success``), which cleaned every
    batch of the bronze version it read. When bronze is still at that version, no batch can be
    pending, and the batch column of every bronze row is not read to find that out."""
    lake, settings, run = ctx.lake, ctx.settings, ctx.run
    entity = ENTITIES[entity_name]
    bronze_name, silver_name = Tables.bronze(entity_name), Tables.silver(entity_name)
    version = lake.version(bronze_name)
    run.record_read(bronze_name, version=version)
    if not full and version is not None and same_version(last, run, bronze_name):
        run.stage("%s: no new bronze batches (bronze unchanged since the last clean)", entity_name)
        return [], []
    pending = _pending(ctx, entity_name, full)
    if pending is None:
        run.stage("%s: no new bronze batches", entity_name)
        return [], []
    standardised = standardise(pending, entity, settings.clean, settings.landing).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        per_file = (standardised.groupBy(BATCH_ID, SOURCE_FILE)   # one row per file
                    .agg(F.count(F.lit(1)).alias("rows"), F.sum((F.size(REASONS) > 0).cast("long")).alias("bad"))
                    .collect())
        if not per_file:
            run.stage("%s: no new bronze batches", entity_name)
            return [], []
        batches = sorted({r[BATCH_ID] for r in per_file})
        rows_in, bad = sum(r["rows"] for r in per_file), sum(r["bad"] for r in per_file)
        run.stage("%s: standardised %d rows", entity_name, rows_in)
        scope = f"stage = '{STAGE}' AND entity = '{entity_name}'"
        if not full:
            scope += " AND " + sql_in(BATCH_ID, batches)
        # Batches no run has cleaned yet have no clean-stage quarantine rows to replace, so a
        # batch without rule breakers has nothing to write there (a --full rebuild still clears).
        if bad or full:
            lake.replace_where(quarantine_rows(standardised, entity), Tables.QUARANTINE, scope)
            run.stage("%s: quarantine written", entity_name)
        rows = silver_rows(standardised, entity)
        if full:
            lake.overwrite(rows, silver_name)
        else:
            lake.merge(rows, silver_name, keys=list(entity.key), update_condition=is_newer(), add_columns=True)
            redelivered(ctx, entity, sorted({r[SOURCE_FILE] for r in per_file}), batches)
        run.stage("%s: silver %s", entity_name, "overwritten" if full else "merged")
        accepted = standardised.where(F.size(REASONS) == 0)
        metrics = profile(accepted, silver_name, list(entity.key), entity.column_names)
    finally:
        standardised.unpersist()
    run.record_read(bronze_name, rows_in)
    run.record_write(silver_name, rows_in - bad, lake.version(silver_name))
    if bad or full:   # written above (a delivery again records its own quarantine delete)
        run.record_write(Tables.QUARANTINE, bad, lake.version(Tables.QUARANTINE))
    total = lake.read(silver_name).count()  # answered from the Delta log
    run.stage("%s: %d bronze rows in %d batches, %d quarantined; silver now %d rows",
              entity_name, rows_in, len(batches), bad, total)
    return batches, [(silver_name, "rows_in", None, rows_in), (silver_name, "rows_quarantined", None, bad),
                     (silver_name, "rows_total", None, total)] + metrics


def record_batches(ctx: JobContext, batches: dict[str, list[str]], full: bool) -> None:
    """Record the batches cleaned by this run, per entity."""
    now = datetime.now(timezone.utc)
    rows = [(entity, b, ctx.run.run_id, now) for entity, ids in batches.items() for b in ids]
    if not rows:
        return
    done = ctx.spark.createDataFrame(rows, BATCHES_SCHEMA)
    if full:  # batches seen before are recorded already
        ctx.lake.merge(done, Tables.CLEAN_BATCHES, keys=["entity", "batch_id"], insert_only=True)
    else:
        ctx.lake.append(done, Tables.CLEAN_BATCHES)


def redelivered(ctx: JobContext, entity: Entity, files: list[str], batches: list[str]) -> None:
    """A file delivered again replaces its earlier contribution end to end.

    Ingest replaced the file's rows in bronze; here, the silver rows that came from its earlier
    delivery are rebuilt from bronze as it is now: a key the new file no longer has falls back to
    another file's row, or leaves silver; the earlier delivery's clean-stage quarantine rows go.
    Only files of the pending batches that silver holds from another batch are touched.
    """
    lake, settings, run = ctx.lake, ctx.settings, ctx.run
    silver_name, keys = Tables.silver(entity.name), list(entity.key)
    earlier = (lake.read(silver_name).where(sql_in(SOURCE_FILE, files))
               .where(~F.col(BATCH_ID).isin(*batches)).select(*keys).distinct())
    if not files or earlier.limit(1).count() == 0:   # the usual case: no file came again
        return
    earlier = earlier.localCheckpoint()   # silver is rewritten below from these keys
    bronze = lake.read(Tables.bronze(entity.name)).join(earlier, keys, "left_semi")
    rebuilt = silver_rows(standardise(bronze, entity, settings.clean, settings.landing), entity)
    gone = earlier.join(rebuilt.select(*keys), keys, "left_anti")
    lake.apply_changes(rebuilt, gone, silver_name, keys)
    stale = ((F.col("stage") == STAGE) & (F.col("entity") == entity.name) & F.col(SOURCE_FILE).isin(*files)
             & ~F.col(BATCH_ID).isin(*batches))
    quarantine = lake.read(Tables.QUARANTINE)
    if quarantine.where(stale).limit(1).count():
        lake.delete(Tables.QUARANTINE, stale)
        run.record_write(Tables.QUARANTINE, 0, lake.version(Tables.QUARANTINE))
    run.stage("%s: %d files delivered again: %d keys rebuilt from bronze, %d left silver", entity.name,
              len(files), earlier.count(), gone.count())
