"""From kept identity edges to one ``person_id`` per connected component."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from memberlake.identity.components import connected_components
from memberlake.identity.graph import nodes_of


def person_graph(edges: DataFrame, extra_nodes: DataFrame, max_rounds: int = 60) -> DataFrame:
    """``(id_type, value, component, fresh_id, component_size)`` for every node of ``edges`` and
    ``extra_nodes``.

    ``fresh_id`` is the id a brand-new person gets: derived from the component's smallest member
    record (or smallest node when it has none), so the same input always gives the same ids.
    ``stable_ids.carry_over_ids`` decides which components keep an earlier id instead.
    """
    nodes = nodes_of(edges).unionByName(extra_nodes.select("id_type", "value")).distinct()
    ids = nodes.select("*", F.monotonically_increasing_id().alias("nid")).localCheckpoint()
    src = ids.select(F.col("id_type").alias("src_type"), F.col("value").alias("src_value"), F.col("nid").alias("src"))
    dst = ids.select(F.col("id_type").alias("dst_type"), F.col("value").alias("dst_value"), F.col("nid").alias("dst"))
    numbered = edges.join(src, ["src_type", "src_value"], "inner").join(dst, ["dst_type", "dst_value"], "inner")
    components = connected_components(numbered.select("src", "dst"), max_rounds=max_rounds)
    labelled = ids.join(components, ids.nid == components.node, "left").select(
        "id_type", "value", F.coalesce("component", "nid").alias("component"))
    whole = Window.partitionBy("component")
    key = F.coalesce(
        F.min(F.when(F.col("id_type") == "member", F.concat(F.lit("member:"), F.col("value")))).over(whole),
        F.min(F.concat_ws(":", "id_type", "value")).over(whole),
    )
    return labelled.select(
        "id_type", "value", "component",
        F.concat(F.lit("P"), F.substring(F.sha2(key, 256), 1, 16)).alias("fresh_id"),
        F.count(F.lit(1)).over(whole).alias("component_size"),
    )
