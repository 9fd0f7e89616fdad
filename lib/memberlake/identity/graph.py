"""The deterministic identity graph: identifiers seen together in one row are linked.

Nodes are typed identifiers: a member record (``member``: ``source:member_id``), a bare member
id (``member_id``, as orders and events carry it), ``email``, ``phone``, ``device`` and
``cookie`` (anonymous_id). Edges come from co-occurrence in one silver row. Guards drop edges
that would merge different people — blocked placeholder values, e-mails and phones shared by
several member records of one source, devices shared by many cookies — and every dropped edge
is kept with its reason for the audit table.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.exprs import member_node
from memberlake.settings import IdentitySettings

EDGE_COLUMNS = ["src_type", "src_value", "dst_type", "dst_value", "origin"]


def _edge(src_type: str, src: Column, dst_type: str, dst: Column, origin: str) -> list[Column]:
    return [F.lit(src_type).alias("src_type"), src.alias("src_value"),
            F.lit(dst_type).alias("dst_type"), dst.alias("dst_value"), F.lit(origin).alias("origin")]


def member_edges(members: DataFrame) -> DataFrame:
    """A member record with its bare member id, its e-mail and its phone."""
    node = member_node(F.col("source"), F.col("member_id"))
    pairs = [("member_id", F.col("member_id")), ("email", F.col("email")), ("phone", F.col("phone"))]
    frames = [members.where(value.isNotNull()).select(*_edge("member", node, kind, value, "members"), "source")
              for kind, value in pairs]
    return reduce(DataFrame.unionByName, frames)


def order_edges(orders: DataFrame) -> DataFrame:
    """An order links its member id to its e-mail and phone; a guest order its e-mail to its phone."""
    m, e, p = F.col("member_id"), F.col("email"), F.col("phone")
    frames = [
        orders.where(m.isNotNull() & e.isNotNull()).select(*_edge("member_id", m, "email", e, "orders")),
        orders.where(m.isNotNull() & p.isNotNull()).select(*_edge("member_id", m, "phone", p, "orders")),
        orders.where(m.isNull() & e.isNotNull() & p.isNotNull()).select(*_edge("email", e, "phone", p, "orders")),
    ]
    return reduce(DataFrame.unionByName, frames).select(*EDGE_COLUMNS, F.lit(None).cast("string").alias("source"))


def event_edges(events: DataFrame) -> DataFrame:
    """An event links its cookie to its device and, when logged in, to its member id."""
    c, d, m = F.col("anonymous_id"), F.col("device_id"), F.col("member_id")
    frames = [
        events.where(c.isNotNull() & d.isNotNull()).select(*_edge("cookie", c, "device", d, "events")),
        events.where(c.isNotNull() & m.isNotNull()).select(*_edge("cookie", c, "member_id", m, "events")),
        events.where(c.isNull() & d.isNotNull() & m.isNotNull()).select(*_edge("device", d, "member_id", m, "events")),
    ]
    return reduce(DataFrame.unionByName, frames).select(*EDGE_COLUMNS, F.lit(None).cast("string").alias("source"))


def observed_edges(members: DataFrame | None, orders: DataFrame | None, events: DataFrame | None) -> DataFrame:
    """All co-occurrence edges with how often each was seen (``observations``)."""
    frames = []
    if members is not None:
        frames.append(member_edges(members))
    if orders is not None:
        frames.append(order_edges(orders))
    if events is not None:
        frames.append(event_edges(events))
    if not frames:
        raise ValueError("identity needs at least one of silver members, orders or events")
    edges = reduce(DataFrame.unionByName, frames)
    return edges.groupBy(*EDGE_COLUMNS).agg(
        F.count(F.lit(1)).alias("observations"),
        F.array_sort(F.collect_set("source")).alias("sources"),
    )


def nodes_of(edges: DataFrame) -> DataFrame:
    """(id_type, value) of both ends of every edge (not de-duplicated)."""
    src = edges.select(F.col("src_type").alias("id_type"), F.col("src_value").alias("value"))
    dst = edges.select(F.col("dst_type").alias("id_type"), F.col("dst_value").alias("value"))
    return src.unionByName(dst)


def blocked_nodes(edges: DataFrame, settings: IdentitySettings) -> DataFrame:
    """(id_type, value, reason) of identifiers matching a blocked pattern."""
    conditions = [
        (F.col("id_type") == kind) & F.col("value").rlike("^(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$")
        for kind, patterns in settings.blocked.items() if patterns
    ]
    nodes = nodes_of(edges).distinct()
    if not conditions:
        return nodes.where(F.lit(False)).select("id_type", "value", F.lit("").alias("reason"))
    matched = reduce(lambda a, b: a | b, conditions)
    return nodes.where(matched).select("id_type", "value", F.concat(F.lit("blocked:"), F.col("id_type")).alias("reason"))


def shared_nodes(edges: DataFrame, settings: IdentitySettings) -> DataFrame:
    """(id_type, value, reason) of identifiers over their cardinality limit."""
    member_side = edges.where(F.col("origin") == "members").select(
        "dst_type", "dst_value", "src_value", F.explode("sources").alias("source"))
    frames = []
    for kind, limit in settings.max_members_per_source.items():
        over = (member_side.where(F.col("dst_type") == kind)
                .groupBy("dst_value", "source").agg(F.countDistinct("src_value").alias("n"))
                .where(F.col("n") > limit).select("dst_value").distinct())
        frames.append(over.select(F.lit(kind).alias("id_type"), F.col("dst_value").alias("value"),
                                  F.lit(f"shared:{kind}:more_than_{limit}_members_per_source").alias("reason")))
    for kind, others in settings.conflicts.items():
        for other, limit in others.items():
            mine = member_side.where(F.col("dst_type") == kind).select("src_value", F.col("dst_value").alias("value"))
            theirs = member_side.where(F.col("dst_type") == other).select("src_value", F.col("dst_value").alias("other"))
            over = (mine.join(theirs, "src_value", "inner").groupBy("value")
                    .agg(F.countDistinct("other").alias("n")).where(F.col("n") > limit))
            frames.append(over.select(F.lit(kind).alias("id_type"), "value",
                                      F.lit(f"shared:{kind}:more_than_{limit}_{other}").alias("reason")))
    devices = (edges.where((F.col("src_type") == "cookie") & (F.col("dst_type") == "device"))
               .groupBy("dst_value").agg(F.countDistinct("src_value").alias("n"))
               .where(F.col("n") > settings.max_cookies_per_device))
    frames.append(devices.select(F.lit("device").alias("id_type"), F.col("dst_value").alias("value"),
                                 F.lit(f"shared:device:more_than_{settings.max_cookies_per_device}_cookies").alias("reason")))
    if settings.max_members_per_device:
        frames.append(_devices_with_many_members(edges, settings.max_members_per_device))
    return reduce(DataFrame.unionByName, frames)


def _devices_with_many_members(edges: DataFrame, limit: int) -> DataFrame:
    """Devices on which more than ``limit`` member ids logged in (directly or through a cookie):
    a family tablet would otherwise merge the family."""
    def pairs(src: str, dst: str) -> DataFrame:
        return edges.where((F.col("src_type") == src) & (F.col("dst_type") == dst))

    direct = pairs("device", "member_id").select(F.col("src_value").alias("device"), F.col("dst_value").alias("member"))
    via_cookie = (pairs("cookie", "device").select(F.col("src_value").alias("cookie"), F.col("dst_value").alias("device"))
                  .join(pairs("cookie", "member_id").select(F.col("src_value").alias("cookie"),
                                                             F.col("dst_value").alias("member")), "cookie")
                  .select("device", "member"))
    over = (direct.unionByName(via_cookie).groupBy("device").agg(F.countDistinct("member").alias("n"))
            .where(F.col("n") > limit))
    return over.select(F.lit("device").alias("id_type"), F.col("device").alias("value"),
                       F.lit(f"shared:device:more_than_{limit}_members").alias("reason"))


def apply_guards(edges: DataFrame, settings: IdentitySettings) -> tuple[DataFrame, DataFrame]:
    """(kept edges, dropped edges with ``reason``). An edge touching a bad node is dropped."""
    bad = blocked_nodes(edges, settings).unionByName(shared_nodes(edges, settings))
    bad = bad.groupBy("id_type", "value").agg(F.array_join(F.array_sort(F.collect_set("reason")), ",").alias("reason"))
    src_bad = bad.select(F.col("id_type").alias("src_type"), F.col("value").alias("src_value"), F.col("reason").alias("src_reason"))
    dst_bad = bad.select(F.col("id_type").alias("dst_type"), F.col("value").alias("dst_value"), F.col("reason").alias("dst_reason"))
    marked = (edges.join(src_bad, ["src_type", "src_value"], "left")
              .join(dst_bad, ["dst_type", "dst_value"], "left")
              .select(*edges.columns, F.concat_ws(",", "src_reason", "dst_reason").alias("reason")))
    return marked.where(F.col("reason") == "").drop("reason"), marked.where(F.col("reason") != "")
