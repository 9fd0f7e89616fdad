"""Attach the current person_id to rows that carry identifiers (orders, events).

A row is resolved by its strongest identifier found in the identity graph, in the order given
(member id before e-mail before phone for orders). A row whose identifiers are all absent from
the graph (a one-off guest checkout) gets a deterministic ``guest-`` id derived from its first
non-null identifier, so its purchases still count towards one customer; a row with no
identifier at all keeps a null person_id.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ORDER_KEYS = (("member_id", "member_id"), ("email", "email"), ("phone", "phone"))
EVENT_KEYS = (("member_id", "member_id"), ("cookie", "anonymous_id"), ("device", "device_id"))


def attach_person(rows: DataFrame, graph: DataFrame, row_key: str,
                  keys: tuple[tuple[str, str], ...] = ORDER_KEYS) -> DataFrame:
    """``rows`` plus ``person_id``; ``keys`` are (graph id_type, column of rows) by priority."""
    keys = tuple((t, c) for t, c in keys if c in rows.columns)
    lookup = graph.select("id_type", "value", "person_id")
    candidates = reduce(DataFrame.unionByName, [
        rows.where(F.col(col).isNotNull()).select(
            row_key, F.lit(rank).alias("rank"), F.lit(id_type).alias("id_type"), F.col(col).alias("value"))
        for rank, (id_type, col) in enumerate(keys)
    ])
    found = (candidates.join(lookup, ["id_type", "value"], "inner")
             .groupBy(row_key).agg(F.min_by("person_id", "rank").alias("person_id")))
    fallback = F.coalesce(*[F.when(F.col(c).isNotNull(), F.concat_ws(":", F.lit(t), F.col(c))) for t, c in keys])
    guest = F.when(fallback.isNotNull(), F.concat(F.lit("guest-"), F.substring(F.sha2(fallback, 256), 1, 16)))
    return rows.join(found, row_key, "left").withColumn("person_id", F.coalesce("person_id", guest))
