"""Benchmark: basket mining (FP-Growth) against single-node mlxtend on the same baskets.

Generates baskets in Spark (Zipf product popularity, 1-8 distinct items, 10 planted patterns),
then in one process and one Spark session (local[2] by default):

1. memberlake's mining path (``frequent_itemsets`` + ``association_rules``: segment-keyed item
   tokens, one FP-Growth fit for every segment, rules in Spark SQL): the first
   fit pays JIT and class loading; then the median of ``--repeats`` runs is the steady state of
   a scheduled job that reuses its session;
2. a plain ``pyspark.ml.fpm.FPGrowth`` call on string items with default partitions, run in
   turn with (1): round i times ours and then plain, so a slow spell of the machine hits both
   (single runs vary by ~30% here, more than the two differ); medians of both and their ratio;
3. mlxtend ``fpgrowth`` + ``association_rules`` on a dense one-hot pandas frame, median of
   ``--repeats`` runs (skipped when that frame would exceed --mlxtend-max-gb).

    python bench/basket.py --baskets 200000 --products 2000 --support 0.005
    python bench/basket.py --baskets 1000000 --products 10000 --support 0.001
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402
from run import PeakMemory  # noqa: E402


def make_baskets(spark, n_baskets: int, n_products: int, seed: int = 7):
    """(basket_id, item) lines; items are product ids 'P<rank>' with Zipf popularity."""
    from pyspark.sql import functions as F

    from memberlake.generate.random import Draws

    r, b = Draws(seed), F.col("id")
    size = F.least(F.lit(8), 1 + F.floor(r.exponential(5.0, "n", b))).cast("int")
    k = F.col("k")
    rank = F.least(F.greatest(F.floor(F.exp(r.u("item", b, k) * math.log(n_products + 1))) - 1, F.lit(0)),
                   F.lit(n_products - 1)).cast("int")
    pattern = r.int_below(10, "pattern", b)
    planted = r.below(0.05, "planted", b) & (k < 2)
    item = F.when(planted, 25 + pattern * 3 + k).otherwise(rank)
    return (spark.range(n_baskets, numPartitions=4).select("id", F.explode(F.sequence(F.lit(0), size - 1)).alias("k"))
            .select(F.col("id").alias("basket_id"), F.format_string("P%05d", item).alias("item")).distinct())


def timed(memory: PeakMemory, func):
    memory.reset()
    start = time.perf_counter()
    out = func()
    return out, time.perf_counter() - start, memory.peak


def median(times: list[float]) -> float:
    return sorted(times)[len(times) // 2]


def repeated(memory: PeakMemory, func, repeats: int):
    """(result, median wall time, peak memory) over ``repeats`` runs: single runs vary by ~30% here."""
    times, peak, out = [], 0, None
    for _ in range(repeats):
        out, secs, run_peak = timed(memory, func)
        times.append(secs)
        peak = max(peak, run_peak)
    return out, median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baskets", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--support", type=float, default=0.005)
    parser.add_argument("--confidence", type=float, default=0.1)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--mlxtend-max-gb", type=float, default=4.0)
    parser.add_argument("--skip-plain", action="store_true", help="skip the plain MLlib reference call")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours, plain MLlib (in turn) and mlxtend")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    from pyspark.ml.fpm import FPGrowth
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from memberlake.basket.mining import association_rules, frequent_itemsets, segment_lines

    memory = PeakMemory().start()
    spark = (SparkSession.builder.master(args.master).appName("bench-basket")
             .config("spark.driver.memory", args.driver_memory).config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(max(2, args.partitions * 2))).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    out = HERE / "out" / f"baskets-{args.baskets}-{args.products}"
    if not out.exists():
        make_baskets(spark, args.baskets, args.products).write.mode("overwrite").parquet(str(out))
    lines = spark.read.parquet(str(out)).cache()
    n_lines = lines.count()
    rows = []

    def ours():
        result = frequent_itemsets(segment_lines(lines, []), args.support, args.partitions)
        itemsets = result.itemsets.cache()
        n_sets = itemsets.count()
        n_rules = association_rules(itemsets, args.confidence, 0.0).count()
        itemsets.unpersist()
        return n_sets, n_rules

    def plain():
        baskets = lines.groupBy("basket_id").agg(F.collect_list("item").alias("items"))
        model = FPGrowth(itemsCol="items", minSupport=args.support, minConfidence=args.confidence).fit(baskets)
        return model.freqItemsets.count(), model.associationRules.count()

    (n_sets, n_rules), secs, peak = timed(memory, ours)
    rows.append(("memberlake mining, first fit in the session", secs, n_sets, n_rules, peak))
    if not args.skip_plain:
        timed(memory, plain)     # its own first fit (query plans, code generation), not counted
    runs = {"ours": ours} if args.skip_plain else {"ours": ours, "plain": plain}
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks, counts = dict.fromkeys(runs, 0), {}
    for _ in range(args.repeats):
        for name, func in runs.items():
            counts[name], secs, peak = timed(memory, func)
            times[name].append(secs)
            peaks[name] = max(peaks[name], peak)
    (n_sets, n_rules), ours_s = counts["ours"], median(times["ours"])
    rows.append((f"memberlake mining, session reused (median of {args.repeats})", ours_s, n_sets, n_rules, peaks["ours"]))
    print(f"memberlake: {ours_s:.1f}s itemsets={n_sets} rules={n_rules}", flush=True)
    plain_s = None
    if not args.skip_plain:
        plain_s = median(times["plain"])
        n_sets_p, n_rules_p = counts["plain"]
        rows.append((f"plain MLlib FPGrowth (string items, default partitions; median of {args.repeats}, "
                     "run in turn with ours)", plain_s, n_sets_p, n_rules_p, peaks["plain"]))
        print(f"plain: {plain_s:.1f}s itemsets={n_sets_p} rules={n_rules_p}", flush=True)

    mlx_s = None
    dense_gb = args.baskets * args.products / 1e9
    if dense_gb <= args.mlxtend_max_gb:
        from importlib.metadata import version

        import pandas as pd
        from mlxtend.frequent_patterns import association_rules as mlx_rules
        from mlxtend.frequent_patterns import fpgrowth
        from mlxtend.preprocessing import TransactionEncoder
        mlxtend_version = version("mlxtend")

        baskets = [list(r) for r in lines.groupBy("basket_id").agg(F.collect_list("item").alias("i")).toPandas()["i"]]

        def single_node():
            encoder = TransactionEncoder()
            onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
            sets = fpgrowth(onehot, min_support=args.support, use_colnames=True)
            rules = mlx_rules(sets, metric="confidence", min_threshold=args.confidence)
            single = rules[rules["consequents"].map(len) == 1]
            return len(sets), len(single)

        (n_sets_m, n_rules_m), mlx_s, peak = repeated(memory, single_node, args.repeats)
        rows.append((f"mlxtend {mlxtend_version} fpgrowth (one-hot encode + mine + rules, median of {args.repeats})",
                     mlx_s, n_sets_m, n_rules_m, peak))
        print(f"mlxtend: {mlx_s:.1f}s itemsets={n_sets_m} rules={n_rules_m}", flush=True)
    memory.stop()
    write_results(args, n_lines, rows, ours_s, mlx_s, plain_s, dense_gb)


def write_results(args, n_lines: int, rows, ours_s: float, mlx_s: float | None, plain_s: float | None,
                  dense_gb: float) -> None:
    import psutil

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n### basket mining, {args.baskets:,} baskets over {args.products:,} products, min support "
        f"{args.support} — {when}\n",
        f"Machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, CPython "
        f"{platform.python_version()}; Spark `{args.master}`, driver {args.driver_memory}, FP-Growth partitions "
        f"{args.partitions}. {n_lines:,} basket lines. Command: `python bench/basket.py --baskets {args.baskets} "
        f"--products {args.products} --support {args.support}`.\n",
        "| step | wall time (s) | baskets/s | itemsets | rules (1 consequent) | peak RSS (GB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, secs, n_sets, n_rules, peak in rows:
        lines.append(f"| {label} | {secs:.1f} | {args.baskets / secs:,.0f} | {n_sets:,} | {n_rules:,} | {peak / 1e9:.2f} |")
    if mlx_s:
        lines.append(f"\nmemberlake (session reused, median) vs mlxtend (median) on the same baskets: "
                     f"**{ours_s / mlx_s:.1f}x**.")
    else:
        lines.append(f"\nmlxtend not run: its dense one-hot frame would need {dense_gb:.1f} GB "
                     f"(> --mlxtend-max-gb {args.mlxtend_max_gb}).")
    if plain_s:
        lines.append(f"memberlake vs plain MLlib (medians of the same {args.repeats} rounds, run in turn): "
                     f"**{ours_s / plain_s:.2f}** (below 1: ours is faster).")
    with open(args.results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    first = rows[0][1]
    peers = "; ".join(p for p in (f"mlxtend {mlx_s:.1f} s" if mlx_s else "",
                                  f"plain MLlib {plain_s:.1f} s (ours/plain {ours_s / plain_s:.2f})" if plain_s else "") if p)
    bench_summary.record_into(args.results, "fpgrowth_200k" if args.baskets == 200_000 else f"fpgrowth_{args.baskets}",
                              f"FP-Growth, {args.baskets:,} baskets (warm, median of {args.repeats})",
                              f"{ours_s:.1f} s (first fit {first:.1f} s)", peers or "not run",
                              f"{ours_s / mlx_s:.1f}x" if mlx_s else "—", "≤ 1.2x, never slower than MLlib",
                              lines[0])


if __name__ == "__main__":
    main()
