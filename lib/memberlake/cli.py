"""The ``memberlake`` command: one sub-command per job, plus pipeline, export, tables and runs.

``memberlake pipeline`` runs the jobs in dependency order in one Spark session (one JVM start
for the whole pipeline).
"""
from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType
from typing import Sequence

from memberlake.contract import Tables

try:
    import pyspark  # noqa: F401
except ImportError:  # a console script must not end in a stack trace
    sys.exit("memberlake: PySpark is not installed: pip install 'memberlake[spark]' "
             "(Databricks runtimes and Spark clusters provide their own)")

from memberlake.jobs import (
    basket,
    campaign,
    campaigns,
    clean,
    forecast,
    forget,
    generate,
    identity,
    ingest,
    label,
    maintain,
    models,
    report,
    reviews,
    score,
    sessions,
    uplift,
    value,
)
from memberlake.jobs.common import (
    InputError,
    add_common_arguments,
    add_entities_argument,
    check_job_arguments,
    configure_logging,
    guarded,
    saving_classes,
    settings_from_args,
)

log = logging.getLogger(__name__)

# The pipeline, in dependency order. Later areas append their jobs here.
PIPELINE: list[ModuleType] = [ingest, clean, identity, sessions, reviews, value, forecast, campaigns, basket, models,
                              score, uplift, report]
# What each pipeline job reads from the others (its direct upstream jobs). `memberlake pipeline`
# runs PIPELINE in order, a topological order of this graph; the Databricks bundle runs the same
# graph as task dependencies (tests/test_bundle.py checks both), so models runs beside value.
UPSTREAM: dict[str, list[str]] = {
    "ingest": [], "clean": ["ingest"], "identity": ["clean"], "sessions": ["identity"], "value": ["sessions", "reviews"],
    "basket": ["value"], "models": ["sessions", "reviews"], "score": ["models"], "reviews": ["identity"],
    "forecast": ["value"], "campaigns": ["sessions"], "uplift": ["campaigns", "models"],
    "report": ["basket", "score", "reviews", "forecast", "campaigns", "uplift"],
}
# Jobs run on their own, outside the pipeline.
OPERATIONS: list[ModuleType] = [generate, forget, maintain, campaign, label]
JOBS: dict[str, ModuleType] = {job.NAME: job for job in [*OPERATIONS, *PIPELINE]}


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def pipeline_steps(only: list[str] | None, start: str | None) -> list[ModuleType]:
    """The pipeline jobs to run for ``--only`` / ``--from``, in dependency order."""
    names = [job.NAME for job in PIPELINE]
    for name in (only or []) + ([start] if start else []):
        if name not in names:
            raise InputError(f"unknown pipeline job {name!r}: choose from {', '.join(names)}")
    steps = PIPELINE[names.index(start):] if start else list(PIPELINE)
    return [job for job in steps if not only or job.NAME in only]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memberlake", description="Customer 360 on Spark + Delta Lake.")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, job in JOBS.items():
        sub = subs.add_parser(name, help=job.HELP, description=job.HELP)
        job.add_arguments(sub)
        add_common_arguments(sub)
    pipe = subs.add_parser("pipeline", help="run the jobs in dependency order in one session",
                           description="Run " + " -> ".join(j.NAME for j in PIPELINE) + " in one Spark session.")
    pipe.add_argument("--only", type=_split, help="comma-separated jobs to run (in pipeline order)")
    pipe.add_argument("--from", dest="start", help="start the pipeline at this job")
    add_entities_argument(pipe)
    add_job_flags(pipe, PIPELINE)
    add_common_arguments(pipe)
    export = subs.add_parser("export", help="write a table to CSV or Parquet files (e.g. an audience)")
    export.add_argument("table", help="logical table name, e.g. silver_members")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("--where", help="SQL filter, e.g. \"country = 'US'\"")
    export.add_argument("--columns", type=_split, help="comma-separated columns to keep")
    export.add_argument("--raw", action="store_true",
                        help="bronze/silver/quarantine: export PII columns unmasked (default: masked, j***@example.com)")
    add_common_arguments(export)
    evaluate = subs.add_parser("evaluate", help="score an area against the generator's ground truth")
    evaluate.add_argument("area", choices=["identity"])
    evaluate.add_argument("--truth", metavar="DIR", help="ground-truth folder (default: <landing>/_truth)")
    evaluate.add_argument("--blocking", action="store_true",
                          help="also report the matching's blocking: candidate pairs and true pairs found per rule")
    evaluate.add_argument("--thresholds", action="store_true",
                          help="also report pairwise precision/recall of match_pairs at every match threshold")
    evaluate.add_argument("--labels", action="store_true",
                          help="score against identity_labels (pairs a reviewer marked, `memberlake label`) "
                               "instead of a truth folder: precision/recall at every threshold")
    add_common_arguments(evaluate)
    tables = subs.add_parser("tables", help="list the lakehouse tables with row counts and Delta versions")
    add_common_arguments(tables)
    runs = subs.add_parser("runs", help="list recent job runs and failures")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--failed", action="store_true", help="only failed runs")
    runs.add_argument("--job", help="only this job's runs")
    runs.add_argument("--versions", action="store_true",
                      help="also the Delta versions each run read and wrote (reproduce with versionAsOf)")
    add_common_arguments(runs)
    return parser


