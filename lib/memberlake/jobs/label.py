"""label: load a reviewer's match / non-match verdicts on member-record pairs into ``identity_labels``.

``memberlake label --file labels.csv [--labelled-by NAME]`` upserts each pair (MERGE on the pair,
records in order: a pair labelled again keeps the newest verdict). ``memberlake evaluate identity
--labels`` then reports precision and recall at every match threshold from them; docs/identity.md,
"Threshold and review", has the loop.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from memberlake.contract import Tables
from memberlake.identity.labels import LABEL_COLUMNS, labels_from_file
from memberlake.jobs.common import InputError, job_main, options
from memberlake.ops.context import job_context
from memberlake.settings import Settings

NAME = "label"
HELP = "Load reviewed member-record pairs (match / non-match) into identity_labels."


@dataclass(frozen=True)
class Options:
    file: str = ""
    labelled_by: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True,
                        help="CSV with a header: l_record, r_record (source:member_id) or l_source, l_member_id, "
                             "r_source, r_member_id; and match (true/false, yes/no, 1/0, match/non-match)")
    parser.add_argument("--labelled-by", help="reviewer name recorded with each label")


def check(settings: Settings, args: argparse.Namespace) -> None:
    """A local file that is not there fails before Spark starts (a URI is left to Spark)."""
    file = options(Options, args).file
    if "://" not in file and not Path(file).exists():
        raise InputError(f"label: --file {file} not found: give the reviewed pairs' CSV")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, int]:
    check(settings, args)
    opts = options(Options, args)
    with job_context(spark, settings, NAME, {"file": opts.file, "labelled_by": opts.labelled_by}) as ctx:
        raw = spark.read.option("header", True).option("multiLine", True).option("encoding", "UTF-8").csv(opts.file)
        labels = labels_from_file(raw, opts.labelled_by).select(*LABEL_COLUMNS).localCheckpoint()
        n = labels.count()
        ctx.lake.merge(labels, Tables.IDENTITY_LABELS, keys=["l_record", "r_record"])
        ctx.run.record_write(Tables.IDENTITY_LABELS, n, ctx.lake.version(Tables.IDENTITY_LABELS))
        ctx.stage("%d labelled pairs loaded from %s", n, opts.file)
        return {Tables.IDENTITY_LABELS: n}


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
