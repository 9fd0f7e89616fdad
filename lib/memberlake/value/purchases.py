"""Completed orders with their person and net value: the input of RFM, profiles and CLV.

Purchases are orders that were not cancelled or returned (an order without a status counts).
An order's net value is the sum of its lines' quantity x unit price minus discounts; an order
without lines falls back to its total_amount. Orders with no identifier at all (no person)
are left out of person-level value.
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.basket.baskets import completed
from memberlake.identity.resolve import attach_person


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

    Without order lines (``items`` None) every order's value is its total_amount.
    """
    done = attach_person(completed(orders, as_of), graph, "order_id").where(F.col("person_id").isNotNull())
    if items is None:
        done = done.select("*", *[F.lit(None).cast("double").alias(c) for c in ("gross", "discount", "net")])
    else:
        done = done.join(line_values(items), "order_id", "left")
    return done.select(
        "order_id", "person_id", "order_ts", F.to_date("order_ts").alias("order_date"), "channel",
        F.coalesce("net", F.col("total_amount").cast("double")).alias("net"),
        F.coalesce("gross", F.col("total_amount").cast("double")).alias("gross"),
        F.coalesce("discount", F.lit(0.0)).alias("discount"),
    )
