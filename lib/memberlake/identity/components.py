"""Connected components: local contraction, then large-star / small-star (Kiveris et al., 2014).

Nodes are ``long`` ids; the input is an edge list ``(src, dst)``.

One task when the graph is small enough: up to ``local_limit`` edges (5M by default, about
0.5 GB in that task's Python worker) are solved by scipy in a single partition, which at a few
million edges beats the distributed passes below (bench/RESULTS.md, 2026-12-05: 2.07M edges in
3.5 s warm against 12.2 s; 7.3 s against 14.0 s as the first run in a session).

Contraction (settles most small components in one pass): above that, the edges are spread over the
partitions, and each partition's edges are solved exactly by scipy's union-find
(``connected_components``) in a pandas function, giving every node a local root (the smallest
node of its local component). A node seen in several partitions links its local roots; those
links are a much smaller graph whose components, mapped back through the roots, are the
components of the input. It repeats while the link graph keeps halving, and once at most
``local_limit`` links are left one pass in a single partition finishes them; what a pass cannot
shrink (e.g. long chains spread over many partitions) goes to large-star / small-star. Memory
per task is one partition's edges (or ``local_limit`` links), never the whole graph.

Large-star / small-star: each round runs a large-star
(every node links its larger neighbours to the smallest id in its neighbourhood) and a
small-star (every node links itself and its smaller neighbours to the smallest of them); the
number of rounds grows with the log of the component diameter. The edge set stops changing when
every component is a star around its smallest id, which is then the component id. The plan is
checkpointed every few rounds so lineage does not grow with the iteration count.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

SRC, DST = "src", "dst"


def _canonical(edges: DataFrame) -> DataFrame:
    """Undirected edges as (larger, smaller), no self loops, no duplicates."""
    return (edges.where(F.col(SRC) != F.col(DST))
            .select(F.greatest(SRC, DST).alias(SRC), F.least(SRC, DST).alias(DST))
            .distinct())


def large_star(edges: DataFrame) -> DataFrame:
    both = edges.unionByName(edges.select(F.col(DST).alias(SRC), F.col(SRC).alias(DST)))
    smallest = both.groupBy(SRC).agg(F.min(DST).alias("m")).select(SRC, F.least("m", SRC).alias("m"))
    larger = both.where(F.col(DST) > F.col(SRC))
    return _canonical(larger.join(smallest, on=SRC, how="inner").select(F.col(DST).alias(SRC), F.col("m").alias(DST)))


def small_star(edges: DataFrame) -> DataFrame:
    """``edges`` are canonical (src > dst): each src links itself and its neighbours to their min."""
    smallest = edges.groupBy(SRC).agg(F.min(DST).alias("m"))
    to_min = edges.join(smallest, on=SRC, how="inner")
    neighbours = to_min.select(F.col(DST).alias(SRC), F.col("m").alias(DST))
    itself = smallest.select(F.col(SRC), F.col("m").alias(DST))
    return _canonical(neighbours.unionByName(itself))


def _is_star_forest(edges: DataFrame) -> bool:
    """Converged: every node points at exactly one root, and no root points anywhere."""
    per_src = edges.groupBy(SRC).agg(F.count(F.lit(1)).alias("n"))
    multi = per_src.where(F.col("n") > 1).limit(1).count()
    if multi:
        return False
    roots = edges.select(F.col(DST).alias(SRC)).distinct()
    return roots.join(per_src, on=SRC, how="left_semi").limit(1).count() == 0


def _local_roots(batches):
    """mapInPandas: one partition's edges -> (node, root) with root = smallest node of its local component."""
    import numpy as np
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    frames = list(batches)
    if not frames:
        return
    part = pd.concat(frames, ignore_index=True)
    if part.empty:
        return
    m = len(part)
    nodes, index = np.unique(np.concatenate([part[SRC].to_numpy(), part[DST].to_numpy()]), return_inverse=True)
    n = len(nodes)
    graph = coo_matrix((np.ones(m, dtype=np.int8), (index[:m], index[m:])), shape=(n, n))
    count, label = scipy_components(graph, directed=False)
    first = np.full(count, n, dtype=np.int64)        # nodes are sorted: the smallest index is the smallest id
    np.minimum.at(first, label, np.arange(n))
    yield pd.DataFrame({"node": nodes, "root": nodes[first[label]]})


