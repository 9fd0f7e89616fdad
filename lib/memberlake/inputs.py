"""Shared inputs: what several areas read, in one module, so areas never import each other.

Silver reads with their versions recorded, the person map (identity graph), completed orders,
their net values and lines, the default as-of date. Pure transforms take and return DataFrames;
the readers take the session, the lakehouse and the run record.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import cached_property, reduce
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.contract import Tables
from memberlake.errors import InputError, MissingInput
from memberlake.io.delta import Lakehouse
from memberlake.ops.runs import Run

if TYPE_CHECKING:
    from memberlake.privacy.pseudonymise import Pseudonymiser

log = logging.getLogger(__name__)

NOT_PURCHASES = ("cancelled", "returned")


def completed(orders: DataFrame, as_of: date | None = None) -> DataFrame:
    """Orders that are purchases, up to the end of ``as_of`` (inclusive)."""
    done = orders.where(F.col("status").isNull() | ~F.col("status").isin(*NOT_PURCHASES))
    if as_of is not None:
        done = done.where(F.col("order_ts") < F.lit(as_of + timedelta(days=1)).cast("timestamp"))
    return done


ORDER_KEYS = (("member_id", "member_id"), ("email", "email"), ("phone", "phone"))
EVENT_KEYS = (("member_id", "member_id"), ("cookie", "anonymous_id"), ("device", "device_id"))


def attach_person(rows: DataFrame, graph: DataFrame, row_key: str,
                  keys: tuple[tuple[str, str], ...] = ORDER_KEYS) -> DataFrame:
    """``rows`` plus ``person_id``; ``keys`` are (graph id_type, column of rows) by priority.

    A row is resolved by its strongest identifier found in the identity graph (member id before
    e-mail before phone for orders). A row whose identifiers are all absent from the graph (a
    one-off guest checkout) gets a deterministic ``guest-`` id derived from its first non-null
    identifier, so its purchases still count towards one customer; a row with no identifier at
    all keeps a null person_id.
    """
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


def line_values(items: DataFrame) -> DataFrame:
    """(order_id, gross, discount, net) per order from its lines."""
    gross = F.col("quantity") * F.col("unit_price")
    discount = F.coalesce(F.col("discount_amount"), F.lit(0))
    return items.groupBy("order_id").agg(
        F.sum(gross).cast("double").alias("gross"),
        F.sum(discount).cast("double").alias("discount"),
        F.sum(gross - discount).cast("double").alias("net"),
    )


def purchases(orders: DataFrame, items: DataFrame | None, graph: DataFrame, as_of: date | None) -> DataFrame:
    """(order_id, person_id, order_ts, order_date, channel, net, gross, discount) per purchase.

    Without order lines (``items`` None) every order's value is its total_amount. With them, an
    order with no line in ``items`` and no total_amount is not a purchase: nothing says it sold
    anything (e.g. a cancellation invoice whose negative lines were all quarantined, in exports
    that mark returns by a negative quantity instead of a status).
    """
    done = attach_person(completed(orders, as_of), graph, "order_id").where(F.col("person_id").isNotNull())
    if items is None:
        done = done.select("*", *[F.lit(None).cast("double").alias(c) for c in ("gross", "discount", "net")])
    else:
        done = (done.join(line_values(items), "order_id", "left")
                .where(F.col("net").isNotNull() | F.col("total_amount").isNotNull()))
    return done.select(
        "order_id", "person_id", "order_ts", F.to_date("order_ts").alias("order_date"), "channel",
        F.coalesce("net", F.col("total_amount").cast("double")).alias("net"),
        F.coalesce("gross", F.col("total_amount").cast("double")).alias("gross"),
        F.coalesce("discount", F.lit(0.0)).alias("discount"),
    )


def purchased_lines(purch: DataFrame, items: DataFrame | None, products: DataFrame | None) -> DataFrame:
    """(person_id, order_ts, category, brand, gross, discount) per purchased line."""
    if items is None:
        return purch.sparkSession.createDataFrame(
            [], "person_id string, order_ts timestamp, category string, brand string, gross double, discount double")
    lines = items.join(purch.select("order_id", "person_id", "order_ts"), "order_id", "inner").select(
        "person_id", "order_ts", "product_id", (F.col("quantity") * F.col("unit_price")).cast("double").alias("gross"),
        F.coalesce(F.col("discount_amount"), F.lit(0)).cast("double").alias("discount"))
    if products is None:
        return lines.select("person_id", "order_ts", F.lit(None).cast("string").alias("category"),
                            F.lit(None).cast("string").alias("brand"), "gross", "discount")
    return lines.join(products.select("product_id", "category", "brand"), "product_id", "left").drop("product_id")


def read_optional(lake: Lakehouse, run: Run, table: str) -> DataFrame | None:
    """``table`` with its Delta version recorded in ``run``, or None when it does not exist
    (an entity absent from the landing zone, or a job not run yet)."""
    if not lake.exists(table):
        log.info("%s not found: going on without it", table)
        return None
    run.record_read(table, version=lake.version(table))
    return lake.read(table)


def read_silver(lake: Lakehouse, run: Run, name: str, required: bool,
                pseudonymiser: Pseudonymiser | None = None) -> DataFrame | None:
    """A silver table (its version recorded in ``run``); PII columns hashed when a pseudonymiser is given."""
    table = Tables.silver(name)
    df = read_optional(lake, run, table)
    if df is None and required:
        raise MissingInput(f"{run.job} needs {table}: run ingest and clean first (or the landing zone has no "
                           f"{name} files)")
    return pseudonymiser.table(df) if pseudonymiser is not None and df is not None else df


def person_graph_or_empty(lake: Lakehouse, run: Run | None = None) -> DataFrame:
    """The identity graph (its version recorded in ``run``), or an empty one before identity ran."""
    if lake.exists(Tables.IDENTITY_GRAPH):
        if run is not None:
            run.record_read(Tables.IDENTITY_GRAPH, version=lake.version(Tables.IDENTITY_GRAPH))
        return lake.read(Tables.IDENTITY_GRAPH)
    log.warning("identity_graph not found: persons are approximated by their order identifiers")
    return lake.spark.createDataFrame([], "id_type string, value string, person_id string")


def latest_order_date(orders: DataFrame, job: str) -> date:
    """The date of the last completed order: the default as-of date of snapshot jobs."""
    last = completed(orders).agg(F.max("order_ts")).first()[0]
    if last is None:
        raise InputError(f"{job}: silver_orders has no completed order")
    return last.date()


class PersonActivity:
    """Purchases, their lines, sessions and persons: the inputs of point-in-time features, their
    Delta versions recorded in ``run``."""

    def __init__(self, lake: Lakehouse, run: Run, pseudonymiser: Pseudonymiser) -> None:
        orders = read_silver(lake, run, "orders", required=True, pseudonymiser=pseudonymiser)
        items = read_silver(lake, run, "order_items", required=False)
        products = read_silver(lake, run, "products", required=False)
        graph = person_graph_or_empty(lake, run)
        self._orders, self._job = orders, run.job
        self.purchases = purchases(orders, items, graph, None)
        self.lines = purchased_lines(self.purchases, items, products) if items is not None else None
        self.sessions = read_optional(lake, run, Tables.SESSIONS)
        self.person = read_optional(lake, run, Tables.PERSON)
        self.reviews = read_optional(lake, run, Tables.REVIEW_SENTIMENT)

    @cached_property
    def last_day(self) -> date:
        """The date of the last completed order, read when first asked for (a scan of the orders,
        which a job with nothing to do skips: ``JobContext.as_of``)."""
        return latest_order_date(self._orders, self._job)


def person_sentiment(sentiment: DataFrame, as_of: date, trend_days: int) -> DataFrame:
    """Per person as of a date, from ``review_sentiment`` rows (reviews and value read it): level (mean score, negative share, last review) and trend (mean of
    the last ``trend_days`` minus the mean of the ``trend_days`` before; null when either is empty).
    Only reviews written up to the end of ``as_of`` count, so a snapshot is point-in-time."""
    end = F.lit(as_of + timedelta(days=1)).cast("timestamp")
    recent_start = F.lit(as_of + timedelta(days=1 - trend_days)).cast("timestamp")
    previous_start = F.lit(as_of + timedelta(days=1 - 2 * trend_days)).cast("timestamp")
    ts = F.col("created_at")
    mine = sentiment.where(F.col("person_id").isNotNull() & F.col("score").isNotNull() & ts.isNotNull() & (ts < end))
    recent = F.avg(F.when(ts >= recent_start, F.col("score")))
    previous = F.avg(F.when((ts >= previous_start) & (ts < recent_start), F.col("score")))
    return mine.groupBy("person_id").agg(
        F.count(F.lit(1)).alias("reviews"),
        F.avg("score").alias("mean_score"),
        F.avg((F.col("label") == "negative").cast("double")).alias("negative_share"),
        F.max(ts).alias("last_review_at"),
        F.max_by("score", ts).alias("last_score"),
        recent.alias("recent_mean"),
        previous.alias("previous_mean"),
    ).select(F.lit(as_of).alias("as_of_date"), "*",
             (F.col("recent_mean") - F.col("previous_mean")).alias("trend"))
