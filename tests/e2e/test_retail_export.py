"""The README's retail-export recipe end to end, on a file laid out like the public UCI "Online
Retail" export (one CSV of invoice lines in ISO-8859-1, ``M/d/yyyy H:mm`` times, cancellations as
``C``-prefixed invoices with negative quantities, guest lines without a customer id), built here:

- the column map reads it for orders and order lines;
- cancellation lines are quarantined and the cancellation invoices are not purchases;
- with a year of history the oldest stacked churn dates precede the first purchase, and the models
  job still trains on the others (it used to fail with a KeyError).
"""
from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F

from memberlake import cli
from memberlake.inputs import attach_person
from memberlake.io.delta import Lakehouse

pytestmark = pytest.mark.extended

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
ITEMS = [("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55), ("71053", "WHITE METAL LANTERN", 3.39),
         ("22752", "SET 7 BABUSHKA NESTING BOXES", 7.65), ("21165", "BEWARE OF THE CAT METAL SIGN , ", 1.69),
         ("90214Y", 'LETTER "Y" BLING KEY RING', 0.29), ("22745", "POPPY'S PLAYHOUSE BEDROOM ", 2.10),
         ("21754", "CAFÉ SIGN £", 5.95), ("POST", "POSTAGE", 18.0)]
README_FLAGS = [
    "--set", "landing.column_map.orders.order_id=InvoiceNo", "--set", "landing.column_map.orders.order_ts=InvoiceDate",
    "--set", "landing.column_map.orders.member_id=CustomerID",
    "--set", "landing.column_map.order_items.order_id=InvoiceNo",
    "--set", "landing.column_map.order_items.product_id=StockCode",
    "--set", "landing.column_map.order_items.quantity=Quantity",
    "--set", "landing.column_map.order_items.unit_price=UnitPrice",
    "--set", "landing.encoding=ISO-8859-1", "--set", "landing.timezone=Europe/London",
]


def _export(path) -> tuple[dict[str, int], int]:
    """Invoice lines over 13 months; returns the sales invoices per customer and the cancellations."""
    rng = random.Random(7)
    customers = [str(12346 + 7 * i) for i in range(160)]
    rate = {c: rng.choice([0.004, 0.01, 0.03]) for c in customers}     # invoices per customer per day
    start = datetime(2010, 12, 1, 8, 0)
    rows, sales, cancelled, invoice = [], {c: 0 for c in customers}, 0, 536365
    for day in range(395):
        when = start + timedelta(days=day)
        for customer in [c for c in customers if rng.random() < rate[c]] + [""] * rng.randint(0, 2):
            invoice += 1
            ts = when.replace(hour=rng.randint(8, 18), minute=rng.randint(0, 59))
            stamp = f"{ts.month}/{ts.day}/{ts.year} {ts.hour}:{ts.minute:02d}"
            lines = rng.sample(ITEMS, rng.randint(1, 4))
            for code, text, price in lines:
                rows.append([str(invoice), code, text, rng.choice([1, 2, 6, 12]), stamp, price, customer, "United Kingdom"])
            if customer:
                sales[customer] += 1
                if rng.random() < 0.1:   # a later cancellation of the first line
                    cancelled += 1
                    code, text, price = lines[0]
                    rows.append([f"C{invoice + 900000}", code, text, -1, stamp, price, customer, "United Kingdom"])
    with open(path, "w", newline="", encoding="ISO-8859-1") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return sales, cancelled


def test_an_online_retail_export_through_the_readme_recipe(spark, tmp_path):
    landing, lakehouse = tmp_path / "landing", tmp_path / "lake"
    (landing / "orders").mkdir(parents=True)
    (landing / "order_items").mkdir()
    sales, cancelled = _export(landing / "orders" / "Online Retail.csv")
    (landing / "order_items" / "Online Retail.csv").write_bytes((landing / "orders" / "Online Retail.csv").read_bytes())
    assert cli.main(["pipeline", "--only", "ingest,clean,identity,value,models", "--landing", str(landing),
                     "--lakehouse", str(lakehouse), *README_FLAGS, "--set", "models.churn.min_rows=20",
                     "--set", "models.churn.candidates={logistic_regression: {regParam: [0.01]}}"]) == 0
    lake = Lakehouse(str(lakehouse))

    quarantined = lake.read("quarantine").where(F.col("entity") == "order_items")
    assert quarantined.count() == cancelled > 0
    assert {tuple(r.reasons) for r in quarantined.select("reasons").distinct().collect()} == {("non_positive_quantity",)}
    names = {r.product_id for r in lake.read("silver_order_items").select("product_id").distinct().collect()}
    assert names == {code for code, _, _ in ITEMS}

    # RFM's lifetime frequency is each customer's sales invoices: cancellations add nothing.
    assert _frequency_by_customer(lake) == {c: n for c, n in sales.items() if n}

    runs = [r.status for r in lake.read("job_runs").where(F.col("job") == "models").collect()]
    assert runs == ["succeeded"]
    assert lake.read("churn_metrics").where(F.col("split") == "test").count() > 0


def _frequency_by_customer(lake: Lakehouse) -> dict[str, int]:
    """RFM's frequency per customer id: orders reach persons as the value job resolves them (no
    members file here, so each customer id is a deterministic guest person)."""
    orders = lake.read("silver_orders").select("order_id", "member_id").where(F.col("member_id").isNotNull())
    named = attach_person(orders, lake.read("identity_graph"), "order_id").select("member_id", "person_id").distinct()
    rfm = lake.read("rfm").select("person_id", "frequency")
    return {r.member_id: r.frequency for r in named.join(rfm, "person_id").collect()}
