"""Benchmark: sessionization at 10M and 20M events against DuckDB, and incremental vs full.

Events are generated in Spark: sessions of 1-40 events 90 s apart, separated by more than the
timeout, a quarter of them starting with utm values; visitors have several sessions over 30
days. For each size, in one process:

1. Spark: ``assign_sessions`` (the job's rule) + one row per session -> Parquet;
2. DuckDB (2 threads): the same rule in SQL window functions -> Parquet; session counts compared;
3. (first size only) the ``sessions`` job on a Delta lakehouse: a full build over 30 days, then a
   1-day batch incrementally; analytics (attribution etc., recomputed from the table every run)
   are switched off for this comparison.

    python bench/sessions.py --events 10000000 20000000
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from argparse import Namespace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PeakMemory  # noqa: E402

DUCKDB_SESSIONS = """
COPY (
WITH e AS (SELECT *, epoch(event_ts) AS s,
              CASE WHEN coalesce(utm_source, utm_medium, utm_campaign) IS NOT NULL THEN
                concat_ws('|', coalesce(utm_source, ''), coalesce(utm_medium, ''), coalesce(utm_campaign, '')) END AS utm
           FROM read_parquet('{src}/*.parquet')),
a AS (SELECT *, lag(s) OVER w AS prev FROM e WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_ts, event_id)),
b AS (SELECT *, prev IS NULL OR s - prev > {timeout} AS visit_new FROM a),
c AS (SELECT *, max(CASE WHEN visit_new THEN s END) OVER (w ROWS UNBOUNDED PRECEDING) AS visit_start,
             max(CASE WHEN utm IS NOT NULL THEN s END) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS utm_s,
             last_value(utm IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_utm
      FROM b WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_ts, event_id)),
d AS (SELECT *, visit_new OR coalesce(utm IS NOT NULL AND utm_s >= visit_start AND utm <> prev_utm, false) AS boundary FROM c),
f AS (SELECT *, max(CASE WHEN boundary THEN s END) OVER (w ROWS UNBOUNDED PRECEDING) AS split_start
      FROM d WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_ts, event_id)),
g AS (SELECT *, floor((s - split_start) / {max_len}) AS piece FROM f),
h AS (SELECT *, boundary OR coalesce(piece <> lag(piece) OVER w, true) AS new_session
      FROM g WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_ts, event_id)),
i AS (SELECT *, max(CASE WHEN new_session THEN s END) OVER (w ROWS UNBOUNDED PRECEDING) AS session_start
      FROM h WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_ts, event_id))