class _JobFlags:
    """What a job's ``add_arguments`` sees when the pipeline collects its flags: an option another
    pipeline job declared already is shared (``--full`` reaches every job that has it)."""

    def __init__(self, parser: argparse.ArgumentParser, job: ModuleType, seen: dict[str, list[str]]) -> None:
        self._group = parser.add_argument_group(f"{job.NAME} options")
        self._parser, self._job, self._seen = parser, job, seen

    def add_argument(self, *names: str, **kwargs) -> None:
        shared = [n for n in names if n in self._parser._option_string_actions]
        if not shared:
            self._seen[names[0]] = [self._job.NAME]
            kwargs["help"] = f"{self._job.NAME}: {kwargs.get('help', '')}".rstrip(": ")
            self._group.add_argument(*names, **kwargs)
        elif shared[0] in self._seen:  # declared by an earlier job: name every job it reaches
            self._seen[shared[0]].append(self._job.NAME)
            action = self._parser._option_string_actions[shared[0]]
            action.help = f"{', '.join(self._seen[shared[0]])}: " + (action.help or "").split(": ", 1)[-1]


def add_job_flags(parser: argparse.ArgumentParser, jobs: list[ModuleType]) -> None:
    """Every pipeline job's own flags on ``parser``, so ``memberlake pipeline --skip-clv`` works."""
    seen: dict[str, list[str]] = {}
    for job in jobs:
        job.add_arguments(_JobFlags(parser, job, seen))


def run_pipeline(spark, settings, args: argparse.Namespace) -> None:
    from memberlake.jobs.common import MissingInput

    for job in pipeline_steps(args.only, args.start):
        log.info("pipeline: %s", job.NAME)
        try:
            job.run(spark, settings, args)
        except MissingInput as exc:
            log.warning("pipeline: %s skipped: %s", job.NAME, exc)


def check_arguments(args: argparse.Namespace) -> None:
    """Arguments that argparse cannot check, checked before Spark starts: pipeline job names,
    and an export's ``--where`` and ``--columns`` against the table's declared columns."""
    if args.command == "pipeline":
        pipeline_steps(args.only, args.start)
    if args.command == "export":
        from memberlake.rules import check_columns, check_rule
        from memberlake.tables import TABLES

        table = TABLES.get(args.table)
        if table is None:
            return  # not a memberlake table (a user's own): Spark checks it
        if args.where is not None:
            check_rule("--where", args.where, table.column_names)
        if args.columns:
            check_columns("--columns", args.columns, table.column_names)


def export_table(spark, settings, args: argparse.Namespace) -> None:
    from memberlake.io.delta import Lakehouse
    from memberlake.privacy.pseudonymise import holds_raw_pii, masked

    lake = Lakehouse.from_settings(settings, spark)
    if not lake.exists(args.table):
        raise InputError(f"table {args.table!r} not found in {lake.location('')}: see `memberlake tables`")
    df = lake.read(args.table)
    if args.where:
        df = df.where(args.where)
    if args.columns:
        df = df.select(*args.columns)
    if holds_raw_pii(args.table) and not args.raw:
        df = masked(df, settings.privacy.pii_columns)
    if args.format == "csv":
        # Arrays and maps have no CSV form: write them as JSON text.
        df = df.select(*[_csv_safe(df, c) for c in df.columns])
        df.write.mode("overwrite").option("header", True).csv(args.out)
    else:
        df.write.mode("overwrite").parquet(args.out)
    log.info("exported %s to %s (%s)", args.table, args.out, args.format)


