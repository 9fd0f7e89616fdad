"""Benchmark: the identity job end to end on a bench lakehouse, stage by stage.

Runs ``memberlake identity`` in this process on the silver tables of a ``bench/run.py``
lakehouse (default the scale-1 run: 1M member records; generate with
``--set generate.events_per_record=20`` for 20M events), first in full, then again with
``--force`` on unchanged silver (the incremental path with nothing touched: its floor). Every
progress line the job logs becomes a row: time since the previous line, and the peak resident
memory of the process tree (Python + JVM) in between. With ``--truth`` the graph is scored
against the generator's truth (``memberlake evaluate identity``).

    python bench/identity.py --lakehouse bench/out/scale-1/lakehouse --truth bench/out/scale-1/landing/_truth
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from argparse import Namespace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PeakMemory  # noqa: E402


class StageLog(logging.Handler):
    """Collects (message, seconds since the previous message, peak RSS since then)."""

    def __init__(self, memory: PeakMemory) -> None:
        super().__init__(logging.INFO)
        self.memory = memory
        self.rows: list[tuple[str, float, int]] = []
        self.last = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        now = time.perf_counter()
        message = record.getMessage().split("] ", 1)[-1]
        self.rows.append((message[:160], now - self.last, self.memory.peak))
        self.last = now
        self.memory.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lakehouse", default=str(HERE / "out" / "scale-1" / "lakehouse"))
    parser.add_argument("--truth", help="the generator's _truth folder, to score the graph")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="settings override")
    parser.add_argument("--skip-incremental", action="store_true", help="time the full run only")
    parser.add_argument("--skip-full", action="store_true",
                        help="time the incremental pass only (on a lakehouse an earlier run left a graph in)")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    from memberlake.contract import Tables
    from memberlake.io.delta import Lakehouse
    from memberlake.jobs import identity
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       f"spark.shuffle_partitions={args.shuffle_partitions}", *args.set])
    settings = with_overrides(settings, storage={"lakehouse": args.lakehouse})
    logging.basicConfig(level=logging.WARNING)
    memory = PeakMemory().start()
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    lake = Lakehouse.from_settings(settings)
    sizes = {e: lake.read(Tables.silver(e)).count() for e in ("members", "orders", "events")
             if lake.exists(Tables.silver(e))}
    runs = []
    passes = [] if args.skip_full else [("full", Namespace(force=True, full=True))]
    if not args.skip_incremental:
        passes.append(("incremental, nothing changed", Namespace(force=True, full=False)))
    for label, ns in passes:
        handler = StageLog(memory)
        for name in ("memberlake", "memberlake.ops.runs"):
            logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger("memberlake").addHandler(handler)
        memory.reset()
        start = time.perf_counter()
        identity.run(spark, settings, ns)
        runs.append((label, time.perf_counter() - start, handler.rows))
        logging.getLogger("memberlake").removeHandler(handler)
        print(f"{label}: {runs[-1][1]:.1f}s", flush=True)
    graph = lake.read("identity_graph")
    persons = graph.select("person_id").distinct().count()
    identifiers = graph.count()
    score = None
    if args.truth:
        from pyspark.sql import functions as F

        from memberlake.identity.evaluate import pairwise_metrics
        truth = spark.read.parquet(f"{args.truth}/members").select(
            F.concat_ws(":", "source", "member_id").alias("record"), F.col("person_id").alias("true"))
        predicted = graph.where("id_type = 'member'").select(F.col("value").alias("record"),
                                                             F.col("person_id").alias("pred"))
        metrics = pairwise_metrics(predicted, truth)
        score = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    memory.stop()
    write_results(args, sizes, runs, identifiers, persons, score)


def write_results(args, sizes, runs, identifiers, persons, score) -> None:
    import psutil

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    records = sizes.get("members", 0)
    out = [f"\n### identity end to end: {records:,} member records, {sizes.get('events', 0):,} events, "
           f"{sizes.get('orders', 0):,} orders — {when}\n",
           f"Machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, CPython "
           f"{platform.python_version()}; Spark `{args.master}`, driver {args.driver_memory}, "
           f"{args.shuffle_partitions} shuffle partitions. Command: `python bench/identity.py --lakehouse "
           f"{args.lakehouse}`{' ' + ' '.join('--set ' + s for s in args.set) if args.set else ''}.\n"]
    total_rows = sum(sizes.values())
    for label, secs, rows in runs:
        out += [f"**{label}**: {secs:.1f} s, {total_rows / secs:,.0f} silver rows/s\n",
                "| stage (the job's progress line) | seconds since previous line | peak RSS (GB) |",
                "|---|---:|---:|"]
        out += [f"| {msg.replace('|', '/')} | {dt:.1f} | {peak / 1e9:.2f} |" for msg, dt, peak in rows]
        out.append("")
    out.append(f"Graph: {identifiers:,} identifiers, {persons:,} person ids.")
    if score:
        out.append("Against the generator's truth: " + ", ".join(f"{k} {v}" for k, v in score.items()) + ".")
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
