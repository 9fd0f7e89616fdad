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

from pyspark.sql import SparkSession

from memberlake.io.delta import Lakehouse
from memberlake.jobs.common import InputError, job_main
from memberlake.ops.runs import recorded_run
from memberlake.settings import Settings

NAME = "maintain"
HELP = "Table maintenance: OPTIMIZE with Z-order on the main keys, VACUUM, table properties."
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=lambda s: [t.strip() for t in s.split(",") if t.strip()],
                        help="comma-separated tables (default: every table in the lakehouse)")
    parser.add_argument("--skip-optimize", action="store_true")
    parser.add_argument("--skip-vacuum", action="store_true")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> dict[str, dict[str, int]]:
    lake = Lakehouse.from_settings(settings)
    cfg = settings.maintenance
    existing = lake.table_names(spark)
    tables = args.tables or existing
    unknown = sorted(set(tables) - set(existing))
    if unknown:
        raise InputError(f"--tables: {unknown} not found in the lakehouse; see `memberlake tables`")
    params = {"tables": sorted(tables), "optimize": not args.skip_optimize, "vacuum": not args.skip_vacuum}
    report: dict[str, dict[str, int]] = {}
    with recorded_run(spark, lake, NAME, params, monitoring=settings.monitoring) as run_:
        for table in tables:
            name = lake.sql_name(table)
            delta = lake.for_update(spark, table)
            if cfg.properties:
                props = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(cfg.properties.items()))
                spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({props})")
            stats: dict[str, int] = {}
            if not args.skip_optimize:
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
            if not args.skip_vacuum:
                delta.vacuum(cfg.vacuum_retention_hours)
            stats["version"] = int(lake.version(spark, table) or 0)
            report[table] = stats
            run_.record_write(table, 0, stats["version"])
            run_.stage("%s: %s", table, stats)
    return report


def main(argv: list[str] | None = None) -> int:
    import sys

    return job_main(sys.modules[__name__], argv)
