"""Baskets: only purchases, distinct items, product or category level, order or person windows."""
from __future__ import annotations

from datetime import date, datetime

from memberlake.basket.baskets import basket_lines, completed, purchase_lines

ORDERS = "order_id string, person_id string, order_ts timestamp, status string, channel string"


def _data(spark):
    orders = spark.createDataFrame([
        ("O1", "P1", datetime(2024, 1, 10), "completed", "web"),
        ("O2", "P1", datetime(2024, 6, 1), None, "store"),            # no status: a purchase
        ("O3", "P1", datetime(2024, 6, 2), "cancelled", "web"),
        ("O4", "P2", datetime(2024, 6, 3), "returned", "web"),
        ("O5", "P2", datetime(2024, 7, 1, 23, 59), "completed", "web"),  # on the as-of day
        ("O6", "P2", datetime(2024, 7, 2, 0, 0), "completed", "web"),    # after the as-of day
    ], ORDERS)
    items = spark.createDataFrame([
        ("O1", "A"), ("O1", "A"), ("O1", "B"), ("O2", "C"), ("O3", "A"), ("O4", "B"), ("O5", "A"),
        ("O5", "X"), ("O6", "B"),
    ], "order_id string, product_id string")
    products = spark.createDataFrame([("A", "toys"), ("B", "toys"), ("C", "books"), ("X", None)],
                                     "product_id string, category string")
    return orders, items, products


def test_completed_excludes_cancelled_returned_and_future(spark):
    orders, _, _ = _data(spark)
    got = {r.order_id for r in completed(orders, date(2024, 7, 1)).collect()}
    assert got == {"O1", "O2", "O5"}


def test_product_lines_are_distinct_per_order(spark):
    orders, items, products = _data(spark)
    lines = purchase_lines(completed(orders, date(2024, 7, 1)), items, products, "product", ["person_id"])
    got = sorted((r.order_id, r.item) for r in lines.collect())
    assert got == [("O1", "A"), ("O1", "B"), ("O2", "C"), ("O5", "A"), ("O5", "X")]


def test_category_level_merges_products_and_drops_unknown(spark):
    orders, items, products = _data(spark)
    lines = purchase_lines(completed(orders, date(2024, 7, 1)), items, products, "category", ["person_id"])
    got = sorted((r.order_id, r.item) for r in lines.collect())
    assert got == [("O1", "toys"), ("O2", "books"), ("O5", "toys")]


def test_person_baskets_cover_the_window(spark):
    orders, items, products = _data(spark)
    lines = purchase_lines(completed(orders, date(2024, 7, 1)), items, products, "product", ["person_id"])
    by_person = basket_lines(lines, "person", date(2024, 7, 1), window_days=60)
    got = sorted((r.basket_id, r.item) for r in by_person.select("basket_id", "item").distinct().collect())
    # O1 (Jan 10) is outside the 60 days ending Jul 1
    assert got == [("P1", "C"), ("P2", "A"), ("P2", "X")]
