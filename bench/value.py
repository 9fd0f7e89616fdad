"""Benchmark: RFM + profile at 10M orders against DuckDB, and the CLV fit against lifetimes.

Input: the silver tables of a ``bench/run.py`` lakehouse (``--lakehouse``, default the scale-1
run). Purchases are derived once with memberlake's own ``purchases`` (person = identity graph
when present, else the deterministic per-identifier id) and written to Parquet; ``--copies 2``
adds a copy of every order shifted one year back under a new order id, so scale 1 (5M orders)
gives 10M orders over the same persons. Then, in one run:

1. RFM in Spark (figures, exact quantile scores, segments) -> Parquet, a first run and then
   `--repeats` warm runs alternating with DuckDB's (the ratio uses the medians);
2. the same RFM in DuckDB SQL (2 threads, scores with rank() windows) -> Parquet, and a check
   that both give the same number of persons per RFM cell;
   with ``--alone N``, each engine's RFM also runs N times in a process of its own (alternating),
   as a job started alone would: the clock starts once the Spark session or the DuckDB connection
   is up (JVM and session start are ``bench/job_start.py``'s), so neither engine's first run
   follows the other's work in the same process;
3. the member profile in Spark;
4. the CLV fit in Spark (BTYD summary, BG/NBD and Gamma-Gamma), and ``lifetimes`` on the same
   summary, with the relative parameter differences.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "out" / "value"          # the purchases Parquet and every engine's output
PURCHASES = WORK / "purchases"         # written by the parent, read by the --alone children
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402
from run import PeakMemory  # noqa: E402

DUCKDB_RFM = """
COPY (
WITH p AS (SELECT * FROM read_parquet('{src}/*.parquet')),
per AS (
  SELECT person_id, min(order_date) AS first_order_date, max(order_date) AS last_order_date,
         count(DISTINCT order_id) AS frequency,
         count(order_id) FILTER (WHERE order_date >= DATE '{start}') AS frequency_window,
         round(sum(net), 2) AS monetary,
         round(coalesce(sum(net) FILTER (WHERE order_date >= DATE '{start}'), 0), 2) AS monetary_window
  FROM p GROUP BY person_id),
fig AS (
  SELECT *, date_diff('day', last_order_date, DATE '{as_of}') AS recency_days,
         date_diff('day', first_order_date, DATE '{as_of}') AS tenure_days,
         round(monetary / frequency, 2) AS avg_order_value,
         CASE WHEN frequency > 1 THEN date_diff('day', first_order_date, last_order_date) / (frequency - 1) END
           AS mean_interpurchase_days,
         count(*) OVER () AS n
  FROM per)
SELECT *, CAST(1 + floor(5 * (rank() OVER (ORDER BY -recency_days) - 1) / n) AS INT) AS r_score,
          CAST(1 + floor(5 * (rank() OVER (ORDER BY frequency) - 1) / n) AS INT) AS f_score,
          CAST(1 + floor(5 * (rank() OVER (ORDER BY monetary) - 1) / n) AS INT) AS m_score
FROM fig) TO '{out}' (FORMAT PARQUET)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lakehouse", default=str(HERE / "out" / "scale-1" / "lakehouse"))
    parser.add_argument("--copies", type=int, default=2, help="orders copies (1 year apart); 2 at scale 1 = 10M")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse the purchases Parquet of an earlier run")
    parser.add_argument("--only-rfm", action="store_true", help="RFM in Spark and DuckDB only")
    parser.add_argument("--repeats", type=int, default=3,
                        help="warm RFM runs per engine; the ratio uses their medians (single runs vary ±25%% here)")
    parser.add_argument("--alone", type=int, default=0, metavar="N",
                        help="also run each engine's RFM N times in a fresh process of its own")
    parser.add_argument("--child", choices=["spark", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import duckdb
    from pyspark.sql import functions as F

    from memberlake.inputs import latest_order_date, purchased_lines, purchases
    from memberlake.io.delta import Lakehouse
    from memberlake.spark import get_spark
    from memberlake.value import clv
    from memberlake.value.profile import profiles, with_tags

    settings = _settings(args)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    memory = PeakMemory().start()
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    lake = Lakehouse.from_settings(settings)
    work = WORK
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float, int, int]] = []

    def stage(name: str, func, count_rows: int | None = None):
        memory.reset()
        start = time.perf_counter()
        out = func()
        secs = time.perf_counter() - start
        n = count_rows if count_rows is not None else (out if isinstance(out, int) else 0)
        rows.append((name, secs, n, memory.peak))
        print(f"{name}: {secs:.1f}s rows={n:,}", flush=True)
        return out

    orders = lake.read("silver_orders")
    items = lake.read("silver_order_items")
    graph = (lake.read("identity_graph") if lake.exists("identity_graph")
             else spark.createDataFrame([], "id_type string, value string, person_id string"))
    as_of = latest_order_date(orders, "value")
    src = PURCHASES

    def build_purchases() -> int:
        base = purchases(orders, items, graph, as_of)
        copies = [base] + [base.select(
            F.concat("order_id", F.lit(f"~{k}")).alias("order_id"), "person_id",
            (F.col("order_ts") - F.expr(f"INTERVAL {365 * k} DAYS")).alias("order_ts"),
            F.date_sub("order_date", 365 * k).alias("order_date"), "channel", "net", "gross", "discount")
            for k in range(1, args.copies)]
        frame = copies[0]
        for extra in copies[1:]:
            frame = frame.unionByName(extra)
        frame.write.mode("overwrite").parquet(str(src))
        return spark.read.parquet(str(src)).count()

    if args.reuse and src.exists():
        n_orders = spark.read.parquet(str(src)).count()
    else:
        n_orders = stage("purchases (orders + lines + person) -> parquet", build_purchases)
    purch = spark.read.parquet(str(src))
    spark_out = work / "rfm_spark"

    def spark_rfm() -> int:
        return run_spark_rfm(spark, purch, as_of, settings, spark_out)

    persons = stage("RFM in Spark (figures, scores, segments), first run in the session", spark_rfm)
    duck_out = work / "rfm_duckdb.parquet"

    def duck_rfm() -> int:
        return run_duckdb_rfm(duckdb.connect(), src, as_of, settings.value.window_days, duck_out)

    # Warm runs alternate between the engines so a slow spell of the machine hits both.
    for i in range(1, max(1, args.repeats) + 1):
        stage(f"RFM in Spark again, session reused (warm JVM), run {i}", spark_rfm)
        stage(f"RFM in DuckDB (same figures and score rule), run {i}", duck_rfm)
    con = duckdb.connect()
    same = con.execute(f"""
        SELECT count(*) FROM (
          SELECT r_score, f_score, m_score, count(*) c FROM read_parquet('{spark_out}/*.parquet') GROUP BY ALL
          EXCEPT
          SELECT r_score, f_score, m_score, count(*) c FROM read_parquet('{duck_out}') GROUP BY ALL)""").fetchone()[0]
    if args.only_rfm:
        memory.stop()
        alone_rounds(args, spark, as_of, persons, rows)
        write_results(args, n_orders, persons, rows, same, {}, {}, ["RFM only (--only-rfm)"])
        return
    rfm = spark.read.parquet(str(spark_out))
    lines = purchased_lines(purch, items, lake.read("silver_products"))

    def profile() -> int:
        out = with_tags(profiles(rfm, purch, lines, None, as_of, settings.value), settings.value.tags)
        out.write.mode("overwrite").parquet(str(work / "profile"))
        return spark.read.parquet(str(work / "profile")).count()

    stage("member profile in Spark (preferences, lifecycle, tags)", profile)
    summary_path = work / "btyd_summary"

    def summary() -> int:
        clv.btyd_summary(purch, as_of).write.mode("overwrite").parquet(str(summary_path))
        return spark.read.parquet(str(summary_path)).count()

    stage("BTYD summary in Spark", summary)
    summ = spark.read.parquet(str(summary_path)).cache()
    summ.count()
    fits = {}
    fits["bgnbd"] = stage("BG/NBD fit (Spark likelihood, driver L-BFGS-B)", lambda: clv.fit_bgnbd(summ), persons)
    fits["gg"] = stage("Gamma-Gamma fit (Spark likelihood, driver L-BFGS-B)", lambda: clv.fit_gamma_gamma(summ), persons)
    compare: dict[str, float] = {}
    notes: list[str] = []
    if not args.skip_lifetimes:
        import lifetimes

        frame = summ.toPandas()      # bench only: the single-node reference needs the rows locally

        def lifetimes_fit(fitter, *cols):
            """lifetimes' own fit; its BFGS sometimes stops with a precision-loss error at this size."""
            for tol in (1e-7, 1e-6, 1e-4):
                try:
                    return fitter().fit(*cols, tol=tol) if fitter is lifetimes.BetaGeoFitter else fitter().fit(*cols)
                except lifetimes.utils.ConvergenceError:
                    notes.append(f"lifetimes {fitter.__name__} did not converge at tol={tol}")
            return None

        ref = stage("lifetimes BetaGeoFitter on the same summary",
                    lambda: lifetimes_fit(lifetimes.BetaGeoFitter, frame["frequency"], frame["recency"], frame["T"]),
                    len(frame))
        if ref is not None:
            for k in ("r", "alpha", "a", "b"):
                compare[k] = fits["bgnbd"].params[k] / ref.params_[k] - 1
        rep = frame[(frame["frequency"] > 0) & (frame["monetary_value"] > 0)]
        gg_ref = stage("lifetimes GammaGammaFitter on the same summary",
                       lambda: lifetimes_fit(lifetimes.GammaGammaFitter, rep["frequency"], rep["monetary_value"]), len(rep))
        if gg_ref is not None:
            for ours, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
                compare[ours] = fits["gg"].params[ours] / gg_ref.params_[theirs] - 1
    memory.stop()
    alone_rounds(args, spark, as_of, persons, rows)
    write_results(args, n_orders, persons, rows, same, fits, compare, notes)
    shutil.rmtree(work / "profile", ignore_errors=True)


