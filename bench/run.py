"""Benchmark: generate + ingest + clean at a chosen scale, with a DuckDB baseline.

Times each stage end to end in one Spark session (local[2] by default), records rows/s and the
peak resident memory of the whole process tree (Python driver + JVM), runs a DuckDB version of
the clean computation on the same landing files in the same run, and appends the figures to
bench/RESULTS.md.

    python bench/run.py --scale 1.0          # 1M member records, 5M orders, 10M events
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402
from duckdb_baseline import ENTITIES as BASELINE_ENTITIES  # noqa: E402
from duckdb_baseline import run_baseline  # noqa: E402


class PeakMemory:
    """Samples the RSS of this process and its children (the JVM) every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.2)

    def reset(self) -> None:
        self.peak = self._rss()

    def start(self) -> "PeakMemory":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def stage(results: list[dict], name: str, memory: PeakMemory):
    memory.reset()
    record: dict = {"stage": name}
    t0 = time.perf_counter()
    yield record
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record["peak_rss_gb"] = round(memory.peak / 1e9, 2)
    rows = record.get("rows") or 0
    record["rows_per_s"] = int(rows / record["seconds"]) if record["seconds"] else 0
    results.append(record)
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--workdir", default=str(HERE / "out"))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--events-per-record", type=float, default=10.0,
                        help="clickstream events per member record (20 at scale 1 = the identity bench's 20M)")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--all-entities", action="store_true",
                        help="ingest and clean every landing entity, not only the four the DuckDB baseline cleans")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a memberlake setting, as the jobs' --set (e.g. spark.concurrent_jobs=1)")
    args = parser.parse_args()

    from memberlake.contract import ENTITIES, Tables
    from memberlake.io.delta import Lakehouse
    from memberlake.jobs import clean, generate, ingest
    from memberlake.jobs.common import configure_logging
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    configure_logging("WARNING")
    suffix = "" if args.events_per_record == 10.0 else f"-epr{args.events_per_record:g}"
    work = Path(args.workdir) / f"scale-{args.scale:g}{suffix}"
    landing, lakehouse = work / "landing", work / "lakehouse"
    shutil.rmtree(work, ignore_errors=True)
    settings = load_settings("local", [
        f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
        f"spark.shuffle_partitions={args.shuffle_partitions}",
        f"generate.events_per_record={args.events_per_record}", *args.overrides,
    ])
    args.concurrent_jobs = settings.spark.concurrent_jobs
    settings = with_overrides(settings, storage={"lakehouse": str(lakehouse)}, landing={"path": str(landing)},
                              spark={"conf": {**settings.spark.conf, "spark.databricks.delta.snapshotPartitions": "8"}})
    memory = PeakMemory().start()
    results: list[dict] = []
    # ingest and clean take the entities the DuckDB baseline cleans (same work on both sides);
    # --all-entities adds products, reviews and the campaign tables.
    entities = list(ENTITIES) if args.all_entities else list(BASELINE_ENTITIES)
    jobs_args = argparse.Namespace(scale=args.scale, seed=args.seed, out=str(landing),
                                   entities=entities, full=False)

    with stage(results, "session start", memory):
        spark = get_spark(settings)
    with stage(results, "generate", memory) as rec:
        counts = generate.run(spark, settings, jobs_args)
        rec["rows"] = sum(counts.values())
        rec["detail"] = counts
    lake = Lakehouse.from_settings(settings)
    with stage(results, "ingest", memory) as rec:
        ingest.run(spark, settings, jobs_args)
        rec["rows"] = sum(counts[e] for e in entities)
    with stage(results, "clean", memory) as rec:
        clean.run(spark, settings, jobs_args)
        rec["rows"] = sum(lake.read(Tables.bronze(e)).count() for e in entities)
    silver_rows = {e: lake.read(Tables.silver(e)).count() for e in entities}
    spark.stop()
    if not args.no_baseline:
        with stage(results, "duckdb clean (baseline)", memory) as rec:
            rec["rows"], rec["detail"] = run_baseline(landing, work / "duckdb", threads=2)
    memory.stop()
    write_results(args, results, {e: counts[e] for e in entities}, silver_rows)


def write_results(args, results: list[dict], counts: dict, silver_rows: dict) -> None:
    by_stage = {r["stage"]: r for r in results}
    ratio = ""
    if "duckdb clean (baseline)" in by_stage:
        spark_clean = by_stage["ingest"]["seconds"] + by_stage["clean"]["seconds"]
        duck = by_stage["duckdb clean (baseline)"]["seconds"]
        ratio = f"{spark_clean / duck:.1f}x" if duck else ""
    lines = [
        f"### generate + ingest + clean, scale {args.scale:g} — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}; Spark `{args.master}`, "
        f"driver memory {args.driver_memory}, {args.shuffle_partitions} shuffle partitions, "
        f"{args.concurrent_jobs} concurrent jobs" + (f"; settings {', '.join(args.overrides)}." if args.overrides else "."),
        f"Landing rows: {', '.join(f'{k} {v:,}' for k, v in counts.items())}. "
        f"Silver rows: {', '.join(f'{k} {v:,}' for k, v in silver_rows.items())}.",
        "",
        "| stage | wall time (s) | rows | rows/s | peak RSS (GB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['stage']} | {r['seconds']} | {r.get('rows') or 0:,} | {r['rows_per_s']:,} | {r['peak_rss_gb']} |")
    if ratio:
        lines += ["", f"Spark ingest + clean vs the DuckDB baseline (same landing files, same run): **{ratio}**."]
    lines.append("")
    path = Path(args.results)
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `bench/run.py` (see bench/README.md).\n\n", encoding="utf-8")
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if ratio:
        landing = sum(counts.values())
        bench_summary.record_into(args.results, "ingest_clean_scale1" if args.scale == 1 else f"ingest_clean_scale{args.scale:g}",
                                  f"ingest + clean, scale {args.scale:g} ({landing / 1e6:.1f}M landing rows)",
                                  f"{spark_clean:.1f} s", f"DuckDB {duck:.1f} s", ratio, "≤ 4x", lines[0])


if __name__ == "__main__":
    main()
