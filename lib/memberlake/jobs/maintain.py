"""maintain: OPTIMIZE (Z-order on the main keys), VACUUM and table properties for every table.

Small files pile up from incremental appends and MERGEs; OPTIMIZE compacts them and, for the
tables listed in ``maintenance.zorder``, clusters rows by their lookup keys so that point reads
(a person, a member) skip most files. VACUUM then drops files no longer referenced for longer
than ``maintenance.vacuum_retention_hours`` — the reach of time travel. Properties from
``maintenance.properties`` (log and deleted-file retention) are set on every table; Change Data
Feed is on for every memberlake table from creation (``delta.enableChangeDataFeed``).
Schedule it daily or weekly, outside the pipeline's write window.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main, options
from memberlake.ops.context import job_context
from memberlake.ops.parallel import run_each
from memberlake.settings import Settings

NAME = "maintain"
HELP = "Table maintenance: OPTIMIZE with Z-order on the main keys, VACUUM, table properties."
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    tables: list[str] | None = None
    skip_optimize: bool = False
    skip_vacuum: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=lambda s: [t.strip() for t in s.split(",") if t.strip()],
                        help="comma-separated tables (default: every table in the lakehouse)")
    parser.add_argument("--skip-optimize", action="store_true")
    parser.add_argument("--skip-vacuum", action="store_true")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, dict[str, int]]:
    opts = options(Options, args)
    lake = Lakehouse.from_settings(settings, spark)
    cfg = settings.maintenance
    existing = lake.table_names()
    tables = opts.tables or existing
    unknown = sorted(set(tables) - set(existing))
    if unknown:
        raise InputError(f"--tables: {unknown} not found in the lakehouse; see `memberlake tables`")
    params = {"tables": sorted(tables), "optimize": not opts.skip_optimize, "vacuum": not opts.skip_vacuum}
    with job_context(spark, settings, NAME, params) as ctx:
        run_ = ctx.run

        def maintain(table: str) -> dict[str, int]:
            name = lake.sql_name(table)
            delta = lake.for_update(table)
            if cfg.properties:
                props = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(cfg.properties.items()))
                spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({props})")
            stats: dict[str, int] = {}
            if not opts.skip_optimize:
                columns = cfg.zorder.get(table, [])
                present = set(delta.toDF().columns)
                missing = [c for c in columns if c not in present]
                if missing:
                    raise InputError(f"maintenance.zorder.{table}: columns {missing} not in the table; "
                                     f"choose from {sorted(present)}")
                builder = delta.optimize()
                metrics = (builder.executeZOrderBy(*columns) if columns else builder.executeCompaction()).first()
                m = metrics["metrics"]
                stats.update(files_added=int(m["numFilesAdded"]), files_removed=int(m["numFilesRemoved"]))
            if not opts.skip_vacuum:
                delta.vacuum(cfg.vacuum_retention_hours)
            stats["version"] = int(lake.version(table) or 0)
            run_.record_write(table, 0, stats["version"])
            run_.stage("%s: %s", table, stats)
            return stats

        # Tables are independent: maintained side by side (spark.concurrent_jobs).
        report = dict(zip(tables, run_each(spark, list(tables), maintain, settings.spark.concurrent_jobs), strict=True))
    return report


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
