"""ingest: landing files -> bronze tables + quarantine, file by file, idempotently.

A file is new when its (path, size, modification time) is not yet in ``ingest_files``. Its rows
replace any earlier rows of the same file (``replaceWhere`` on ``_source_file``), so re-running
on the same files adds nothing, a changed file replaces its old rows, and a run that failed half
way is completed by the next one.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from memberlake.contract import ENTITIES, Tables
from memberlake.ingest.files import ingest_entity, known_files, record_files
from memberlake.io.landing import list_entity_files
from memberlake.jobs.common import add_entities_argument, check_entities, job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.parallel import run_each
from memberlake.ops.quality import metrics_frame
from memberlake.settings import Settings

NAME = "ingest"
HELP = "Read new landing files into bronze Delta tables; rejected rows go to quarantine."


@dataclass(frozen=True)
class Options:
    entities: list[str] = field(default_factory=lambda: list(ENTITIES))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_entities_argument(parser)


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    settings.require("landing.path")
    check_entities(opts.entities, settings)
    with job_context(spark, settings, NAME, {"landing": settings.landing.path, "entities": opts.entities}) as ctx:
        ingested_at = datetime.now(timezone.utc)
        known = known_files(ctx)
        pending = {}
        for entity_name in opts.entities:
            files = list_entity_files(spark, settings.landing.path, entity_name)
            new = [f for f in files if (entity_name, f.path, f.size, f.modified) not in known]
            if not files:
                ctx.stage("%s: no landing files (entity absent), skipped", entity_name)
            elif not new:
                ctx.stage("%s: %d files, all ingested before: nothing to do", entity_name, len(files))
            else:
                pending[entity_name] = new
        results = run_each(spark, list(pending), lambda e: ingest_entity(ctx, e, pending[e], ingested_at),
                           settings.spark.concurrent_jobs)
        file_rows: list[tuple] = [row for entity_files, _ in results for row in entity_files]
        metrics: list[tuple] = [m for _, entity_metrics in results for m in entity_metrics]
        record_files(ctx, file_rows)
        if metrics:
            ctx.lake.append(metrics_frame(spark, ctx.run.run_id, NAME, metrics, ingested_at), Tables.DQ_METRICS)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
