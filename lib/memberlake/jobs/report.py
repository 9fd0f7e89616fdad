"""report: one self-contained HTML file describing the gold tables, with charts.

Data quality, identity (persons, merges, largest clusters), sessions and channels, attribution
by model, RFM segment sizes and migration, behavioural clusters, churn ROC and risk deciles, and
the top association rules. Every figure is aggregated in Spark; the file has no scripts and
loads nothing from the network, so it can be mailed or attached to a ticket.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main, options
from memberlake.ops.context import job_context
from memberlake.report import gather, render
from memberlake.settings import Settings

NAME = "report"
HELP = "Write a self-contained HTML report (charts and tables) from the gold tables."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    out: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="PATH",
                        help="HTML file to write (any Hadoop path: local, dbfs:/, s3a://, /Volumes/...); "
                             "default <lakehouse>/_report/memberlake-report.html")


def output_path(lake: Lakehouse, out: str | None) -> str:
    if out:
        return out
    if lake.catalog_mode:
        raise InputError("report: pass --out PATH (e.g. /Volumes/<catalog>/<schema>/reports/memberlake.html) "
                         "when tables are catalog tables")
    return f"{lake.root}/_report/memberlake-report.html"


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` through Hadoop's FileSystem (local, cloud and DBFS paths alike), into a hidden
    sibling first and renamed over ``path`` when complete: a run that dies while writing leaves
    readers the last complete report, not half of a new one."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    partial = jvm.org.apache.hadoop.fs.Path(target.getParent(), f".{target.getName()}.partial")
    stream = fs.create(partial, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    # rename replaces the target on local disks; HDFS-like stores refuse an existing one
    if not fs.rename(partial, target) and not (fs.delete(target, False) and fs.rename(partial, target)):
        raise OSError(f"report: could not move {partial} to {path}")


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> str:
    lake = Lakehouse.from_settings(settings, spark)
    path = output_path(lake, options(Options, args).out)
    with job_context(spark, settings, NAME, {"out": path}) as ctx:
        run_ = ctx.run
        sections = gather.sections(spark, lake, run_)
        where = lake.location("").rstrip("/.")
        text = render.page("memberlake customer 360", f"lakehouse {where}", sections)
        write_text(spark, path, text)
        charts = sum(len(s.charts) for s in sections)
        run_.stage("wrote %s: %d sections, %d charts, %.0f kB", path, len(sections), charts, len(text) / 1024)
    return path


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