def run_spark_rfm(spark, purch, as_of, settings, out: Path) -> int:
    from memberlake.value.rfm import rfm_figures, rfm_scores, segment

    rfm = (rfm_scores(rfm_figures(purch, as_of, settings.value.window_days))
           .withColumn("segment", segment(settings.value.segment_rules())))
    rfm.write.mode("overwrite").parquet(str(out))
    return spark.read.parquet(str(out)).count()


def run_duckdb_rfm(con, src: Path, as_of, window_days: int, out: Path) -> int:
    con.execute("SET threads TO 2")
    start = as_of - timedelta(days=window_days - 1)
    con.execute(DUCKDB_RFM.format(src=src, start=start, as_of=as_of, out=out))
    return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]


def _settings(args):
    from memberlake.settings import load_settings, with_overrides

    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       "spark.shuffle_partitions=16"])
    return with_overrides(settings, storage={"lakehouse": args.lakehouse})


def alone(args, engine: str, as_of) -> tuple[float, float]:
    """One engine's RFM in a process of its own: (RFM seconds, process seconds from start to exit)."""
    import json
    import subprocess

    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", engine, "--as-of", as_of.isoformat(),
                           "--lakehouse", args.lakehouse, "--master", args.master,
                           "--driver-memory", args.driver_memory], capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    return json.loads(done.stdout.strip().splitlines()[-1])["rfm_s"], total