def contract(edges: DataFrame, partitions: int) -> tuple[DataFrame, DataFrame]:
    """One contraction pass over ``edges`` (no self loops; duplicates are harmless).

    Returns ``(roots, links)``: ``roots`` maps every node to the smallest of its local roots,
    ``links`` are the (larger root, smaller root) pairs still to be joined.
    """
    have = edges.rdd.getNumPartitions()
    spread = edges.coalesce(partitions) if have >= partitions else edges.repartition(partitions)
    local = spread.mapInPandas(_local_roots, "node long, root long")
    if partitions == 1:     # one task saw every edge: its roots are final, each node is in it once
        roots = local.localCheckpoint()
        return roots, roots.where(F.lit(False)).select(F.col("node").alias(SRC), F.col("root").alias(DST))
    per_node = local.groupBy("node").agg(F.min("root").alias("m"), F.max("root").alias("x"),
                                         F.collect_set("root").alias("all")).localCheckpoint()
    links = per_node.where(F.col("m") != F.col("x")).select(F.explode("all").alias(SRC), F.col("m").alias(DST))
    return per_node.select("node", F.col("m").alias("root")), _canonical(links).localCheckpoint()


def connected_components(edges: DataFrame, max_rounds: int = 60, contract_passes: int = 8,
                         local_limit: int = 5_000_000) -> DataFrame:
    """``(node, component)`` for every node in ``edges``; component = smallest node id.

    At most ``local_limit`` edges: one pass in a single partition. Above: contraction passes over
    ``defaultParallelism`` partitions while the links at least halve; once at most
    ``local_limit`` links are left, one pass in a single partition finishes them. The input is
    checkpointed first (it is read twice: counted, then solved).
    Whatever is left after ``contract_passes`` passes goes to large-star / small-star. Nodes
    without edges are not in the output: the caller adds them as their own component.
    """
    current = edges.select(F.col(SRC).cast("long"), F.col(DST).cast("long")).where(F.col(SRC) != F.col(DST))
    partitions = max(2, current.sparkSession.sparkContext.defaultParallelism)
    mappings: list[DataFrame] = []
    size: int | None = None
    if contract_passes:
        current = current.localCheckpoint()
        size = current.count()
    for pass_no in range(1, contract_passes + 1):
        parts = 1 if size is not None and size <= local_limit else partitions
        roots, links = contract(current, parts)
        mappings.append(roots)
        remaining = 0 if parts == 1 else links.count()      # one task's roots are final: no links
        log.info("connected components: contraction pass %d over %d partition(s): %s edges -> %d links",
                 pass_no, parts, size, remaining)
        previous, size, current = size, remaining, links
        if remaining == 0 or parts == 1:
            break
        if pass_no > 1 and remaining * 2 > previous and remaining > local_limit:
            break                                     # no longer shrinking: leave the rest to the stars
    if not mappings:
        current = _canonical(current).localCheckpoint()
        size = current.count()
    result = _star_components(current, max_rounds) if size else None
    # resolve node -> root -> ... -> component, innermost mapping first
    for roots in reversed(mappings):
        if result is None:
            result = roots.select("node", F.col("root").alias("component"))
        else:
            resolved = roots.join(result.select(F.col("node").alias("root"), F.col("component")), "root", "left")
            result = resolved.select("node", F.coalesce("component", "root").alias("component"))
    if result is None:
        return current.sparkSession.createDataFrame([], "node long, component long")
    return result.localCheckpoint()


def _star_components(current: DataFrame, max_rounds: int) -> DataFrame:
    """Large-star / small-star rounds on canonical edges until they are stars."""
    for round_no in range(1, max_rounds + 1):
        if _is_star_forest(current):
            break
        current = small_star(large_star(current)).localCheckpoint()
        log.info("connected components: round %d, %d edges", round_no, current.count())
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    roots = current.select(F.col(DST).alias("node")).distinct().select("node", F.col("node").alias("component"))
    return current.select(F.col(SRC).alias("node"), F.col(DST).alias("component")).unionByName(roots).localCheckpoint()
