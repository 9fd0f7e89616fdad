"""Baskets from completed orders, at product or category level, per order or per person.

Cancelled and returned orders are not purchases; an order without a status counts as
completed (many exports carry no status column). Items are de-duplicated within a basket, as
FP-Growth requires: two lines of the same product are one item.
"""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from memberlake.inputs import completed  # noqa: F401  (the basket area's purchases)


def purchase_lines(orders: DataFrame, items: DataFrame, products: DataFrame | None, level: str,
                   order_columns: list[str]) -> DataFrame:
    """(order_id, order_ts, *order_columns, item): one row per distinct item of an order.

    ``level`` is ``product`` (item = product_id) or a products column (category, brand, ...);
    lines whose product has no value at that level form no item.
    """
    lines = items.select("order_id", "product_id")
    if level != "product":
        if products is None:
            raise ValueError(f"basket.level={level!r} needs silver products")
        lines = lines.join(products.select("product_id", F.col(level).alias("_level")), "product_id", "inner")
        item = F.col("_level")
    else:
        item = F.col("product_id")
    return (lines.join(orders.select("order_id", "order_ts", *order_columns), "order_id", "inner")
            .where(item.isNotNull())
            .select("order_id", "order_ts", *order_columns, item.alias("item"))
            .dropDuplicates(["order_id", "item"]))


def basket_lines(lines: DataFrame, basket_by: str, as_of: date, window_days: int) -> DataFrame:
    """Lines keyed by ``basket_id``: the order, or the person over ``window_days`` before as_of."""
    if basket_by == "order":
        return lines.withColumn("basket_id", F.col("order_id"))
    start = F.lit(as_of - timedelta(days=window_days - 1)).cast("timestamp")
    return (lines.where(F.col("order_ts") >= start).where(F.col("person_id").isNotNull())
            .withColumn("basket_id", F.col("person_id")))