SELECT anonymous_id, session_start, count(*) AS events, min(event_ts) AS first_ts, max(event_ts) AS last_ts
FROM i GROUP BY anonymous_id, session_start) TO '{out}' (FORMAT PARQUET)
"""


def make_events(spark, n_events: int, days: int = 30, seed: int = 3):
    from pyspark.sql import functions as F

    from memberlake.generate.random import Draws

    r, s = Draws(seed), F.col("id")
    n_sessions = max(1, n_events // 10)
    visitors = max(1, n_sessions // 6)
    start = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp())
    length = F.least(F.lit(40), 1 + F.floor(r.exponential(9.0, "len", s))).cast("int")
    visitor = r.int_below(visitors, "visitor", s)
    # sessions of one visitor are spread over the days; a 40-minute pad keeps planted sessions apart
    slot = r.int_below(days * 24, "slot", s)
    utm = r.below(0.25, "utm", s)
    j = F.col("j")
    sessions = spark.range(n_sessions, numPartitions=8).select(
        "id", F.format_string("v%d", visitor).alias("anonymous_id"), (F.lit(start) + slot * 3600).alias("t0"),
        length.alias("n"), utm.alias("utm"))
    return sessions.select("*", F.explode(F.sequence(F.lit(0), F.col("n") - 1)).alias("j")).select(
        F.format_string("e%d-%d", s, j).alias("event_id"),
        F.timestamp_seconds(F.col("t0") + j * 90).alias("event_ts"), "anonymous_id",
        F.concat(F.lit("d"), "anonymous_id").alias("device_id"), F.lit(None).cast("string").alias("member_id"),
        F.when(j == 0, "page_view").otherwise("product_view").alias("event_type"),
        F.lit("https://shop/").alias("page_url"), F.lit(None).cast("string").alias("referrer"),
        F.when(F.col("utm") & (j == 0), "google").alias("utm_source"),
        F.when(F.col("utm") & (j == 0), "cpc").alias("utm_medium"),
        F.when(F.col("utm") & (j == 0), "spring").alias("utm_campaign"),
        F.lit(None).cast("string").alias("product_id"), F.lit(None).cast("string").alias("order_id"),
        F.date_format(F.timestamp_seconds(F.col("t0")), "yyyy-MM-dd").alias("_batch_id"),
    ).dropDuplicates(["anonymous_id", "event_ts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000, 20_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--no-warmup", action="store_true", help="time the first size's first run too")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    import duckdb
    from pyspark.sql import functions as F

    from memberlake.io.delta import Lakehouse
    from memberlake.jobs import sessions as job
    from memberlake.sessions.sessionize import assign_sessions
    from memberlake.settings import load_settings, with_overrides
    from memberlake.spark import get_spark

    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       "spark.shuffle_partitions=16"])
    memory = PeakMemory().start()
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    cfg = settings.sessions
    work = HERE / "out" / "sessions"
    rows = []

    def stage(name, func, n):
        memory.reset()
        t0 = time.perf_counter()
        out = func()
        secs = time.perf_counter() - t0
        rows.append((name, secs, n, memory.peak))
        print(f"{name}: {secs:.1f}s", flush=True)
        return out, secs

    ratios = []
    warm = not args.no_warmup
    for n in args.events:
        src = work / f"events-{n}"
        if not src.exists():
            make_events(spark, n).write.mode("overwrite").parquet(str(src))
        events = spark.read.parquet(str(src))
        actual = events.count()
        spark_out = work / f"sessions-spark-{n}"

        def spark_sessionize(events=events, spark_out=spark_out):
            out = assign_sessions(events, cfg).groupBy("anonymous_id", "session_id").agg(
                F.count(F.lit(1)).alias("events"), F.min("event_ts").alias("first_ts"), F.max("event_ts").alias("last_ts"))
            out.write.mode("overwrite").parquet(str(spark_out))
            return spark.read.parquet(str(spark_out)).count()

        if warm:
            # One untimed run first: JIT and class loading would otherwise land on the first size.
            spark_sessionize()
            warm = False
        n_spark, spark_s = stage(f"{actual / 1e6:.0f}M events: sessionize in Spark", spark_sessionize, actual)
        duck_out = work / f"sessions-duckdb-{n}.parquet"

        def duck(src=src, duck_out=duck_out):
            con = duckdb.connect()
            con.execute("SET threads TO 2")
            con.execute(DUCKDB_SESSIONS.format(src=src, out=duck_out, timeout=int(cfg.timeout_minutes * 60),
                                               max_len=int(cfg.max_length_hours * 3600)))
            return con.execute(f"SELECT count(*) FROM read_parquet('{duck_out}')").fetchone()[0]

        n_duck, duck_s = stage(f"{actual / 1e6:.0f}M events: sessionize in DuckDB", duck, actual)
        ratios.append((actual, n_spark, n_duck, spark_s, duck_s))

    incremental = None
    if not args.skip_incremental:
        n = args.events[0]
        lake_dir = work / "lakehouse"
        s2 = with_overrides(settings, storage={"lakehouse": str(lake_dir)})
        lake = Lakehouse.from_settings(s2)
        events = spark.read.parquet(str(work / f"events-{n}"))
        last_day = events.agg(F.max("_batch_id")).first()[0]
        # Silver events arrive a day at a time, so its files cover narrow time ranges: written
        # here in ranges of event time, not in one shuffle over all 29 days.
        history = (events.where(F.col("_batch_id") < last_day).withColumn("_batch_id", F.lit("history"))
                   .repartitionByRange(29, "event_ts"))
        lake.overwrite(history, "silver_events")
        for t in ("sessions", "sessions_batches", "late_events", "job_runs"):
            if lake.exists(t):
                import shutil
                shutil.rmtree(lake.location(t), ignore_errors=True)
        job.analytics = lambda *a, **k: None        # attribution etc. recompute from the table: not timed here
        _, full_s = stage("sessions job: full build, 29 days", lambda: job.run(spark, s2, Namespace(full=True)),
                          history.count())
        day = events.where(F.col("_batch_id") == last_day)
        lake.append(day, "silver_events")
        _, inc_s = stage("sessions job: incremental 1-day batch", lambda: job.run(spark, s2, Namespace(full=False)),
                         day.count())
        incremental = (full_s, inc_s)
    memory.stop()
    write_results(args, rows, ratios, incremental)


def write_results(args, rows, ratios, incremental) -> None:
    import psutil

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"\n### sessions: sessionization at {', '.join(f'{r[0] / 1e6:.0f}M' for r in ratios)} events — {when}\n",
           f"Machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, CPython "
           f"{platform.python_version()}; Spark `{args.master}`, driver {args.driver_memory}, 16 shuffle partitions. "
           f"Command: `python bench/sessions.py --events {' '.join(str(e) for e in args.events)}`.\n",
           "| step | wall time (s) | events | events/s | s per 1M events | peak RSS (GB) |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, secs, n, peak in rows:
        out.append(f"| {name} | {secs:.1f} | {n:,} | {n / secs:,.0f} | {secs / (n / 1e6):.2f} | {peak / 1e9:.2f} |")
    for actual, n_spark, n_duck, spark_s, duck_s in ratios:
        same = "same session count" if n_spark == n_duck else f"session counts differ: {n_spark} vs {n_duck}"
        out.append(f"\n{actual / 1e6:.0f}M events: Spark vs DuckDB **{spark_s / duck_s:.1f}x** ({same}: {n_spark:,}).")
    by_size = sorted(ratios)
    if len(by_size) > 1:
        steps = [f"{a[0] / 1e6:.0f}M→{b[0] / 1e6:.0f}M: {(b[3] - a[3]) / ((b[0] - a[0]) / 1e6):.2f} s"
                 for a, b in zip(by_size, by_size[1:], strict=False)]
        out.append("\nSpark's marginal cost per extra 1M events (time = fixed cost + this x size): "
                   + "; ".join(steps) + ".")
    if incremental:
        full_s, inc_s = incremental
        out.append(f"\nIncremental 1-day batch vs full 29-day build: {inc_s:.1f} s vs {full_s:.1f} s "
                   f"(**{inc_s / full_s:.2f}** of a rebuild).")
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