def alone_rounds(args, spark, as_of, persons: int, rows: list) -> None:
    """``--alone N``: each engine's RFM in N fresh processes, in turn, once this process's JVM has
    exited (its heap and cached frames would otherwise share the machine with the child's)."""
    if not args.alone:
        return
    from pyspark import SparkContext

    spark.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()      # the JVM exits when its parent's pipe closes
        gateway.proc.wait(timeout=120)
        SparkContext._gateway = SparkContext._jvm = None
    for i in range(1, args.alone + 1):
        for engine in ("spark", "duckdb"):
            secs, total = alone(args, engine, as_of)
            name = "Spark" if engine == "spark" else "DuckDB"
            rows.append((f"RFM in {name} alone (fresh process), run {i}", secs, persons, 0))
            rows.append((f"  the same {name} process from its start to its exit, run {i}", total, persons, 0))
            print(f"{engine} alone, run {i}: RFM {secs:.1f}s, process {total:.1f}s", flush=True)


def child(args) -> None:
    """``--child``: one RFM run, its time printed as JSON on the last line."""
    import json
    from datetime import date

    as_of = date.fromisoformat(args.as_of)
    settings = _settings(args)
    if args.child == "duckdb":
        import duckdb

        con = duckdb.connect()
        start = time.perf_counter()
        run_duckdb_rfm(con, PURCHASES, as_of, settings.value.window_days, WORK / "rfm_duckdb_alone.parquet")
    else:
        from memberlake.spark import get_spark

        spark = get_spark(settings)
        spark.sparkContext.setLogLevel("ERROR")
        start = time.perf_counter()
        run_spark_rfm(spark, spark.read.parquet(str(PURCHASES)), as_of, settings, WORK / "rfm_spark_alone")
    print(json.dumps({"rfm_s": time.perf_counter() - start}), flush=True)


