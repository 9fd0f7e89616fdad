"""Connected components with large-star / small-star (Kiveris et al., 2014) in DataFrame operations.

Nodes are ``long`` ids; the input is an edge list ``(src, dst)``. Each round runs a large-star
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


def connected_components(edges: DataFrame, max_rounds: int = 60) -> DataFrame:
    """``(node, component)`` for every node in ``edges``; component = smallest node id.

    Each round is checkpointed (computed once, lineage cut); the loop ends as soon as the edges
    form stars around their smallest node. Nodes without edges are not in the output: the
    caller adds them as their own component.
    """
    current = _canonical(edges.select(F.col(SRC).cast("long"), F.col(DST).cast("long"))).localCheckpoint()
    for round_no in range(1, max_rounds + 1):
        if _is_star_forest(current):
            break
        current = small_star(large_star(current)).localCheckpoint()
        log.info("connected components: round %d, %d edges", round_no, current.count())
    else:
        raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
    roots = current.select(F.col(DST).alias("node")).distinct().select("node", F.col("node").alias("component"))
    return current.select(F.col(SRC).alias("node"), F.col(DST).alias("component")).unionByName(roots)
