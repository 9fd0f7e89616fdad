"""Ingest validation: every rejected row carries all its reasons; every row lands somewhere."""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import functions as F

from memberlake.contract import EVENTS, ORDER_ITEMS, ORDERS
from memberlake.ingest.validate import REASONS, accepted, rejected, validate, with_lineage
from memberlake.io.landing import CORRUPT
from memberlake.settings import LandingSettings

LANDING = LandingSettings(null_values=["", "null", "n/a"])
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _raw(spark, entity, rows):
    cols = entity.column_names
    data = [tuple(r.get(c) for c in cols) + (r.get(CORRUPT), "file:/x.csv") for r in rows]
    schema = ", ".join(f"{c} string" for c in cols) + f", {CORRUPT} string, _source_file string"
    return with_lineage(spark.createDataFrame(data, schema), entity, "b1", NOW)


def test_reasons_lists_every_failure(spark):
    raw = _raw(spark, ORDER_ITEMS, [
        {"order_id": "o1", "line_no": "1", "product_id": "p", "quantity": "2", "unit_price": "3.5"},
        {"order_id": "o1", "line_no": "x", "product_id": None, "quantity": "two", "unit_price": "n/a"},
        {"order_id": None, "line_no": "1", "product_id": "p", "quantity": "1", "unit_price": "1", CORRUPT: "o,1"},
    ])
    out = validate(raw, ORDER_ITEMS, LANDING).orderBy(F.col("line_no").desc_nulls_last(), "order_id").collect()
    by_line = {(r.order_id, r.line_no): sorted(r[REASONS]) for r in out}
    assert by_line[("o1", "1")] == []
    assert by_line[("o1", "x")] == sorted(["unparseable:line_no", "missing:product_id", "unparseable:quantity",
                                           "missing:unit_price"])
    assert by_line[(None, "1")] == sorted(["malformed_row", "missing:order_id"])


def test_any_of_identifiers_for_events(spark):
    raw = _raw(spark, EVENTS, [
        {"event_ts": "2024-01-01T00:00:00Z", "event_type": "page_view", "device_id": "d1"},
        {"event_ts": "2024-01-01T00:00:00Z", "event_type": "page_view", "anonymous_id": " "},
    ])
    reasons = sorted(tuple(r[REASONS]) for r in validate(raw, EVENTS, LANDING).collect())
    assert reasons == [(), ("missing_any_of:anonymous_id|device_id|member_id",)]


def test_optional_unparseable_value_is_accepted_here(spark):
    # total_amount must parse (quarantine); an unparseable optional value is flagged later in silver.
    raw = _raw(spark, ORDERS, [
        {"order_id": "a", "order_ts": "2024-01-01", "total_amount": "ten"},
        {"order_id": "b", "order_ts": "2024-01-01", "total_amount": None, "channel": "???"},
    ])
    out = {r.order_id: r[REASONS] for r in validate(raw, ORDERS, LANDING).collect()}
    assert out == {"a": ["unparseable:total_amount"], "b": []}


def test_accepted_and_rejected_partition_the_input(spark):
    raw = _raw(spark, ORDERS, [
        {"order_id": "a", "order_ts": "2024-01-01"},
        {"order_id": "a", "order_ts": "2024-01-01"},          # exact duplicate: both kept in bronze
        {"order_id": None, "order_ts": "2024-01-01"},
        {"order_id": "c", "order_ts": None},
    ])
    validated = validate(raw, ORDERS, LANDING)
    good, bad = accepted(validated, ORDERS), rejected(validated, ORDERS)
    assert good.count() + bad.count() == raw.count() == 4
    assert good.count() == 2
    assert set(good.columns) >= {"_source_file", "_ingested_at", "_batch_id", "_record_hash"}
    bad_rows = bad.collect()
    assert {r.entity for r in bad_rows} == {"orders"} and {r.stage for r in bad_rows} == {"ingest"}
    assert all('"order_ts"' in r.raw_record or '"order_id"' in r.raw_record for r in bad_rows)
    hashes = [r._record_hash for r in good.collect()]
    assert hashes[0] == hashes[1]   # same values, same hash
