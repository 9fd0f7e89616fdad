"""Benchmark: connected components on an identity-shaped graph against scipy's single-node lower bound.

The graph (default 3M nodes, about 2M edges, as in issue 3): random trees of geometric size
(mean 3) over randomly permuted node ids, plus a few long chains and one big star, so it has
many tiny components, some long diameters and one 100k-node component. Edges are written to
Parquet once; then, in one process:

1. scipy: read the Parquet with pyarrow, ``scipy.sparse.csgraph.connected_components``;
2. Spark ``connected_components`` (contraction + large/small-star), the job's code;
3. optionally (``--stars``) Spark large-star / small-star only (``contract_passes=0``);

and the component partitions are compared.

    python bench/identity_cc.py --nodes 3000000
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import summary as bench_summary  # noqa: E402
from run import PeakMemory  # noqa: E402


def make_graph(spark, nodes: int, out: str, seed: int = 5) -> int:
    """Edges of random trees (mean size 3), 5 chains of 20k nodes and a star of 100k, ids permuted."""
    from pyspark.sql import functions as F

    chain, star = 20_000, 100_000
    special = 5 * chain + star
    base = nodes - special
    ids = F.col("id")
    # component boundaries: a node starts a new tree with probability 1/3
    u = (F.xxhash64(F.lit(seed), ids, F.lit("start")) % 1_000_000).cast("double") / 1_000_000
    trees = spark.range(0, base).select(ids, (F.abs(u) < 1 / 3).alias("start"))
    from pyspark.sql import Window

    w = Window.orderBy("id").rowsBetween(Window.unboundedPreceding, 0)
    trees = trees.select("id", F.max(F.when(F.col("start") | (F.col("id") == 0), F.col("id"))).over(w).alias("first"))
    parent_u = (F.abs(F.xxhash64(F.lit(seed), ids, F.lit("parent"))) % 1_000_000).cast("double") / 1_000_000
    tree_edges = trees.where(F.col("id") > F.col("first")).select(
        F.col("id").alias("a"), (F.col("first") + F.floor(parent_u * (F.col("id") - F.col("first")))).cast("long").alias("b"))
    chains = spark.range(base, base + 5 * chain).where((F.col("id") - base) % chain != 0).select(
        F.col("id").alias("a"), (F.col("id") - 1).alias("b"))
    stars = spark.range(base + 5 * chain + 1, nodes).select(F.col("id").alias("a"), F.lit(base + 5 * chain).cast("long").alias("b"))
    edges = tree_edges.unionByName(chains).unionByName(stars)
    # permute ids (a bijection of [0, 2^40) restricted by construction to distinct values)
    perm = lambda c: F.pmod(F.col(c) * F.lit(2654435761) + F.lit(12345), F.lit(1 << 40))  # noqa: E731
    edges = edges.select(perm("a").alias("src"), perm("b").alias("dst"))
    edges.repartition(8).write.mode("overwrite").parquet(out)
    return spark.read.parquet(out).count()


def scipy_components(path: str, rounds: int = 1):
    """Load the edges once, then solve ``rounds`` times; the median solve time (the first call
    varies by 2x between runs of this script)."""
    import numpy as np
    import pyarrow.parquet as pq
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t0 = time.perf_counter()
    table = pq.read_table(path)
    src, dst = table["src"].to_numpy(), table["dst"].to_numpy()
    load = time.perf_counter() - t0
    solves = []
    for _ in range(rounds):
        t1 = time.perf_counter()
        nodes, index = np.unique(np.concatenate([src, dst]), return_inverse=True)
        m = len(src)
        graph = coo_matrix((np.ones(m, dtype=np.int8), (index[:m], index[m:])), shape=(len(nodes), len(nodes)))
        count, labels = connected_components(graph, directed=False)
        solves.append(time.perf_counter() - t1)
    sizes = np.bincount(labels)
    return load, statistics.median(solves), count, len(nodes), int(sizes.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--stars", action="store_true", help="also time large-star/small-star alone")
    parser.add_argument("--passes", action="store_true",
                        help="also time the distributed contraction passes (a graph above local_limit)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per method: the first, then the warm median")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from memberlake.identity.components import connected_components
    from memberlake.settings import load_settings
    from memberlake.spark import get_spark

    settings = load_settings("local", [f"spark.master={args.master}", f"spark.driver_memory={args.driver_memory}",
                                       f"spark.shuffle_partitions={args.shuffle_partitions}"])
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    memory = PeakMemory().start()
    spark = get_spark(settings)
    spark.sparkContext.setLogLevel("ERROR")
    path = str(HERE / "out" / f"cc-graph-{args.nodes}")
    n_edges = make_graph(spark, args.nodes, path)
    load, solve, n_comp, n_nodes, largest = scipy_components(path, args.rounds)
    print(f"scipy: load {load:.2f}s, solve {solve:.2f}s, {n_comp:,} components over {n_nodes:,} nodes, largest {largest:,}")
    rows = []
    methods = [("spark (job's defaults)", {})]
    if args.passes:
        methods.append(("spark contraction passes over the partitions (local_limit 200,000)", {"local_limit": 200_000}))
    if args.stars:
        methods.append(("spark large/small-star only", {"contract_passes": 0}))
    for label, kwargs in methods:
        times, same = [], True
        memory.reset()
        for _ in range(args.rounds):    # the first run in the session pays the JIT warm-up; then warm runs
            edges = spark.read.parquet(path)
            t0 = time.perf_counter()
            comps = connected_components(edges, **kwargs)
            stats = comps.groupBy("component").agg(F.count(F.lit(1)).alias("n")).agg(
                F.count(F.lit(1)).alias("components"), F.sum("n").alias("nodes"), F.max("n").alias("largest")).first()
            times.append(time.perf_counter() - t0)
            same = same and (stats["components"], stats["nodes"], stats["largest"]) == (n_comp, n_nodes, largest)
            print(f"{label}: {times[-1]:.1f}s, {stats['components']:,} components, same as scipy: {same}")
        warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
        rows.append((label, times[0], warm, memory.peak / 1e9, same))
    memory.stop()
    write_results(args, n_edges, n_nodes, n_comp, largest, load, solve, rows)


def write_results(args, n_edges, n_nodes, n_comp, largest, load, solve, rows) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"\n### identity connected components, {n_edges:,} edges / {n_nodes:,} nodes — {stamp}\n",
           f"`python bench/identity_cc.py --nodes {args.nodes}` on {platform.machine()}, Spark `{args.master}`, "
           f"{args.shuffle_partitions} shuffle partitions. Graph: random trees (mean size 3), 5 chains of 20,000 "
           f"nodes, a 100,000-node star; {n_comp:,} components, largest {largest:,}.\n",
           f"Spark times: the first run in the session (JIT warm-up included), then the median of the next "
           f"{args.rounds - 1}; each reads the edges from Parquet and counts the components.\n",
           "| method | first run (s) | warm median (s) | warm edges/s | peak RSS (GB) | ratio vs scipy solve, "
           "first (warm) | same partition as scipy |",
           "|---|---:|---:|---:|---:|---:|---|",
           f"| scipy `connected_components` (solve only, median of {args.rounds}; Parquet load {load:.2f} s extra) | {solve:.2f} | – | "
           f"{n_edges / solve:,.0f} | – | 1.0× | – |"]
    for label, first, warm, peak, same in rows:
        out.append(f"| {label} | {first:.1f} | {warm:.1f} | {n_edges / warm:,.0f} | {peak:.2f} | "
                   f"{first / solve:.1f}× ({warm / solve:.1f}×) | {same} |")
    text = "\n".join(out) + "\n"
    print(text)
    with open(args.results, "a") as fh:
        fh.write(text)
    _, first, warm, _, same = rows[0]
    bench_summary.record_into(args.results, "connected_components", f"connected components, {n_edges / 1e6:.2f}M edges",
                              f"{warm:.1f} s warm, {first:.1f} s first run{'' if same else ' (partition differs from scipy)'}",
                              f"scipy {solve:.2f} s", f"{warm / solve:.1f}x ({first / solve:.1f}x)", "≤ 8x", out[0])


if __name__ == "__main__":
    main()