def write_results(args, n_orders, persons, rows, same, fits, compare, notes) -> None:
    import psutil

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    timing = {name: secs for name, secs, _, _ in rows}
    spark_s = next(v for k, v in timing.items() if k.startswith("RFM in Spark (figures"))
    warm = [v for k, v in timing.items() if k.startswith("RFM in Spark again")]
    ducks = [v for k, v in timing.items() if k.startswith("RFM in DuckDB (")]
    warm_s = statistics.median(warm) if warm else None
    duck_s = statistics.median(ducks)
    out = [
        f"\n### value: RFM, profile and CLV, {n_orders:,} orders, {persons:,} persons — {when}\n",
        f"Machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, CPython "
        f"{platform.python_version()}; Spark `{args.master}`, driver {args.driver_memory}, 16 shuffle partitions. "
        f"Command: `python bench/value.py --copies {args.copies} --repeats {args.repeats}"
        f"{' --only-rfm' if args.only_rfm else ''}{f' --alone {args.alone}' if args.alone else ''}` "
        f"on `{args.lakehouse}`.\n",
        "| step | wall time (s) | rows | rows/s | peak RSS (GB) |", "|---|---:|---:|---:|---:|",
    ]
    for name, secs, n, peak in rows:
        out.append(f"| {name} | {secs:.1f} | {n:,} | {n / secs:,.0f} | {f'{peak / 1e9:.2f}' if peak else '—'} |")
    out.append(f"\nRFM in Spark vs DuckDB on the same purchases (medians of {len(ducks)} DuckDB and {len(warm)} warm "
               f"Spark runs: {duck_s:.1f} s, {warm_s or 0:.1f} s): **{spark_s / duck_s:.1f}x** (Spark's first run)"
               + (f", **{warm_s / duck_s:.1f}x** with the session reused" if warm_s else "")
               + f"; persons per RFM cell {'identical' if same == 0 else f'differ in {same} cells'} between the two.")
    alone_spark = [v for k, v in timing.items() if k.startswith("RFM in Spark alone")]
    alone_duck = [v for k, v in timing.items() if k.startswith("RFM in DuckDB alone")]
    alone_s = statistics.median(alone_spark) if alone_spark else None
    alone_duck_s = statistics.median(alone_duck) if alone_duck else None
    if alone_s and alone_duck_s:
        out.append(f"\nEach engine alone in a fresh process ({len(alone_spark)} runs each, medians from the session "
                   f"or connection being up to the result written): Spark {alone_s:.1f} s, DuckDB {alone_duck_s:.1f} s, "
                   f"**{alone_s / alone_duck_s:.1f}x**. The JVM and session start before the clock are "
                   "`bench/job_start.py`'s figure.")
    for fit in fits.values():
        out.append(f"\n{fit.model}: " + ", ".join(f"{k}={v:.5g}" for k, v in fit.params.items())
                   + f" (log-likelihood {fit.log_likelihood:,.1f}, {fit.iterations} iterations, converged {fit.converged})")
    if compare:
        out.append("\nRelative difference to lifetimes: " + ", ".join(f"{k} {v:+.4%}" for k, v in compare.items()))
    if notes:
        out.append("\n" + "; ".join(notes) + ".")
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    if warm_s and alone_s and alone_duck_s:
        bench_summary.record_into(args.results, "rfm_9m" if args.copies == 2 else f"rfm_{args.copies}copies",
                                  f"RFM, {n_orders / 1e6:.2f}M orders (warm median; each engine alone in a fresh process)",
                                  f"{warm_s:.1f} s ({alone_s:.1f} s)", f"DuckDB {duck_s:.1f} s ({alone_duck_s:.1f} s)",
                                  f"{warm_s / duck_s:.1f}x ({alone_s / alone_duck_s:.1f}x)", "≤ 2x (≤ 3x alone)",
                                  out[0])
    elif warm_s:
        bench_summary.record_into(args.results, "rfm_9m" if args.copies == 2 else f"rfm_{args.copies}copies",
                                  f"RFM, {n_orders / 1e6:.2f}M orders (warm median; first run in a session)",
                                  f"{warm_s:.1f} s ({spark_s:.1f} s)", f"DuckDB {duck_s:.1f} s",
                                  f"{warm_s / duck_s:.1f}x ({spark_s / duck_s:.1f}x)", "≤ 2x (≤ 3x alone)",
                                  out[0])


if __name__ == "__main__":
    main()
