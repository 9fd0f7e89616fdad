"""Incremental identity: recompute only the components that a new batch touches.

Edges and guards are still derived from all of silver on every run: a guard looks at every
record that shares an identifier (an e-mail on two member records of one source), so it cannot
be decided from the new rows alone, and the derivation is one scan and one aggregation. The
expensive part — connected components, splitting oversized ones, stable ids — runs only over the
*region* a batch touches:

- a *changed* edge is one in this run's kept edges and not in the last run's ``identity_edges``,
  or the reverse, or one whose observation count moved (it matters to the split strength);
- a *touched* node is an end of a changed edge, or a node that appeared or disappeared;
- the region is every touched node that still exists plus every node of a previous person that
  holds a touched node.

The region is closed under this run's edges: an unchanged edge with one end in it existed last
run, so both ends were in one previous person, whose nodes are all in the region; a new node's
edges are all changed. Hence every component outside the region is exactly a previous person
(same nodes, same edges) and keeps its rows, and the components inside are the ones a full
recompute would find. Stable ids are carried over inside the region only; a previous person
outside it is its own sole heir, so a full run would give it the same id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.identity.clusters import person_graph
from memberlake.identity.graph import nodes_of
from memberlake.identity.split import split_oversized
from memberlake.identity.stable_ids import carry_over_ids
from memberlake.settings import IdentitySettings

log = logging.getLogger(__name__)

NODE = ["id_type", "value"]
EDGE_KEY = ["src_type", "src_value", "dst_type", "dst_value", "origin", "observations"]


@dataclass(frozen=True)
class Region:
    nodes: DataFrame      # (id_type, value): this run's nodes to recompute
    persons: DataFrame    # (person_id): previous persons whose rows are replaced


def in_one_only(now: DataFrame, before: DataFrame, columns: list[str]) -> DataFrame:
    """Distinct rows (``columns``) found in exactly one of ``now`` and ``before``.

    One aggregation over both sides tagged with their side, where two ``subtract`` calls would
    shuffle each side twice (a de-duplication and an anti join each): on 6M edges that was most
    of an incremental run with nothing changed."""
    tagged = now.select(*columns, F.lit(1).alias("_side")).unionByName(before.select(*columns, F.lit(2).alias("_side")))
    return tagged.groupBy(*columns).agg(F.min("_side").alias("_lo"), F.max("_side").alias("_hi")).where(
        F.col("_lo") == F.col("_hi")).select(*columns)


def changed_nodes(kept: DataFrame, nodes: DataFrame, previous_edges: DataFrame,
                  previous_graph: DataFrame) -> DataFrame:
    """(id_type, value) of the ends of changed edges and of nodes that appeared or disappeared."""
    changed = in_one_only(kept, previous_edges, EDGE_KEY)
    moved = in_one_only(nodes, previous_graph, NODE)
    return nodes_of(changed).unionByName(moved).distinct()


def region(kept: DataFrame, nodes: DataFrame, previous_edges: DataFrame, previous_graph: DataFrame) -> Region:
    """The nodes to recompute and the previous persons they replace (see the module docstring).

    ``kept``: this run's kept edges; ``nodes``: this run's nodes (ends of kept edges and member
    records without edges), distinct; ``previous_edges`` / ``previous_graph``: the last run's
    ``identity_edges`` and ``identity_graph``.
    """
    touched = changed_nodes(kept, nodes, previous_edges, previous_graph).localCheckpoint()  # used twice
    persons = previous_graph.join(touched, NODE, "left_semi").select("person_id").distinct()
    of_persons = previous_graph.join(persons, "person_id", "left_semi").select(*NODE)
    recompute = touched.unionByName(of_persons).distinct().join(nodes, NODE, "left_semi")
    return Region(nodes=recompute, persons=persons)


def _by_source(edges: DataFrame, nodes: DataFrame, how: str) -> DataFrame:
    ends = nodes.select(F.col("id_type").alias("src_type"), F.col("value").alias("src_value"))
    return edges.join(ends, ["src_type", "src_value"], how)


def inside(edges: DataFrame, nodes: DataFrame) -> DataFrame:
    """Edges whose source node is in ``nodes`` (the region is closed, so the target is too)."""
    return _by_source(edges, nodes, "left_semi")


def outside(edges: DataFrame, nodes: DataFrame) -> DataFrame:
    """Edges whose source node is not in ``nodes`` (nor, the region being closed, the target)."""
    return _by_source(edges, nodes, "left_anti")


@dataclass(frozen=True)
class Resolved:
    kept: DataFrame             # kept edges after splitting oversized components
    split: DataFrame | None     # edges dropped by splitting (with reason), None if none
    graph: DataFrame            # (id_type, value, person_id, component_size)
    history: DataFrame          # (old_id, new_id, change) merges and splits of this run
    region: Region | None = None  # what an incremental run recomputed (materialised)


def components(kept: DataFrame, extra: DataFrame,
               cfg: IdentitySettings) -> tuple[DataFrame, DataFrame | None, DataFrame]:
    """(kept edges after splitting, split-dropped edges or None, components of ``person_graph``)."""
    edges = kept.select("src_type", "src_value", "dst_type", "dst_value")
    found = person_graph(edges, extra, cfg.max_rounds).localCheckpoint()
    if not (cfg.split_oversized and found.where(F.col("component_size") > cfg.max_component_size).limit(1).count()):
        return kept, None, found
    kept, split = split_oversized(kept, cfg.max_component_size, cfg.edge_strength, cfg.max_rounds)
    split = split.localCheckpoint()
    log.info("identity: %d edges dropped to split components above %d identifiers", split.count(),
             cfg.max_component_size)
    found = person_graph(kept.select("src_type", "src_value", "dst_type", "dst_value"), extra,
                         cfg.max_rounds).localCheckpoint()
    return kept, split, found


def stable_graph(found: DataFrame, previous: DataFrame | None,
                 registry: DataFrame | None) -> tuple[DataFrame, DataFrame]:
    """(graph with ids carried over from ``previous``, history of merges and splits)."""
    assigned, history = carry_over_ids(found, previous, registry)
    graph = found.join(assigned, "component", "inner").select("id_type", "value", "person_id", "component_size")
    return graph.localCheckpoint(), history.localCheckpoint()


def full_recompute(kept: DataFrame, extra: DataFrame, cfg: IdentitySettings, previous_graph: DataFrame | None,
                   registry: DataFrame | None) -> Resolved:
    """Every component from scratch, ids carried over from the previous graph."""
    kept, split, found = components(kept, extra, cfg)
    prev = previous_graph.select("id_type", "value", "person_id") if previous_graph is not None else None
    graph, history = stable_graph(found, prev, registry)
    return Resolved(kept, split, graph, history)


def incremental_recompute(kept: DataFrame, extra: DataFrame, cfg: IdentitySettings, previous_edges: DataFrame,
                          previous_graph: DataFrame, registry: DataFrame) -> Resolved:
    """The same result as ``full_recompute``, recomputing only the region the changes touch."""
    nodes = nodes_of(kept).unionByName(extra.select(*NODE)).distinct().localCheckpoint()
    area = region(kept, nodes, previous_edges, previous_graph)
    area_nodes, area_persons = area.nodes.localCheckpoint(), area.persons.localCheckpoint()
    n_area, n_nodes = area_nodes.count(), nodes.count()
    log.info("identity: incremental: %d of %d identifiers (%.1f%%) in components touched by changed edges, "
             "%d previous persons replaced", n_area, n_nodes, 100.0 * n_area / max(n_nodes, 1), area_persons.count())
    kept_in, split, found = components(inside(kept, area_nodes), extra.join(area_nodes, NODE, "left_semi"), cfg)
    touched_before = previous_graph.join(area_persons, "person_id", "left_semi").select(*NODE, "person_id")
    recomputed, history = stable_graph(found, touched_before, registry)
    carried = previous_graph.join(area_persons, "person_id", "left_anti").select(*recomputed.columns)
    graph = carried.unionByName(recomputed).localCheckpoint()
    return Resolved(outside(kept, area_nodes).unionByName(kept_in), split, graph, history,
                    Region(nodes=area_nodes, persons=area_persons))
