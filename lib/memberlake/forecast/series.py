"""Demand series from completed orders: one row per (measure, series, period), gaps filled with 0.

A period is a week (Monday to Sunday) or a day. Only complete periods count: the last one ends on
or before the as-of date, so a forecast never extrapolates from a half-filled week. Each series
runs from its first period with an order line to that last complete period; weeks without sales
in between are zero demand, not missing data. Periods are numbered (``ds``: weeks since Monday
1970-01-05, or days since 1970-01-01) so forecasting libraries see a regular integer index.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from memberlake.inputs import completed

UNKNOWN = "(unknown)"
WEEK_EPOCH = date(1970, 1, 5)   # a Monday: week number 0
DAY_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Grain:
    """Series keys, period length, and the parent level the series add up to (besides the total)."""
    keys: tuple[str, ...]
    period: str   # "week" | "day"
    parent: str | None = None

    @property
    def days(self) -> int:
        return 7 if self.period == "week" else 1


GRAINS: dict[str, Grain] = {
    "category_week": Grain(("category",), "week"),
    "category_store_week": Grain(("category", "store_id"), "week", parent="category"),
    "product_week": Grain(("product_id",), "week", parent="category"),
    "channel_day": Grain(("channel",), "day"),
}


def last_complete_period(as_of: date, grain: Grain) -> date:
    """The start of the last period that ends on or before ``as_of`` (inclusive)."""
    if grain.period == "day":
        return as_of
    following = as_of + timedelta(days=1)
    return following - timedelta(days=following.weekday()) - timedelta(days=7)


def period_start(ts: Column, grain: Grain) -> Column:
    return F.date_trunc("week", ts).cast("date") if grain.period == "week" else F.to_date(ts)


def period_number(period: Column, grain: Grain) -> Column:
    """The integer index ``ds`` of a period start date."""
    epoch = WEEK_EPOCH if grain.period == "week" else DAY_EPOCH
    return (F.datediff(period, F.lit(epoch)) / grain.days).cast("int")


def period_date(ds: Column, grain: Grain) -> Column:
    epoch = WEEK_EPOCH if grain.period == "week" else DAY_EPOCH
    return F.date_add(F.lit(epoch), (ds * grain.days).cast("int"))


def ds_of(day: date, grain: Grain) -> int:
    epoch = WEEK_EPOCH if grain.period == "week" else DAY_EPOCH
    return (day - epoch).days // grain.days


def demand_lines(orders: DataFrame, items: DataFrame | None, products: DataFrame | None, as_of: date) -> DataFrame:
    """(order_ts, channel, store_id, product_id, category, units, revenue) per purchased line.

    Completed orders only (cancelled and returned excluded, as in value: the contract records a
    return as the order's status, without a return date, so its units leave the week they were
    ordered in). Anonymous orders count: demand does not need a person. Without order lines an
    order is one line with its total as revenue and no units.
    """
    done = completed(orders, as_of).select("order_id", "order_ts", "channel", "store_id",
                                           F.col("total_amount").cast("double").alias("total"))
    if items is None:
        lines = done.select("*", F.lit(None).cast("string").alias("product_id"),
                            F.lit(None).cast("double").alias("units"), F.col("total").alias("revenue"))
    else:
        lines = done.join(items, "order_id").select(
            "order_id", "order_ts", "channel", "store_id", "product_id",
            F.col("quantity").cast("double").alias("units"),
            (F.col("quantity") * F.col("unit_price") - F.coalesce(F.col("discount_amount"), F.lit(0))
             ).cast("double").alias("revenue"))
    if products is not None:
        lines = lines.join(products.select("product_id", "category"), "product_id", "left")
    else:
        lines = lines.withColumn("category", F.lit(None).cast("string"))
    return lines.select("order_ts", *[F.coalesce(F.col(c).cast("string"), F.lit(UNKNOWN)).alias(c)
                                      for c in ("channel", "store_id", "product_id", "category")],
                        "units", "revenue")


def series_id(grain: Grain) -> Column:
    return F.concat_ws(" | ", *grain.keys) if len(grain.keys) > 1 else F.col(grain.keys[0])


def demand_history(lines: DataFrame, grain: Grain, measures: list[str], as_of: date) -> DataFrame:
    """(measure, series_id, parent, ds, y) for every period from a series' first sale to the last
    complete period, zeros filled; a measure a source lacks (units without order lines) is left out."""
    last = last_complete_period(as_of, grain)
    parent = F.col(grain.parent) if grain.parent else F.lit(None).cast("string")
    per_period = (lines.select(series_id(grain).alias("series_id"), parent.alias("parent"),
                               period_start(F.col("order_ts"), grain).alias("period"), *measures)
                  .where(F.col("period") <= F.lit(last))
                  .groupBy("series_id", "period").agg(F.max("parent").alias("parent"),
                                                      *[F.sum(m).alias(m) for m in measures]))
    long = per_period.select("series_id", "parent", period_number(F.col("period"), grain).alias("ds"), F.explode(
        F.array(*[F.struct(F.lit(m).alias("measure"), F.col(m).alias("y")) for m in measures])).alias("m")
    ).select(F.col("m.measure").alias("measure"), "series_id", "parent", "ds", F.col("m.y").alias("y"))
    present = long.groupBy("measure", "series_id").agg(
        F.min("ds").alias("first"), F.max("parent").alias("parent"), F.count("y").alias("known"))
    grid = present.where("known > 0").select(
        "measure", "series_id", "parent",
        F.explode(F.sequence(F.col("first"), F.lit(ds_of(last, grain)))).alias("ds"))
    return grid.join(long.select("measure", "series_id", "ds", "y"), ["measure", "series_id", "ds"], "left").select(
        "measure", "series_id", "parent", "ds", F.coalesce("y", F.lit(0.0)).alias("y"))
