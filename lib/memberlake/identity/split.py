"""Split components above ``max_component_size`` at their weakest edges.

A component of hundreds of identifiers is rarely one person: it is usually a chain of weak
links (a shared cookie, a device used by a household, a phone typed on two orders). Edges get
a strength from their identifier types (``identity.edge_strength``, e.g. a member record's own
e-mail is strong, a cookie-device link weak) and, within a strength, an edge seen once is
weaker than one seen again. Within oversized components only, the weakest level of edges is
dropped and the components are recomputed, level by level, until no component is too large
or only the strongest level is left. Each dropped edge is returned with its reason, for the
audit table; components that are still too large are reported by the job as before.
"""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.identity.components import connected_components

log = logging.getLogger(__name__)


def strength(weights: dict[str, int], default: int = 1) -> Column:
    """Strength level of an edge: its type pair's configured strength x 2, + 1 when seen more than once."""
    pair = F.concat_ws("-", "src_type", "dst_type")
    reverse = F.concat_ws("-", "dst_type", "src_type")
    mapping = F.create_map(*[x for k, v in weights.items() for x in (F.lit(k), F.lit(v))]) if weights else None
    value = F.coalesce(mapping[pair], mapping[reverse], F.lit(default)) if mapping is not None else F.lit(default)
    return value * 2 + (F.col("observations") > 1).cast("int")


def _numbered(edges: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Edges with long node ids (``s``, ``d``) and the node numbering."""
    nodes = (edges.select(F.col("src_type").alias("t"), F.col("src_value").alias("v"))
             .unionByName(edges.select(F.col("dst_type").alias("t"), F.col("dst_value").alias("v"))).distinct())
    ids = nodes.select("t", "v", F.monotonically_increasing_id().alias("nid")).localCheckpoint()
    src = ids.select(F.col("t").alias("src_type"), F.col("v").alias("src_value"), F.col("nid").alias("s"))
    dst = ids.select(F.col("t").alias("dst_type"), F.col("v").alias("dst_value"), F.col("nid").alias("d"))
    return edges.join(src, ["src_type", "src_value"]).join(dst, ["dst_type", "dst_value"]), ids


def _oversized_edges(edges: DataFrame, max_size: int, max_rounds: int) -> DataFrame:
    """The edges (with s, d) whose component has more than ``max_size`` nodes."""
    comps = connected_components(edges.select(F.col("s").alias("src"), F.col("d").alias("dst")), max_rounds)
    big = comps.groupBy("component").agg(F.count(F.lit(1)).alias("n")).where(F.col("n") > max_size)
    nodes = comps.join(big, "component", "left_semi").select(F.col("node").alias("s"), "component")
    return edges.join(nodes, "s", "inner")


def split_oversized(edges: DataFrame, max_size: int, weights: dict[str, int],
                    max_rounds: int = 60) -> tuple[DataFrame, DataFrame]:
    """(kept edges, dropped edges with ``reason``) after splitting components above ``max_size``.

    ``edges`` are identity edges (src/dst type and value, ``observations``, ...). Only edges
    of oversized components are ever dropped; the strongest level is never dropped.
    """
    numbered, _ = _numbered(edges)
    numbered = numbered.withColumn("_level", strength(weights)).localCheckpoint()
    columns = edges.columns
    current = numbered
    dropped_any = False
    for _ in range(32):
        inside = _oversized_edges(current, max_size, max_rounds).localCheckpoint()
        if inside.limit(1).count() == 0:
            break
        levels = inside.agg(F.min("_level").alias("lo"), F.max("_level").alias("hi")).first()
        if levels["lo"] == levels["hi"]:
            log.warning("identity: %d edges left in components above %d identifiers, all of the strongest level; "
                        "kept and reported", inside.count(), max_size)
            break
        weakest = inside.where(F.col("_level") == levels["lo"]).select("s", "d").distinct()
        log.info("identity: split oversized components: dropping %d edges of strength level %d",
                 weakest.count(), levels["lo"])
        current = current.join(weakest, ["s", "d"], "left_anti").localCheckpoint()
        dropped_any = True
    kept = current.select(*columns)
    if not dropped_any:
        return kept, edges.limit(0).select(*columns, F.lit("").alias("reason"))
    # everything not kept was dropped here (one anti join, not a union of per-level parts)
    dropped = numbered.join(current.select("s", "d"), ["s", "d"], "left_anti").select(
        *columns, F.lit(f"split:component_size>{max_size}").alias("reason"))
    return kept, dropped