def _csv_safe(df, name: str):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    dtype = df.schema[name].dataType
    if isinstance(dtype, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(F.col(name)).alias(name)
    return F.col(name)


def list_tables(spark, settings, args: argparse.Namespace) -> list[tuple[str, int, int]]:
    from memberlake.io.delta import Lakehouse

    lake = Lakehouse.from_settings(settings, spark)
    names = lake.table_names()
    rows = []
    for name in names:
        rows.append((name, lake.read(name).count(), lake.version(name)))
    width = max([len(n) for n in names] + [5])
    out = [f"{'table':<{width}}  {'rows':>12}  version", *[f"{n:<{width}}  {c:>12}  {v}" for n, c, v in rows]]
    sys.stdout.write("\n".join(out) + f"\n({len(rows)} tables under {lake.location('').rstrip('/.')})\n")
    return rows


def list_runs(spark, settings, args: argparse.Namespace) -> None:
    from pyspark.sql import functions as F

    from memberlake.contract import Tables
    from memberlake.io.delta import Lakehouse

    lake = Lakehouse.from_settings(settings, spark)
    if not lake.exists(Tables.JOB_RUNS):
        sys.stdout.write("no runs recorded yet\n")
        return
    runs = lake.read(Tables.JOB_RUNS)
    if args.failed:
        runs = runs.where(F.col("status") == "failed")
    if args.job:
        runs = runs.where(F.col("job") == args.job)
    rows = runs.orderBy(F.col("started_at").desc()).limit(args.limit).collect()
    for r in rows:
        line = f"{r.started_at:%Y-%m-%d %H:%M:%S}  {r.job:<10} {r.status:<9} {r.duration_s:8.1f}s  {r.run_id}"
        written = ", ".join(f"{k}={v}" for k, v in sorted((r.rows_written or {}).items()))
        sys.stdout.write(line + (f"  wrote {written}" if written else "") + (f"\n    error: {r.error}" if r.error else "") + "\n")
        if args.versions:
            for label, versions in (("read", r.versions_read), ("wrote", r.versions_written)):
                if versions:
                    listed = ", ".join(f"{k}@v{v}" for k, v in sorted(versions.items()))
                    sys.stdout.write(f"    {label} {listed}\n")


def evaluate_area(spark, settings, args: argparse.Namespace) -> dict:
    import json

    from pyspark.sql import functions as F

    from memberlake.identity.evaluate import pairwise_metrics
    from memberlake.io.delta import Lakehouse

    lake = Lakehouse.from_settings(settings, spark)
    if not lake.exists(Tables.IDENTITY_GRAPH):
        raise InputError("identity_graph not found: run `memberlake identity` first")
    if args.labels:
        metrics = _labelled_thresholds(lake, settings)
        sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
        return metrics
    truth_dir = args.truth or (f"{settings.landing.path}/_truth" if settings.landing.path else None)
    if not truth_dir:
        raise InputError("--truth DIR is required (or --landing DIR holding _truth/, or --labels)")
    truth = spark.read.parquet(f"{truth_dir}/members").select(
        F.concat_ws(":", "source", "member_id").alias("record"), F.col("person_id").alias("true"))
    predicted = lake.read(Tables.IDENTITY_GRAPH).where("id_type = 'member'").select(
        F.col("value").alias("record"), F.col("person_id").alias("pred"))
    metrics = pairwise_metrics(predicted, truth)
    if args.blocking or args.thresholds:
        from memberlake.identity import matching

        cfg = settings.identity.matching
        records = matching.prepared(lake.read(Tables.silver("members"))).localCheckpoint()
        compared = truth.join(records.select("record"), "record")
    if args.blocking:
        from memberlake.identity.evaluate import blocking_report

        metrics["blocking"] = blocking_report(matching.block(records, cfg).pairs, compared,
                                              [" & ".join(rule) for rule in cfg.blocking], compared.count())
    if args.thresholds:
        from memberlake.identity.evaluate import truth_thresholds

        metrics["thresholds"] = truth_thresholds(_scored_pairs(lake, settings), compared, cfg.threshold)
    sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _scored_pairs(lake, settings):
    """match_pairs as (l_record, r_record, match_weight), a vetoed pair's weight null (never accepted)."""
    from memberlake.identity.matching import vetoed
    from memberlake.thresholds import reviewable

    if not lake.exists(Tables.MATCH_PAIRS):
        raise InputError("match_pairs not found: the identity job scores no pairs without member records")
    return reviewable(lake.read(Tables.MATCH_PAIRS), vetoed(settings.identity.matching.veto))


def _labelled_thresholds(lake, settings) -> dict:
    from memberlake.thresholds import labelled_thresholds

    if not lake.exists(Tables.IDENTITY_LABELS):
        raise InputError("identity_labels not found: load reviewed pairs with `memberlake label --file F` first")
    return labelled_thresholds(_scored_pairs(lake, settings), lake.read(Tables.IDENTITY_LABELS),
                               settings.identity.matching.threshold)


COMMANDS = {"evaluate": evaluate_area, "pipeline": run_pipeline, "export": export_table, "tables": list_tables, "runs": list_runs}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    configure_logging(args.log_level, args.verbose)

    def body() -> None:
        from memberlake.spark import get_spark

        settings = settings_from_args(args)
        check_arguments(args)
        if args.command in JOBS:
            check_job_arguments(JOBS[args.command], settings, args)
            JOBS[args.command].run(get_spark(settings), settings, args)
        else:
            COMMANDS[args.command](get_spark(settings), settings, args)

    return saving_classes(guarded(body))


if __name__ == "__main__":
    sys.exit(main())
