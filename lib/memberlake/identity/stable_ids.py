"""Stable person ids across runs: carry ids over from the previous graph, record merges and splits.

Rules, applied to this run's components and the previous run's (identifier -> person_id):
- every previous id has an *heir*: the component holding most of its identifiers (ties: the
  component whose content-derived fresh id is smallest, never a label that depends on how the
  run numbered its nodes), so when a person splits, the largest part keeps the id;
- a component that is the heir of several previous ids keeps the oldest of them (first seen,
  then smallest id) and the others are recorded as merged into it;
- a component that is nobody's heir gets a new id (derived from its content, so a re-run on the
  same input gives the same id); when a previous id's other parts get new ids, that is a split.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def carry_over_ids(current: DataFrame, previous: DataFrame | None, registry: DataFrame | None) -> tuple[DataFrame, DataFrame]:
    """Stable ids for this run's components.

    ``current``: (id_type, value, component, fresh_id) — this run's components with the id a
    brand-new person would get; ``previous``: (id_type, value, person_id) of the last run;
    ``registry``: (person_id, first_seen) of every id ever issued. Returns
    (component -> person_id, history rows (old_id, new_id, change)).
    """
    components = current.select("component", "fresh_id").distinct()
    if previous is None:
        return components.select("component", F.col("fresh_id").alias("person_id")), _empty_history(current)
    overlap = (current.join(previous, ["id_type", "value"], "inner")
               .groupBy("person_id", "component", "fresh_id").agg(F.count(F.lit(1)).alias("shared")))
    # Ties go to the part with the smallest fresh id: derived from the part's content, so a full
    # and an incremental run agree (component labels depend on how the nodes were numbered).
    by_size = Window.partitionBy("person_id").orderBy(F.desc("shared"), F.asc("fresh_id"), F.asc("component"))
    heirs = (overlap.select("*", F.row_number().over(by_size).alias("rank")).where("rank = 1")
             .drop("rank", "shared", "fresh_id"))
    seen = registry.select("person_id", "first_seen") if registry is not None else heirs.select(
        "person_id", F.lit(None).cast("timestamp").alias("first_seen"))
    ranked = heirs.join(seen, "person_id", "left")
    oldest_first = Window.partitionBy("component").orderBy(F.asc_nulls_last("first_seen"), F.asc("person_id"))
    chosen = ranked.select("*", F.row_number().over(oldest_first).alias("rank"))
    kept = chosen.where("rank = 1").select("component", "person_id")
    issued = previous.select("person_id")
    if registry is not None:
        issued = issued.unionByName(registry.select("person_id"))
    issued = issued.distinct().select(F.col("person_id").alias("fresh_id"), F.lit(True).alias("taken"))
    # A new part of a split person may derive the id its old whole had: give it another one.
    fresh = components.join(issued, "fresh_id", "left").select(
        "component", F.when(F.col("taken"), F.concat(F.lit("P"), F.substring(F.sha2(F.concat("fresh_id", F.lit(":split")), 256), 1, 16)))
        .otherwise(F.col("fresh_id")).alias("fresh_id"))
    assigned = fresh.join(kept, "component", "left").select(
        "component", F.coalesce("person_id", "fresh_id").alias("person_id"))
    merged = chosen.where("rank > 1").join(kept.withColumnRenamed("person_id", "new_id"), "component").select(
        F.col("person_id").alias("old_id"), "new_id", F.lit("merged").alias("change"))
    split_parts = overlap.drop("fresh_id").join(heirs.withColumnRenamed("component", "heir"), "person_id").where(
        F.col("component") != F.col("heir")).join(assigned.withColumnRenamed("person_id", "new_id"), "component")
    splits = split_parts.where(F.col("new_id") != F.col("person_id")).select(
        F.col("person_id").alias("old_id"), "new_id", F.lit("split").alias("change")).distinct()
    return assigned, merged.unionByName(splits)


def _empty_history(df: DataFrame) -> DataFrame:
    return df.sparkSession.createDataFrame([], "old_id string, new_id string, change string")
