"""clean: bronze -> silver (typed, standardised, one row per natural key) + clean-stage quarantine.

Incremental by ingest batch: a bronze batch is processed once (``clean_batches`` records it),
its rows are standardised, rows breaking a business rule are quarantined, the rest are reduced
to the latest row per key and MERGEd into silver, where a row only replaces an older one. So a
re-run on the same input changes nothing. ``--full`` rebuilds silver from all of bronze (after a
rule change).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession

from memberlake.clean.batches import clean_entity, record_batches
from memberlake.contract import ENTITIES, Tables
from memberlake.jobs.common import add_entities_argument, check_entities, job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.parallel import run_each
from memberlake.ops.quality import Metric, metrics_frame
from memberlake.settings import Settings

NAME = "clean"
HELP = "Standardise and deduplicate bronze into silver Delta tables (incremental by batch)."


@dataclass(frozen=True)
class Options:
    entities: list[str] = field(default_factory=lambda: list(ENTITIES))
    full: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_entities_argument(parser)
    parser.add_argument("--full", action="store_true", help="rebuild silver from all of bronze")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> None:
    opts = options(Options, args)
    check_entities(opts.entities, settings)
    with job_context(spark, settings, NAME, {"entities": opts.entities, "full": opts.full}) as ctx:
        present = []
        for entity_name in opts.entities:
            if ctx.exists(Tables.bronze(entity_name)):
                present.append(entity_name)
            else:
                ctx.stage("%s: no bronze table (entity absent), skipped", entity_name)
        # An entity whose bronze is at the version the last successful clean read has nothing
        # pending (an incremental run's usual case for most entities).
        last = None if opts.full else ctx.last_success()
        results = run_each(spark, present, lambda e: clean_entity(ctx, e, opts.full, last),
                           settings.spark.concurrent_jobs)
        batches: dict[str, list[str]] = {e: ids for e, (ids, _) in zip(present, results, strict=True)}
        metrics: list[Metric] = [m for _, entity_metrics in results for m in entity_metrics]
        record_batches(ctx, batches, opts.full)
        if metrics:
            ctx.lake.append(metrics_frame(spark, ctx.run.run_id, NAME, metrics, datetime.now(timezone.utc)),
                            Tables.DQ_METRICS)


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
